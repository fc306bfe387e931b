"""The officers' inbox query (engine.supervision.inbox.list_tasks) on both backends: whose tasks are
shown (mine, my groups' unclaimed ones, never those claimed by others), filters, sort, jurisdiction and
the capped count."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine.runtime import clock
from engine.runtime.deploy import deploy
from engine.supervision import inbox
from engine.supervision.inbox import TaskQuery, Viewer, list_tasks

OFFICERS = frozenset({"officers"})


def task_bpmn(process_id: str, *, groups: str = "officers", priority: int = 50, form_id: str | None = None) -> str:
    """One user task for ``groups`` with a due date from the start data (``due``: ISO time/duration or None)."""
    form = f'<spiffworkflow:property name="formId" value="{form_id}"/>' if form_id else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_{process_id}" targetNamespace="http://regflow.example/test">
  <bpmn:process id="{process_id}" name="{process_id}" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:userTask id="work" name="Work on {process_id}">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="candidateGroups" value="{groups}"/>
        <spiffworkflow:property name="dueIn" value="due"/>
        <spiffworkflow:property name="priority" value="{priority}"/>
        {form}
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def deploy_task_processes(runtime, session, *specs: tuple) -> None:
    """``specs``: (process_id, kwargs of task_bpmn)."""
    from engine.bootstrap import form_hasher

    files = {f"{pid}.bpmn": task_bpmn(pid, **kw) for pid, kw in specs}
    deploy(runtime, session, files, "designer", form_hash=form_hasher(runtime.settings))


def add_entity(session, uscc: str, name: str, district: str):
    from scoring.models import Entity

    e = Entity(uscc=uscc, name=name, industry_section="F", district=district, entity_type="company")
    session.add(e)
    session.flush()
    return e


def start_task(runtime, session, process_id: str, *, key: str | None = None, due=None, parent: int | None = None):
    """Start one instance; returns its open human task."""
    from sqlalchemy import select

    from engine.runtime.models import HumanTask

    due_text = due.isoformat() if hasattr(due, "isoformat") else due
    out = runtime.start(session, process_id, business_key=key, data={"due": due_text}, parent_instance_id=parent)
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == out.instance.id)).one()


USCC_A = "91410102MA0000001A"
USCC_B = "91410103MA0000002B"


@pytest.fixture
def world(runtime, db, people):
    """Tasks of officers (a, b, c, d, e, f) and of supervisors (s); entities in two districts."""
    now = clock.now()
    with db.tx() as s:
        deploy_task_processes(runtime, s, ("inbox_low", {"priority": 10}), ("inbox_high", {"priority": 90}),
                              ("inbox_sup", {"groups": "supervisors"}))
        add_entity(s, USCC_A, "郑州甲商贸有限公司", "410102")
        add_entity(s, USCC_B, "郑州乙食品店", "410103")
        t = {
            "a": start_task(runtime, s, "inbox_low", key=USCC_A, due=now - timedelta(hours=3)),   # overdue
            "b": start_task(runtime, s, "inbox_low", key=USCC_B, due=now + timedelta(hours=5)),   # today
            "c": start_task(runtime, s, "inbox_high", key=USCC_A, due=now + timedelta(days=3)),   # this week
            "d": start_task(runtime, s, "inbox_high", due=None),                                  # no due date
            "e": start_task(runtime, s, "inbox_low", key=USCC_B, due=now + timedelta(days=30)),
            "s": start_task(runtime, s, "inbox_sup", key=USCC_A),
        }
        parent = t["a"].instance_id
        t["f"] = start_task(runtime, s, "inbox_low", key=USCC_A, due=now + timedelta(days=10), parent=parent)
        ids = {k: v.id for k, v in t.items()}
    with db.tx() as s:
        runtime.claim(s, ids["b"], "alice")
        runtime.claim(s, ids["e"], "bob")
    return ids


def _ids(page) -> list[int]:
    return [r.id for r in page.rows]


def test_mine_groups_and_claimed_by_others(db, world):
    alice = Viewer("alice", OFFICERS)
    with db.tx() as s:
        every = set(_ids(list_tasks(s, alice)))
        mine = _ids(list_tasks(s, alice, TaskQuery(scope="mine")))
        groups = set(_ids(list_tasks(s, alice, TaskQuery(scope="groups"))))
        bob_all = set(_ids(list_tasks(s, Viewer("bob", OFFICERS))))
        sam_all = _ids(list_tasks(s, Viewer("sam", frozenset({"supervisors"}))))
        loner = _ids(list_tasks(s, Viewer("nobody"), TaskQuery(scope="groups")))
    w = world
    assert every == {w["a"], w["b"], w["c"], w["d"], w["f"]}  # not e (claimed by bob), not s (supervisors)
    assert mine == [w["b"]]
    assert groups == {w["a"], w["c"], w["d"], w["f"]}
    assert bob_all == {w["a"], w["c"], w["d"], w["e"], w["f"]}
    assert sam_all == [w["s"]]
    assert loner == []


def test_default_order_is_soonest_due_first_with_undated_last(db, world):
    with db.tx() as s:
        page = list_tasks(s, Viewer("alice", OFFICERS))
    w = world
    assert _ids(page) == [w["a"], w["b"], w["c"], w["f"], w["d"]]
    assert page.rows[0].overdue(page.now) and not page.rows[1].overdue(page.now)
    assert page.total == 5 and not page.capped
    a = page.rows[0]
    assert a.entity_name == "郑州甲商贸有限公司" and a.district == "410102"
    f = next(r for r in page.rows if r.id == w["f"])
    assert f.campaign_id == a.instance_id


def test_filters(db, world):
    alice = Viewer("alice", OFFICERS)
    w = world

    def ids(**kw):
        with db.tx() as s:
            return _ids(list_tasks(s, alice, TaskQuery(**kw)))

    assert set(ids(process_id="inbox_high")) == {w["c"], w["d"]}
    assert set(ids(entity="乙食品")) == {w["b"]}
    assert set(ids(entity=USCC_A.lower())) == {w["a"], w["c"], w["f"]}
    assert ids(due="overdue") == [w["a"]]
    assert ids(due="today") == [w["a"], w["b"]]
    assert ids(due="week") == [w["a"], w["b"], w["c"]]
    assert ids(due="none") == [w["d"]]
    assert set(ids(min_priority=50)) == {w["c"], w["d"]}
    assert ids(sort="priority")[:2] == [w["c"], w["d"]]
    assert ids(campaign_id=world_parent(db, w["a"])) == [w["f"]]
    assert ids(scope="mine", due="overdue") == []
    assert ids(sort="created")[0] == w["f"]


def world_parent(db, task_id: int) -> int:
    from engine.runtime.models import HumanTask

    with db.tx() as s:
        return s.get(HumanTask, task_id).instance_id


def test_jurisdiction_hides_other_districts(db, world):
    w = world
    with db.tx() as s:
        near = set(_ids(list_tasks(s, Viewer("alice", OFFICERS, ("410102",)))))
        far = set(_ids(list_tasks(s, Viewer("alice", OFFICERS, ("410103",)), TaskQuery(entity="郑州"))))
    assert near == {w["a"], w["c"], w["d"], w["f"]}  # b is in 410103; d has no entity
    assert far == {w["b"]}


def test_count_is_capped(db, world, monkeypatch):
    monkeypatch.setattr(inbox, "COUNT_CAP", 3)
    with db.tx() as s:
        page = list_tasks(s, Viewer("alice", OFFICERS), TaskQuery(limit=2))
        filtered = list_tasks(s, Viewer("alice", OFFICERS), TaskQuery(process_id="inbox_low", limit=2))
    assert (page.total, page.capped, page.has_next) == (3, True, True)
    assert len(page.rows) == 2
    assert (filtered.total, filtered.capped) == (3, False)


def test_colleagues_share_a_group(db, world):
    with db.tx() as s:
        assert [u for u, _ in inbox.colleagues(s, ["officers"], exclude="alice")] == ["bob"]
        assert inbox.colleagues(s, []) == []
