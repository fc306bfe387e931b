"""Schemathesis against the OpenAPI document the app serves, on a live server on loopback: every operation with
generated valid (positive) and invalid (negative) requests, sent with an officer's bearer token,
derandomized and capped per operation. No server error; an invalid request refused with a 4xx
(schemathesis' ``negative_data_rejection``); and every 4xx of the API the documented JSON error with a message,
a 400 or 422 naming the field at fault."""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import requests
import schemathesis
from hypothesis import given, note
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import negative_data_rejection, not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode

from tests.fuzz.strategies import fuzz_settings
from tests.fuzz.support import names_a_field

EXAMPLES = 50
CHECKS = [not_a_server_error, negative_data_rejection]


@dataclass
class Outcome:
    operations: int = 0
    cases: int = 0
    #: each server error: the request as a curl command, the status and the start of the body
    server_errors: list[str] = field(default_factory=list)
    #: any other check that failed: the check's title, the request, the answer
    failures: list[str] = field(default_factory=list)
    #: operations that have nothing to make invalid (no parameter, no body): positive cases only
    positive_only: list[str] = field(default_factory=list)


def _sent(case) -> list[str]:
    """The names the request carried: query parameters and the body's keys."""
    names = list(case.query or {})
    if isinstance(case.body, dict):
        names.extend(str(k) for k in case.body)
    return names


def _json_error(case, response) -> str | None:
    """What is wrong with a 4xx answer of the API (None: a JSON error with a message, naming the field)."""
    try:
        err = response.json()["error"]
        assert err["status"] == response.status_code and str(err["message"]).strip()
    except (ValueError, KeyError, TypeError, AssertionError):
        return "not the documented JSON error"
    # a request without a bearer token is a browser's: a POST without the session's CSRF token is refused first
    anonymous = "Authorization" not in response.request.headers
    if response.status_code in (400, 422) and not anonymous and not names_a_field(err, _sent(case)):
        return f"names no field: {err}"
    return None


def run_operations(base: str, headers: dict, examples: int) -> Outcome:
    """Every operation of ``base``'s OpenAPI document with ``examples`` positive and ``examples`` negative cases."""
    schema = schemathesis.openapi.from_url(base + "/api/v1/openapi.json")
    ops = [result.ok() for result in schema.get_all_operations()]
    out = Outcome(operations=len(ops))
    http = requests.Session()
    http.headers["Connection"] = "close"  # nothing left open when the test server stops
    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            before = out.cases

            @fuzz_settings(examples)
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                response = case.call(base_url=base, session=http, headers=dict(headers), timeout=30)
                out.cases += 1
                curl = case.as_curl_command(headers={"Authorization": "Bearer …"})
                note(curl)
                if response.status_code >= 500:
                    out.server_errors.append(f"{curl}\n→ {response.status_code} {response.text[:1500]}")
                # an empty query value stands for an absent one (web.params.int_arg: as a form's empty field), and
                # a parameter without a name is no parameter — which the schema cannot say: such a case is checked
                # for server errors only
                sent = parse_qsl(urlsplit(response.request.url).query, keep_blank_values=True)
                lenient = any(not k.strip() or not v.strip() for k, v in sent)
                try:
                    case.validate_response(response, checks=[not_a_server_error] if lenient else CHECKS)
                except (Failure, FailureGroup) as exc:
                    failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
                    out.failures.extend(f"{f.title}: {curl} → {response.status_code} {response.text[:300]}"
                                        for f in failures)
                if op.path.startswith("/api/v1/") and 400 <= response.status_code < 500:
                    problem = _json_error(case, response)
                    if problem:
                        out.failures.append(f"{problem}: {curl} → {response.status_code} {response.text[:300]}")

            try:
                run()
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE or out.cases != before:
                    raise
                out.positive_only.append(op.label)
    return out


def test_schemathesis_finds_no_server_error(live, officer_headers, new_task, tally):
    new_task()  # an open task, so that some generated ids hit one
    out = run_operations(live, officer_headers, EXAMPLES)
    tally.cases = out.cases
    tally.extra.update(operations=out.operations, server_errors=len(out.server_errors),
                       check_failures=len(out.failures), positive_only=out.positive_only)
    assert out.server_errors == [], "\n\n".join(out.server_errors[:5])
    assert out.failures == [], "\n".join(out.failures[:10])
    assert out.operations >= 10 and out.cases >= 2 * out.operations, (out.operations, out.cases)
    # only the documents themselves have nothing to make invalid
    assert set(out.positive_only) <= {"GET /api/v1/openapi.json", "GET /api/v1/docs"}, out.positive_only
