"""An administrator terminates the process that follows a rectification order or an enforcement case
(nothing may be silently dropped): the order and the case keep their status and the hazards
stay in the registry, each records why its process stopped, the termination's audit event lists them, and
the hazard registry's ``stranded`` list shows them until a supervisor acts — settled ones and those of
running processes are left alone."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine.cli.hazards import hazards as hazards_group
from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import audit, clock
from engine.runtime.models import AuditEvent
from engine.runtime.users import set_jurisdiction
from engine.supervision import dashboard, enforcement, hazards
from engine.supervision.loop_models import EnforcementCase, Hazard, RectificationOrder
from tests.conftest import deploy_files

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
USCC = "91410105341672112H"
OTHER = "91410100MA44QC1J6F"


def _problems(s, iid: int, uscc: str, tag: str) -> tuple[list[int], RectificationOrder, EnforcementCase]:
    hs = hazards.record_hazards(s, uscc=uscc, grade="high", instance_id=iid, task_key=f"{tag}-record", now=T0,
                                findings=[{"item_code": "AR-01", "clause": "AR-01", "description": "未公示"},
                                          {"item_code": "PRICE-01", "clause": "PRC-01", "description": "未明码标价"}])
    ids = [h.id for h in hs]
    order = hazards.issue_order(s, uscc=uscc, hazard_ids=ids, days=10, instance_id=iid, task_key=f"{tag}-order",
                                now=T0)
    case = enforcement.open_case(s, uscc=uscc, lead_source="inspection", instance_id=iid, task_key=f"{tag}-case",
                                 now=T0, hazard_ids=ids[1:])
    return ids, order, case


def _two_instances_with_problems(runtime, db) -> tuple[int, list[int], int, int]:
    """Two running instances, each with two hazards, an order and a case: (the first instance, its hazards, its
    order, its case)."""
    deploy_files(runtime, db, "timers.bpmn")
    with clock.frozen(T0), db.tx() as s:
        doomed = runtime.start(s, "timers", data={"deadline": "P30D"}).instance.id
        alive = runtime.start(s, "timers", data={"deadline": "P30D"}).instance.id
        ids, order, case = _problems(s, doomed, USCC, "a")
        _problems(s, alive, OTHER, "b")
        return doomed, ids, order.id, case.id


def test_terminated_process_strands_its_order_and_case(runtime, db, people):
    doomed, ids, order_id, case_id = _two_instances_with_problems(runtime, db)
    with clock.frozen(T0), db.tx() as s:
        settled = hazards.issue_order(s, uscc=USCC, hazard_ids=ids[:1], days=5, instance_id=doomed, task_key="a-old",
                                      now=T0)
        settled.status = "verified"
        settled_id = settled.id
    with db.tx() as s:
        assert dashboard.stranded(s) == (0, [])
    at = T0 + timedelta(days=3)
    with clock.frozen(at), db.tx() as s:
        runtime.terminate(s, doomed, "sam", "opened for the wrong entity")

    with db.tx() as s:
        o, c = s.get(RectificationOrder, order_id), s.get(EnforcementCase, case_id)
        assert (o.status, c.status) == ("issued", "lead")  # stopping a process settles nothing
        for row in (o, c):
            assert row.history[-1] == {"at": at.isoformat(), "event": "process_terminated", "instance_id": doomed,
                                       "reason": "opened for the wrong entity"}
        # a settled order is left alone
        assert [e["event"] for e in s.get(RectificationOrder, settled_id).history] == ["issued"]
        for h in s.scalars(select(Hazard).where(Hazard.id.in_(ids))):
            assert h.status == "open"
            assert h.history[-1]["event"] == "process_terminated" and h.history[-1]["orders"] == [order_id]
        cleanup = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == doomed,
                                                     AuditEvent.kind == "termination_cleanup")).one()
        assert cleanup.detail == {"orders_stranded": [order_id], "hazards_without_process": ids,
                                  "cases_stranded": [case_id]}
        assert audit.verify(s, audit.instance_chain(doomed)).ok

        n, rows = dashboard.stranded(s)
        assert n == 2 and {(r.kind, r.id) for r in rows} == {("order", order_id), ("case", case_id)}
        by_kind = {r.kind: r for r in rows}
        assert by_kind["order"].hazard_ids == ids and by_kind["case"].hazard_ids == ids[1:]
        assert all(r.instance_id == doomed and r.uscc == USCC and r.terminated_at == at
                   and r.reason == "sam: opened for the wrong entity" for r in rows)

        # a supervisor closes the case: it leaves the list, the order stays
        enforcement.close_case(s, case_id, "lead not substantiated", at)
    with db.tx() as s:
        assert [(r.kind, r.id) for r in dashboard.stranded(s)[1]] == [("order", order_id)]


def test_nothing_to_strand_adds_no_cleanup_detail(runtime, db, people):
    deploy_files(runtime, db, "timers.bpmn")
    with clock.frozen(T0), db.tx() as s:
        iid = runtime.start(s, "timers", data={"deadline": "P1D"}).instance.id
    with clock.frozen(T0), db.tx() as s:
        runtime.terminate(s, iid, "sam", "duplicate")
        kinds = s.scalars(select(AuditEvent.kind).where(AuditEvent.instance_id == iid)).all()
    assert "termination_cleanup" not in kinds


def _stranded_for_cli(runtime, db, monkeypatch):
    """The first instance of ``_two_instances_with_problems`` terminated, the CLI pointed at ``db``:
    (invoke, the ``hazards`` group, its hazards, its order, its case)."""

    doomed, ids, order_id, case_id = _two_instances_with_problems(runtime, db)
    with clock.frozen(T0 + timedelta(days=1)), db.tx() as s:
        runtime.terminate(s, doomed, "sam", "opened for the wrong entity")
    monkeypatch.setenv("REGFLOW_DATABASE_URL", db.url)
    return CliRunner().invoke, hazards_group, doomed, ids, order_id, case_id


def test_hazards_cli(runtime, db, people, monkeypatch):
    """``regflow hazards list|overdue|stranded`` shows what the registry page shows."""
    run, hazards_group, doomed, ids, order_id, case_id = _stranded_for_cli(runtime, db, monkeypatch)

    r = run(hazards_group, ["stranded", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["total"] == 2
    assert {(i["kind"], i["id"]) for i in doc["items"]} == {("order", order_id), ("case", case_id)}
    assert all(i["reason"] == "sam: opened for the wrong entity" and i["instance_id"] == doomed for i in doc["items"])
    r = run(hazards_group, ["stranded"])
    assert r.exit_code == 0 and "2 order(s) and case(s) without a running process" in r.output

    r = run(hazards_group, ["list", "--json", "--uscc", USCC])
    doc = json.loads(r.output)
    assert doc["total"] == 2 and sorted(h["id"] for h in doc["hazards"]) == sorted(ids)
    assert json.loads(run(hazards_group, ["list", "--json"]).output)["total"] == 4
    assert json.loads(run(hazards_group, ["list", "--json", "--grade", "low"]).output)["total"] == 0
    r = run(hazards_group, ["list", "--status", "nonsense"])
    assert r.exit_code == 2 and "nonsense" in r.output

    with clock.frozen(T0 + timedelta(days=60)):
        doc = json.loads(run(hazards_group, ["overdue", "--json"]).output)
    assert doc["total"] == 2 and order_id in [o["id"] for o in doc["orders"]]
    assert all(o["days_overdue"] > 0 for o in doc["orders"])


def test_supervisor_closes_a_stranded_order_and_terminates_its_case(runtime, db, people):
    """Closing the stranded order closes its hazards that nothing else covers (the one in the open case stays
    listed until the case ends); the case is then terminated; both land in the system audit chain. An
    order or case of a running process, a settled one and a missing reason are refused, nothing changed."""
    doomed, ids, order_id, case_id = _two_instances_with_problems(runtime, db)
    with db.tx() as s:
        alive_order = s.scalars(select(RectificationOrder.id).where(RectificationOrder.uscc == OTHER)).one()
    at = T0 + timedelta(days=2)
    with clock.frozen(T0 + timedelta(days=1)), db.tx() as s:
        runtime.terminate(s, doomed, "sam", "opened for the wrong entity")

    with db.tx() as s:
        with pytest.raises(InvalidInput, match="reason is required"):
            hazards.close_stranded_order(s, order_id, reason="  ", actor="sam", now=at)
        with pytest.raises(Conflict, match="followed by instance .* \\(running\\)"):
            hazards.close_stranded_order(s, alive_order, reason="x", actor="sam", now=at)
        with pytest.raises(NotFound):
            hazards.close_stranded_order(s, 999_999, reason="x", actor="sam", now=at)
    with db.tx() as s:
        assert s.get(RectificationOrder, order_id).status == "issued"

    with clock.frozen(at), db.tx() as s:
        out = hazards.close_stranded_order(s, order_id, reason="rectified, confirmed by the district office",
                                           actor="sam", now=at)
    assert out == {"order_id": order_id, "status": "closed_other",
                   "reason": "rectified, confirmed by the district office",
                   "hazards_closed": ids[:1], "hazards_kept": ids[1:]}
    with db.tx() as s:
        o = s.get(RectificationOrder, order_id)
        assert o.history[-1] == {"at": at.isoformat(), "event": "closed_other", "by": "sam",
                                 "reason": "rectified, confirmed by the district office"}
        closed, kept = s.get(Hazard, ids[0]), s.get(Hazard, ids[1])
        assert (closed.status, closed.closed_reason, closed.closed_at) == (
            "closed_other", "rectified, confirmed by the district office", at)
        assert kept.status == "open"
        assert [(r.kind, r.id) for r in dashboard.stranded(s)[1]] == [("case", case_id)]
        with pytest.raises(Conflict, match="already closed_other"):
            hazards.close_stranded_order(s, order_id, reason="again", actor="sam", now=at)

    with clock.frozen(at), db.tx() as s:
        assert enforcement.terminate_stranded_case(s, case_id, reason="duplicate lead", actor="sam", now=at) == {
            "case_id": case_id, "status": "terminated", "reason": "duplicate lead"}
    with db.tx() as s:
        c = s.get(EnforcementCase, case_id)
        assert (c.status, c.close_reason) == ("terminated", "duplicate lead")
        assert dashboard.stranded(s) == (0, [])
        events = s.scalars(select(AuditEvent).where(AuditEvent.chain == audit.SYSTEM_CHAIN,
                                                    AuditEvent.kind.like("stranded_%")).order_by(AuditEvent.seq)).all()
        assert [(e.kind, e.actor) for e in events] == [("stranded_order_closed", "sam"),
                                                       ("stranded_case_terminated", "sam")]
        assert events[0].detail["hazards_closed"] == ids[:1] and events[1].detail["case_id"] == case_id
        assert audit.verify(s, audit.SYSTEM_CHAIN).ok


def test_cli_closes_stranded_orders_and_cases(runtime, db, people, monkeypatch):
    run, hazards_group, _doomed, ids, order_id, case_id = _stranded_for_cli(runtime, db, monkeypatch)
    r = run(hazards_group, ["terminate-case", str(case_id), "--reason", "duplicate lead", "--user", "sam", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["status"] == "terminated"
    r = run(hazards_group, ["close-order", str(order_id), "--reason", "handled on paper", "--user", "sam", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["hazards_closed"] == ids  # the case no longer covers any of them
    r = run(hazards_group, ["close-order", str(order_id), "--reason", "again", "--user", "sam"])
    assert r.exit_code == 4 and "already closed_other" in r.output
    r = run(hazards_group, ["close-order", str(order_id), "--user", "sam"])
    assert r.exit_code == 2 and "--reason" in r.output


def test_cli_settles_only_as_a_supervisor_of_the_jurisdiction(runtime, db, people, monkeypatch):
    """``close-order`` / ``terminate-case`` go through the command's policy: an officer is refused (exit 5); a
    supervisor limited to a district is refused an order about no registered entity (city-wide); nothing is
    written either time."""
    run, hazards_group, _doomed, _ids, order_id, case_id = _stranded_for_cli(runtime, db, monkeypatch)

    def state():
        with db.tx() as s:
            return (s.get(RectificationOrder, order_id).status, s.get(EnforcementCase, case_id).status,
                    s.scalar(select(func.count()).select_from(AuditEvent)))

    before = state()
    r = run(hazards_group, ["close-order", str(order_id), "--reason", "handled", "--user", "alice"])
    assert r.exit_code == 5 and "supervisor" in r.output
    with db.tx() as s:
        set_jurisdiction(s, "sam", ["410102"], actor="admin")
    before = state()
    r = run(hazards_group, ["terminate-case", str(case_id), "--reason", "duplicate lead", "--user", "sam"])
    assert r.exit_code == 5 and f"Enforcement case {case_id} concerns no registered entity" in r.output
    r = run(hazards_group, ["close-order", "999999", "--reason", "x", "--user", "sam"])
    assert r.exit_code == 3
    assert state() == before
    with db.tx() as s:
        set_jurisdiction(s, "sam", [], actor="admin")
    r = run(hazards_group, ["terminate-case", str(case_id), "--reason", "duplicate lead", "--user", "sam"])
    assert r.exit_code == 0, r.output
