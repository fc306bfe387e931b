"""What a simulated run is asked to do: its :class:`Options`, the campaign plan it submits
(:func:`campaign_plan`, also used by ``bench/loop.py`` and the tests) and the process library with what-if
decision tables swapped in (:func:`library_with`). The run itself is :mod:`engine.simulation.run`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lxml import etree

from engine.demo import ITEMS
from engine.errors import InvalidInput
from engine.runtime.deploy import read_paths
from engine.runtime.parser import read_xml
from engine.supervision.calendar import SHANGHAI as SH

#: Monday 2 March 2026, 09:00 in China
DEFAULT_START = datetime(2026, 3, 2, 9, 0, tzinfo=SH)


@dataclass
class Options:
    entities: int = 5000
    seed: int = 7
    database_url: str | None = None
    training_entities: int = 20_000
    ratios: dict = field(default_factory=lambda: {"A": 1, "B": 4, "C": 12, "D": 30})
    control_share: float = 10
    start: datetime = DEFAULT_START
    max_days: int = 400
    #: shares of visits ending with an entity-state code, before the ground truth decides on a violation:
    #: unreachable at the address (result_6, scaled by the entity's risk), closed or liquidating (result_7),
    #: gone since the draw (result_9-12), no in-scope activity (result_F), seriously uncooperative (result_8,
    #: scaled by risk). See :class:`OutcomeMix`.
    unreachable: float = 0.02
    closed: float = 0.01
    gone: float = 0.01
    no_activity: float = 0.02
    uncooperative: float = 0.005
    #: share of entities waiting for a registered letter (result_6) that sign it on a given day: with 0.01 about
    #: a quarter sign within the 30 days, the rest stay unsigned and are put on the abnormal operations list
    letter_signed: float = 0.01
    #: what-if decision tables: each DMN file replaces the process library's file that defines the same
    #: decision ids (see :func:`library_with`), so the run routes by the designer's rules
    decision_files: tuple = ()


def campaign_plan(name: str, now: datetime, *, ratios: dict[str, int], control_share: int, capacity: int,
                  lookback_months: int) -> dict:
    """The ``campaign_plan`` form of a joint amr + price campaign over ``ITEMS`` in 410100, with a 90-day window
    from ``now`` (the simulator's, ``bench/loop.py``'s and the tests' campaigns)."""
    return {"name": name, "year": now.year, "lead_department": "amr", "joint_check": True,
            "joint_departments": "price",
            "items": [{"item_code": c, "item_name": n, "department": d, "method": m} for c, n, d, m in ITEMS],
            "jurisdiction": "410100", "window_start": now.date().isoformat(),
            "window_end": (now.date() + timedelta(days=90)).isoformat(),
            "ratio_a": ratios["A"], "ratio_b": ratios["B"], "ratio_c": ratios["C"], "ratio_d": ratios["D"],
            "control_share": control_share, "capacity": capacity, "lookback_months": lookback_months}


#: every class drawn in full (the launch measurements: every drawn entity is launched)
EVERY_CLASS = {"A": 100, "B": 100, "C": 100, "D": 100}


def _decision_ids(name: str, text: str) -> set[str]:
    try:
        root = read_xml(text)
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(f"{name}: not well-formed XML ({exc})") from None
    return {el.get("id") for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname == "decision"
            and el.get("id")}


def library_with(library: dict[str, str], decision_files) -> dict[str, str]:
    """The process library's files with what-if decision tables swapped in: each given ``.dmn`` file takes
    the place of the library file that defines the same decision ids (every process that calls them is
    deployed with it). A file that defines a decision the library does not have is refused, naming it."""
    files = dict(library)
    by_decision = {d: name for name, text in library.items() if name.endswith(".dmn")
                   for d in _decision_ids(name, text)}
    for path in decision_files:
        (name, text), = read_paths([path]).items()
        if not name.endswith(".dmn"):
            raise InvalidInput(f"{path}: a what-if decision table must be a .dmn file")
        ids = _decision_ids(str(path), text)
        targets = {by_decision.get(d) for d in ids}
        if not ids or None in targets or len(targets) != 1:
            unknown = sorted(d for d in ids if d not in by_decision)
            raise InvalidInput(f"{path}: defines decision(s) {', '.join(sorted(ids)) or 'none'}"
                               + (f"; not in the process library: {', '.join(unknown)}" if unknown else
                                  "; they come from different library files")
                               + f" (library decisions: {', '.join(sorted(by_decision))})")
        (target,) = targets
        files.pop(target)
        files[target] = text
    return files

