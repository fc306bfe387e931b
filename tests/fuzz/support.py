"""What every answer to hostile input must be — below 500, and a refusal a JSON error that says what was wrong,
naming the field at fault — and the tally each fuzz test keeps (cases run, answers by status), which
``conftest.py`` writes to the JSON file named by ``REGFLOW_FUZZ_REPORT`` for ``bench/security.py``."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

#: the environment variable naming the JSON file the fuzz run's tallies are written to (unset: none written)
REPORT_ENV = "REGFLOW_FUZZ_REPORT"


@dataclass
class Tally:
    """One fuzz test's counts: ``cases`` (generated examples), ``answers`` (responses or outcomes by kind) and
    any other figure (``extra``: schemathesis' operations, server errors)."""

    cases: int = 0
    answers: Counter = field(default_factory=Counter)
    extra: dict = field(default_factory=dict)

    def case(self) -> None:
        """One example run to its end (an example hypothesis discards while drawing is not counted)."""
        self.cases += 1

    def answer(self, kind) -> None:
        self.answers[str(kind)] += 1

    def to_dict(self) -> dict:
        return {"cases": self.cases, "answers": dict(sorted(self.answers.items())), **self.extra}


def names_a_field(err: dict, sent: Iterable[str]) -> bool:
    """Whether the refusal ``err`` names what was wrong: its ``field`` or ``field_errors``, or else its message
    quotes one of the names ``sent`` (body keys, query parameters). A request that sent no name at all (a body
    that is not a JSON object) has no field to name, and a blank name cannot be seen quoted."""
    if err.get("field") or err.get("field_errors"):
        return True
    names = [str(n) for n in sent]
    return not names or any(not n.strip() for n in names) or any(n in err["message"] for n in names)


def refusal(r, sent: Iterable[str] | None = None) -> dict | None:
    """Assert ``r`` (a Flask test response) is no server error; a 4xx must carry ``{"error": {"status",
    "message"}}``, a 422 its ``field_errors``, and a 400 or 422 must name the field at fault
    (:func:`names_a_field`, when ``sent`` lists the names the request carried). Returns the error (None for a
    2xx/3xx)."""
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:2000])
    if r.status_code < 400:
        return None
    body = r.get_json(silent=True)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), (r.status_code, r.get_data()[:500])
    err = body["error"]
    assert err["status"] == r.status_code and isinstance(err["message"], str) and err["message"].strip(), err
    if r.status_code == 422:
        assert isinstance(err.get("field_errors"), dict) and err["field_errors"], err
    if "field" in err:
        assert isinstance(err["field"], str) and err["field"], err
    if sent is not None and r.status_code in (400, 422):
        sent = list(sent)
        assert names_a_field(err, sent), ("a refusal that names no field", err, sent[:20])
    return err
