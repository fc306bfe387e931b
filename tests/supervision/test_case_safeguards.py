"""The safeguards' service rules (issue 18; the process wiring: test_enforcement_safeguards.py): a review needs a
filed case, a known kind and outcome and the reviewer's reasons; evidence held is due the 7th working day after it
was held (Penalty Law art. 85) and a decision after that is recorded as late; the summary procedure takes a lead
(never a filed case) to a decision with a warning or a fine only."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from engine.errors import Conflict, InvalidInput
from engine.supervision import calendar as cal
from engine.supervision import case_safeguards as safeguards
from engine.supervision import enforcement

SH = cal.SHANGHAI
AT = datetime(2026, 9, 29, 10, 0, tzinfo=SH)  # Tuesday before National Day (1–7 October 2026 rest)
U = "91350100M000100Y43"


@pytest.fixture
def tx(db):
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
    yield db.tx
    cal.use_calendar(None)


def lead(s, key: str = "t") -> int:
    return enforcement.open_case(s, uscc=U, lead_source="complaint", instance_id=1, task_key=key, now=AT).id


def test_a_review_needs_a_filed_case_a_known_outcome_and_reasons(tx):
    with tx() as s:
        case_id = lead(s)
        with pytest.raises(Conflict):
            safeguards.record_review(s, case_id, "legal_review", "agree", opinion="同意", reviewer="leo", now=AT)
        enforcement.file_case(s, case_id, AT)
        with pytest.raises(InvalidInput):
            safeguards.record_review(s, case_id, "legal_review", "maybe", opinion="同意", reviewer="leo", now=AT)
        with pytest.raises(InvalidInput):
            safeguards.record_review(s, case_id, "peer_review", "agree", opinion="同意", reviewer="leo", now=AT)
        with pytest.raises(InvalidInput):
            safeguards.record_review(s, case_id, "legal_review", "disagree", opinion="  ", reviewer="leo", now=AT)
        out = safeguards.record_review(s, case_id, "legal_review", "supplement", opinion="补充证据", reviewer="leo",
                                       now=AT)
        assert out == {"kind": "legal_review", "outcome": "supplement", "by": "leo", "round": 1}
        out = safeguards.record_review(s, case_id, "legal_review", "agree", opinion="同意", reviewer="leo", now=AT)
        assert out["round"] == 2


def test_evidence_held_is_due_on_the_7th_working_day_across_national_day(tx):
    with tx() as s:
        case_id = lead(s)
        enforcement.file_case(s, case_id, AT)
        with pytest.raises(Conflict):
            safeguards.decide_hold(s, case_id, "release", decided_on=AT, note="", now=AT)  # nothing held yet
        held = safeguards.hold_evidence(s, case_id, items="涉案商品", held_on=AT, now=AT)
        # working days: 30 September, 8, 9, 10 (a swapped Saturday), 12, 13, 14 October (1–7 October rest)
        due = cal.current_calendar().add_workdays(AT, 7).at
        assert held["decide_by"] == due.isoformat() and due.astimezone(SH).date() == date(2026, 10, 14)
        with pytest.raises(InvalidInput):
            safeguards.decide_hold(s, case_id, "keep_forever", decided_on=AT, note="", now=AT)
        late = safeguards.decide_hold(s, case_id, "release", decided_on=due.replace(day=due.day + 1), note="退还",
                                      now=AT)
        assert late["late"] is True
        (decided,) = [e for e in enforcement.get_case(s, case_id).history if e["event"] == "evidence_hold_decided"]
        assert decided["late"] is True and decided["decision"] == "release"


def test_the_summary_procedure_decides_a_lead_with_a_warning_or_a_fine_only(tx):
    with tx() as s:
        case_id = lead(s)
        with pytest.raises(InvalidInput):
            safeguards.decide_summary(s, case_id, penalties=["fine", "suspend"], fine=100, decision_number="当场1",
                                      decided_at=AT, now=AT)
        with pytest.raises(InvalidInput):
            safeguards.decide_summary(s, case_id, penalties=["fine"], fine=None, decision_number="当场1",
                                      decided_at=AT, now=AT)
        c = safeguards.decide_summary(s, case_id, penalties=["warning"], fine=None, decision_number="当场1",
                                      decided_at=AT, now=AT)
        assert (c.procedure, c.status, c.penalties, c.fine, c.filed_at) == ("summary", "decided", ["warning"], None,
                                                                            None)
        again = safeguards.decide_summary(s, case_id, penalties=["warning"], fine=None, decision_number="当场1",
                                          decided_at=AT, now=AT)
        assert again is c and [e["event"] for e in c.history] == ["lead_opened", "decided"]
        filed = lead(s, "t2")
        enforcement.file_case(s, filed, AT)
        with pytest.raises(Conflict):  # a filed case takes the ordinary procedure to its end
            safeguards.decide_summary(s, filed, penalties=["warning"], fine=None, decision_number="当场2",
                                      decided_at=AT, now=AT)
