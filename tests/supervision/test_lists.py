"""The two lists as registries (engine.supervision.lists): entry with reason and basis, no double listing, the flags
as a projection, removal, removal applications, the 3-year escalation at its China-time boundary, audit rows, the
inspection's listings through the registry — on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime.models import AuditEvent
from engine.supervision import inspection, list_jobs, lists
from engine.supervision.calendar import SHANGHAI
from engine.supervision.list_models import ListEntry
from scoring.models import Entity

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)  # 02:00 UTC


def uscc(n: int) -> str:
    return f"91410105MA{n:07d}X"


def add_entity(s, n: int, **kw) -> Entity:
    e = Entity(uscc=uscc(n), name=f"测试企业{n}有限公司", industry_section="F", district="410105", entity_type="llc",
               status=kw.pop("status", "active"), **kw)
    s.add(e)
    s.flush()
    return e


def events(s, kind: str) -> list[AuditEvent]:
    return list(s.scalars(select(AuditEvent).where(AuditEvent.chain == "system", AuditEvent.kind == kind)
                          .order_by(AuditEvent.seq)))


def enter_abnormal(s, e, *, code="false_information", reason="公示信息弄虚作假", at=T0, instance_id=None):
    return lists.enter(s, list_kind="abnormal", entity_id=e.id, reason=reason, legal_basis=lists.ABNORMAL_BASIS,
                       reason_code=code, now=at, actor="officer1", instance_id=instance_id)


def test_enter_records_reason_basis_and_sets_the_flags(db):
    with db.tx() as s:
        e = add_entity(s, 1)
        entry, created = enter_abnormal(s, e, instance_id=42)
        assert created and entry.status == "listed" and entry.uscc == e.uscc
        assert (entry.reason_code, entry.reason, entry.legal_basis) == (
            "false_information", "公示信息弄虚作假", "《企业信息公示暂行条例》")
        assert entry.entered_by == "officer1" and entry.instance_id == 42
        assert entry.escalates_on == date(2029, 3, 10)
        s.refresh(e)
        assert e.abnormal_list is True and e.abnormal_list_ever is True and e.serious_list is False
        (ev,) = events(s, "list_entered")
        assert ev.actor == "officer1"
        assert ev.detail["entry_id"] == entry.id and ev.detail["instance_id"] == 42
        assert ev.detail["list"] == "abnormal" and ev.detail["uscc"] == e.uscc
    with db.tx() as s:
        serious, _ = lists.enter(s, list_kind="serious", entity_id=e.id, reason="受到较重行政处罚",
                                 legal_basis=lists.SERIOUS_BASIS, now=T0, actor="worker")
        assert serious.escalates_on is None and serious.reason_code.startswith("other:")
        assert s.get(Entity, e.id).serious_list is True


def test_bad_input_is_refused_and_changes_nothing(db):
    with db.tx() as s:
        e = add_entity(s, 2)
        with pytest.raises(InvalidInput):
            lists.enter(s, list_kind="grey", entity_id=e.id, reason="x", legal_basis="y", now=T0, actor="a")
        with pytest.raises(InvalidInput):
            lists.enter(s, list_kind="abnormal", entity_id=e.id, reason="  ", legal_basis="y", now=T0, actor="a")
        with pytest.raises(InvalidInput):
            lists.enter(s, list_kind="abnormal", entity_id=e.id, reason="x" * 501, legal_basis="y", now=T0,
                        actor="a")
        with pytest.raises(InvalidInput):
            lists.enter(s, list_kind="abnormal", entity_id=e.id, reason="x", legal_basis="y", reason_code="Bad Code",
                        now=T0, actor="a")
        with pytest.raises(NotFound):
            lists.enter(s, list_kind="abnormal", entity_id=99999, reason="x", legal_basis="y", now=T0, actor="a")
        assert s.scalars(select(ListEntry)).all() == []
        assert s.get(Entity, e.id).abnormal_list is False


def test_an_entity_listed_for_the_same_reason_is_not_listed_twice(db):
    with db.tx() as s:
        e = add_entity(s, 3)
        first, created = enter_abnormal(s, e)
        again, created_again = enter_abnormal(s, e, reason="另一次同一事由")
        assert created and not created_again and again.id == first.id
        other, created_other = enter_abnormal(s, e, code="unreachable", reason="无法联系")
        assert created_other and other.id != first.id
        # without a code the text is the reason: the same text lists once, another text again
        a, _ = enter_abnormal(s, e, code=None, reason="自由文本事由")
        b, created_b = enter_abnormal(s, e, code=None, reason="自由文本事由")
        c, created_c = enter_abnormal(s, e, code=None, reason="另一个自由文本事由")
        assert a.id == b.id and not created_b and created_c
        assert len(events(s, "list_entered")) == 4
    # the database itself refuses a second open entry for the same reason (concurrent steps)
    with pytest.raises(IntegrityError), db.tx() as s:
        s.add(ListEntry(list_kind="abnormal", entity_id=e.id, uscc=e.uscc, reason_code="false_information",
                        reason="dup", legal_basis="x", entered_at=T0, entered_by="x", status="listed"))
        s.flush()


def test_removal_keeps_the_row_and_clears_the_flag_with_the_last_open_entry(db):
    with db.tx() as s:
        e = add_entity(s, 4)
        a, _ = enter_abnormal(s, e)
        b, _ = enter_abnormal(s, e, code="unreachable", reason="无法联系")
        removed = lists.remove(s, list_kind="abnormal", entity_id=e.id, reason_code="false_information",
                               reason="已更正公示信息", now=T0 + timedelta(days=30), actor="officer2", instance_id=7)
        assert [x.id for x in removed] == [a.id]
        assert (a.status, a.removal_kind, a.removed_by, a.removal_reason) == (
            "removed", "correction", "officer2", "已更正公示信息")
        assert s.get(Entity, e.id).abnormal_list is True  # b is still open
        lists.remove(s, list_kind="abnormal", entity_id=e.id, reason="已恢复联系", now=T0 + timedelta(days=31),
                     actor="officer2")
        assert b.status == "removed" and s.get(Entity, e.id).abnormal_list is False
        assert s.get(Entity, e.id).abnormal_list_ever is True  # the history factor stays
        with pytest.raises(Conflict):
            lists.remove_entry(s, a, removal_kind="correction", reason="again", now=T0, actor="x")
        assert lists.remove(s, list_kind="abnormal", entity_id=e.id, reason="nothing open", now=T0, actor="x") == []
        ev = events(s, "list_removed")
        assert [x.detail["entry_id"] for x in ev] == [a.id, b.id]
        assert ev[0].detail["removal_kind"] == "correction" and ev[0].detail["instance_id"] == 7
        # a removed reason may be listed again: a new entry
        again, created = enter_abnormal(s, e)
        assert created and again.id not in (a.id, b.id)


def test_removal_application_reject_then_approve(db):
    with db.tx() as s:
        e = add_entity(s, 5)
        entry, _ = enter_abnormal(s, e)
        app = list_jobs.apply_for_removal(s, entry_id=entry.id, statement="已更正并重新公示", evidence=["EV-1"],
                                          actor="clerk", now=T0 + timedelta(days=3))
        with pytest.raises(Conflict):  # one pending application per entry
            list_jobs.apply_for_removal(s, entry_id=entry.id, statement="again", evidence=[], actor="clerk",
                                        now=T0 + timedelta(days=3))
        with pytest.raises(InvalidInput):  # a rejection tells the applicant why
            list_jobs.review_application(s, app.id, approve=False, note=" ", actor="chief", now=T0)
        list_jobs.review_application(s, app.id, approve=False, note="证明材料不足", actor="chief",
                                     now=T0 + timedelta(days=5))
        assert (app.status, app.reviewed_by, app.review_note) == ("rejected", "chief", "证明材料不足")
        assert entry.status == "listed" and s.get(Entity, e.id).abnormal_list is True
        with pytest.raises(Conflict):
            list_jobs.review_application(s, app.id, approve=True, note=None, actor="chief", now=T0)
        app2 = list_jobs.apply_for_removal(s, entry_id=entry.id, statement="补充材料", evidence=["EV-2", "EV-3"],
                                           actor="clerk", now=T0 + timedelta(days=8))
        list_jobs.review_application(s, app2.id, approve=True, note="核实已更正", actor="chief",
                                     now=T0 + timedelta(days=9))
        assert app2.status == "approved"
        assert (entry.status, entry.removal_kind, entry.removal_reason) == ("removed", "application", "核实已更正")
        assert s.get(Entity, e.id).abnormal_list is False
        with pytest.raises(Conflict):  # nothing left to apply for
            list_jobs.apply_for_removal(s, entry_id=entry.id, statement="x", evidence=[], actor="clerk", now=T0)
        assert [x.detail["decision"] for x in events(s, "list_removal_reviewed")] == ["rejected", "approved"]
        assert len(events(s, "list_removal_applied")) == 2
    with pytest.raises(InvalidInput):
        list_jobs.evidence_refs(["x"] * 21)
    with pytest.raises(InvalidInput):
        list_jobs.evidence_refs([{"nested": 1}])


def test_three_year_escalation_happens_on_the_china_date(db):
    with db.tx() as s:
        e = add_entity(s, 6)
        entry, _ = enter_abnormal(s, e, at=T0)
        entry_id = entry.id
    before = datetime(2029, 3, 9, 23, 59, 59, tzinfo=SHANGHAI)
    at = datetime(2029, 3, 10, 0, 0, tzinfo=SHANGHAI)
    assert at.astimezone(timezone.utc).date() == date(2029, 3, 9)  # still the 9th in UTC: China time decides
    with db.tx() as s:
        assert lists.escalate_due(s, before)["escalated"] == 0
        assert s.get(ListEntry, entry_id).status == "listed"
    with db.tx() as s:
        out = lists.escalate_due(s, at)
        assert out["escalated"] == 1 and out["date"] == "2029-03-10"
        a = s.get(ListEntry, entry_id)
        serious = s.get(ListEntry, a.escalated_to_id)
        assert (a.status, a.removal_kind) == ("removed", "escalated")
        assert (serious.list_kind, serious.status, serious.reason_code, serious.legal_basis) == (
            "serious", "listed", "abnormal_3_years", "《市场监督管理严重违法失信名单管理办法》")
        ent = s.get(Entity, e.id)
        assert ent.serious_list is True and ent.abnormal_list is False
        assert [x.detail["entry_id"] for x in events(s, "list_entered")] == [entry_id, serious.id]
    with db.tx() as s:  # run again the same day: nothing more
        assert lists.escalate_due(s, at + timedelta(hours=5))["escalated"] == 0


def test_a_corrected_entry_never_escalates(db):
    with db.tx() as s:
        e = add_entity(s, 7)
        enter_abnormal(s, e, at=T0)
        lists.remove(s, list_kind="abnormal", entity_id=e.id, reason="已更正", now=T0 + timedelta(days=400),
                     actor="x")
    with db.tx() as s:
        assert lists.escalate_due(s, datetime(2030, 1, 1, tzinfo=SHANGHAI))["escalated"] == 0
        assert s.get(Entity, e.id).serious_list is False


def test_inspection_results_list_through_the_registry(db):
    with db.tx() as s:
        e = add_entity(s, 8)
        out = inspection.record_result(s, uscc=e.uscc, entity_id=e.id, result_code="result_C", findings=[], now=T0,
                                       actor="leader1", instance_id=11)
        assert out["consequence"] == "abnormal_list"
        (entry,) = lists.open_entries(s, e.id, "abnormal")
        assert (entry.reason_code, entry.instance_id, entry.entered_by) == ("false_information", 11, "leader1")
        r1 = inspection.list_abnormal(s, entity_id=e.id, reason="result_6: cannot be contacted", now=T0,
                                      actor="worker", instance_id=12)
        r2 = inspection.list_abnormal(s, entity_id=e.id, reason="result_6: cannot be contacted", now=T0,
                                      actor="worker", instance_id=13)
        assert not r1["already_listed"] and r2["already_listed"] and r1["entry_id"] == r2["entry_id"]
        unreachable = s.get(ListEntry, r1["entry_id"])
        assert unreachable.reason_code == "unreachable" and unreachable.reason.startswith("通过登记的住所")
        assert s.get(Entity, e.id).abnormal_list is True


def test_an_imported_flag_is_adopted_as_an_entry_and_stays_until_removed(db):
    with db.tx() as s:
        e = add_entity(s, 9, abnormal_list=True)  # flagged by an import, no entry behind it
        entry, _ = enter_abnormal(s, e, code="unreachable", reason="无法联系")
        imported = [x for x in lists.open_entries(s, e.id, "abnormal") if x.reason_code == "imported"]
        assert len(imported) == 1 and imported[0].escalates_on is None
        lists.remove_entry(s, entry, removal_kind="correction", reason="已恢复联系", now=T0, actor="x")
        assert s.get(Entity, e.id).abnormal_list is True  # the imported listing is still open
        lists.remove(s, list_kind="abnormal", entity_id=e.id, reason="核实已更正", now=T0, actor="x")
        assert s.get(Entity, e.id).abnormal_list is False
        # the registry now knows the entity: nothing is adopted again
        assert lists.adopt(s, s.get(Entity, e.id), "abnormal", T0, "x") is None
        f = add_entity(s, 10, serious_list=True)
        (removed,) = lists.remove(s, list_kind="serious", entity_id=f.id, reason="期满", removal_kind="expiry",
                                  now=T0, actor="x")
        assert removed.reason_code == "imported" and s.get(Entity, f.id).serious_list is False
