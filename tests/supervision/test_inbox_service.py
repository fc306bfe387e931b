"""The officers' inbox query (engine.supervision.inbox.list_tasks) on both backends: whose tasks are
shown (mine, my groups' unclaimed ones, never those claimed by others), filters, sort, jurisdiction and
the capped count."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy import text as sql

from engine.bootstrap import form_hasher
from engine.runtime import clock
from engine.runtime.deploy import deploy
from engine.runtime.models import HumanTask, HumanTaskCandidate
from engine.supervision import inbox
from engine.supervision.inbox import TaskQuery, Viewer, list_tasks
from scoring.models import Entity

OFFICERS = frozenset({"officers"})


def task_bpmn(process_id: str, *, groups: str = "officers", priority: int = 50, form_id: str | None = None,
              starters: str = "officers,supervisors") -> str:
    """One user task for ``groups`` with a due date from the start data (``due``: ISO time/duration or None),
    startable by the groups ``starters`` (empty: only by the engine)."""
    form = f'<spiffworkflow:property name="formId" value="{form_id}"/>' if form_id else ""
    startable = f'<spiffworkflow:property name="startableBy" value="{starters}"/>' if starters else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_{process_id}" targetNamespace="http://regflow.example/test">
  <bpmn:process id="{process_id}" name="{process_id}" isExecutable="true">
    <bpmn:extensionElements><spiffworkflow:properties>{startable}</spiffworkflow:properties></bpmn:extensionElements>
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
    files = {f"{pid}.bpmn": task_bpmn(pid, **kw) for pid, kw in specs}
    deploy(runtime, session, files, "designer", form_hash=form_hasher(runtime.settings))


def add_entity(session, uscc: str, name: str, district: str):
    e = Entity(uscc=uscc, name=name, industry_section="F", district=district, entity_type="company")
    session.add(e)
    session.flush()
    return e


def start_task(runtime, session, process_id: str, *, key: str | None = None, due=None, parent: int | None = None):
    """Start one instance; returns its open human task."""
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


# ----------------------------------------------------------------------- indexes behind search and jurisdiction
def _by_scan(s, text: str, jurisdiction: tuple[str, ...] = ()) -> list[str]:
    """What the entity search answered before the bigram index: a LIKE over the entity table."""
    q = select(Entity.uscc).where(Entity.name.contains(text, autoescape=True)).order_by(Entity.id)
    if jurisdiction:
        q = q.where(Entity.district.in_(jurisdiction))
    return list(s.scalars(q.limit(inbox.ENTITY_MATCHES)))


NAMES = {
    "91410102MA00000011": "郑州市中原区达食餐饮有限公司",
    "91410102MA00000022": "郑州市二七区达食品商贸有限公司",
    "91410103MA00000033": "Acme Trading 郑州 Co.",
    "91410103MA00000044": "百分之100%_折扣店",
    "91410104MA00000055": "（郑州）·恒通 科技",
    "91410104MA00000066": "甲",
    "91410104MA00000077": "ÉCOLE 郑州 école",
    "91410102MA00000088": "a\"b'c 达食",
}
SEARCHES = ["达食", "达食餐", "食品商贸有限公司", "郑州市中原区达食餐饮有限公司", "acme", "ACME TR", "e t", "Co.",
            "100%", "%_", "0%_折", "_", "（郑", "）·", "· 恒", "甲", "郑", "州", "école", "ÉCOLE", "COLE", "xyz", "  ",
            "\"b'", "a\"", "达食餐饮有限公司集团"]


def _check_searches(s, districts=((), ("410102",), ("410103", "410104"))):
    for text in SEARCHES:
        for jurisdiction in districts:
            assert inbox._entity_keys(s, text, jurisdiction) == _by_scan(s, text, jurisdiction), (text, jurisdiction)


def test_entity_name_search_through_bigrams_answers_as_the_scan(db):
    """Case, LIKE wildcards, quotes, punctuation, spaces, one character, and texts longer than any name:
    the same USCCs as ``name LIKE '%text%'`` (each database's own LIKE) — also after renames and deletes."""
    with db.tx() as s:
        for uscc, name in NAMES.items():
            add_entity(s, uscc, name, f"41010{uscc[7]}")
    with db.tx() as s:
        assert inbox._entity_keys(s, "达食", ()) == ["91410102MA00000011", "91410102MA00000022", "91410102MA00000088"]
        _check_searches(s)
    with db.tx() as s:
        s.execute(update(Entity).where(Entity.uscc == "91410102MA00000011").values(name="郑州市惠济区新宇药房"))
        s.execute(delete(Entity).where(Entity.uscc == "91410102MA00000022"))
        add_entity(s, "91410105MA00000099", "郑州达食（新店）", "410105")
    with db.tx() as s:
        assert inbox._entity_keys(s, "达食", ()) == ["91410102MA00000088", "91410105MA00000099"]
        assert inbox._entity_keys(s, "宇药", ()) == ["91410102MA00000011"]
        _check_searches(s)
        if db.kind == "sqlite":  # the FTS5 index is consistent after inserts, updates and deletes
            s.execute(sql("INSERT INTO entity_name_bigram (entity_name_bigram) VALUES ('integrity-check')"))


def _candidate_districts(s, task_id: int) -> set:
    return set(s.scalars(select(HumanTaskCandidate.district).where(HumanTaskCandidate.task_id == task_id)))


def test_queue_rows_carry_the_district_of_their_entity(runtime, db, people):
    """The database keeps ``human_task_candidate.district`` equal to the entity's district: when the task is
    created, when its entity is registered later, moves, changes its USCC or is deleted, and when the task's
    business key changes."""
    uscc_c = "91410104MA0000003C"
    with db.tx() as s:
        deploy_task_processes(runtime, s, ("inbox_two", {"groups": "officers,supervisors"}))
        add_entity(s, USCC_A, "郑州甲商贸有限公司", "410102")
        a = start_task(runtime, s, "inbox_two", key=USCC_A).id
        c = start_task(runtime, s, "inbox_two", key=uscc_c).id  # not in the registry (yet)
        none = start_task(runtime, s, "inbox_two").id
    near = Viewer("alice", OFFICERS, ("410104",))

    def visible() -> set:
        with db.tx() as s:
            return set(_ids(list_tasks(s, near)))

    with db.tx() as s:
        assert _candidate_districts(s, a) == {"410102"}
        assert _candidate_districts(s, c) == {None} and _candidate_districts(s, none) == {None}
    assert visible() == {c, none}
    with db.tx() as s:
        add_entity(s, uscc_c, "郑州丙科技有限公司", "410103")
    with db.tx() as s:
        assert _candidate_districts(s, c) == {"410103"}
    assert visible() == {none}
    with db.tx() as s:
        s.execute(update(Entity).where(Entity.uscc == uscc_c).values(district="410104"))
    with db.tx() as s:
        assert _candidate_districts(s, c) == {"410104"}
    assert visible() == {c, none}
    with db.tx() as s:
        s.execute(update(Entity).where(Entity.uscc == uscc_c).values(uscc="91410104MA0000004D"))
    with db.tx() as s:
        assert _candidate_districts(s, c) == {None}
        s.execute(update(Entity).where(Entity.uscc == "91410104MA0000004D").values(uscc=uscc_c))
    with db.tx() as s:
        assert _candidate_districts(s, c) == {"410104"}
        s.execute(update(HumanTask).where(HumanTask.id == a).values(business_key=uscc_c))
    with db.tx() as s:
        assert _candidate_districts(s, a) == {"410104"}
    assert visible() == {a, c, none}
    with db.tx() as s:
        s.execute(delete(Entity).where(Entity.uscc == uscc_c))
    with db.tx() as s:
        assert _candidate_districts(s, a) == {None} and _candidate_districts(s, c) == {None}
    with db.tx() as s:
        runtime.claim(s, c, "alice")  # claiming keeps the district (only ``claimed`` changes)
        add_entity(s, uscc_c, "郑州丙科技有限公司", "410102")
    with db.tx() as s:
        assert _candidate_districts(s, c) == {"410102"}
    assert visible() == {none}


@pytest.fixture
def queues(runtime, db, people):
    """40 tasks of two processes (one for two groups, priority 90) on entities in three districts, without an
    entity, or with a key no entity has; due dates on whole hours (ties), some none; every fifth claimed.
    Returns the open tasks as (id, key, assignee, due, groups, priority, created) and each USCC's
    (district, name)."""
    rnd = random.Random(7)
    now = clock.now()
    districts = ["410102", "410103", "410104"]
    with db.tx() as s:
        deploy_task_processes(runtime, s, ("inbox_o", {}), ("inbox_os", {"groups": "officers,supervisors",
                                                                          "priority": 90}))
        keys = []
        for i in range(6):
            keys.append(f"9141010{i}MA0000{i:03d}X")
            add_entity(s, keys[-1], ["郑州达食商贸有限公司", "郑州市达食品店", "新郑食达有限公司"][i % 3],
                       districts[i % 3])
        tasks = []
        for i in range(40):
            key = rnd.choice(keys + [None, "BENCH-NOT-AN-ENTITY"])
            due = None if i % 7 == 0 else now + timedelta(hours=rnd.randint(-12, 12))
            tasks.append(start_task(runtime, s, rnd.choice(["inbox_o", "inbox_os"]), key=key, due=due).id)
    with db.tx() as s:
        for t in tasks[::5]:
            runtime.claim(s, t, rnd.choice(["alice", "bob"]))
    with db.tx() as s:
        entities = {u: (d, n) for u, d, n in s.execute(select(Entity.uscc, Entity.district, Entity.name))}
        rows = s.execute(select(HumanTask.id, HumanTask.business_key, HumanTask.assignee, HumanTask.due_at,
                                HumanTask.candidate_groups, HumanTask.priority, HumanTask.created_at)
                         .where(HumanTask.status == "open")).all()
    return rows, entities, now


def _expected(queues, viewer: Viewer, q: TaskQuery) -> list[int]:
    """The tasks ``viewer`` may see for ``q``, in the query's order, by checking each task."""
    rows, entities, now = queues
    out = []
    for tid, key, assignee, due, groups, priority, created in rows:
        mine = assignee == viewer.username
        queued = assignee is None and bool(set(groups) & viewer.groups)
        if not ((q.scope in ("all", "mine") and mine) or (q.scope in ("all", "groups") and queued)):
            continue
        if viewer.jurisdiction and key in entities and entities[key][0] not in viewer.jurisdiction:
            continue
        if q.due == "overdue" and not (due is not None and due < now):
            continue
        if q.entity and not (key in entities and q.entity in entities[key][1]):
            continue
        undated = (due is None, due or now)
        out.append({"due": (*undated, tid), "priority": (-priority, *undated, tid),
                    "created": (-created.timestamp(), -tid)}[q.sort] + (tid,))
    return [key[-1] for key in sorted(out)]


def test_jurisdiction_default_view_pages_as_the_entity_check(db, queues):
    """With a jurisdiction the default view reads one range per district (and one for tasks without an
    entity) per group; the rows, their order, paging and the capped count are those of checking every
    task's entity against the districts."""
    rows, _, now = queues
    checked = 0
    for jurisdiction in [(), ("410102",), ("410103", "410104"), ("410199",)]:
        for groups in [OFFICERS, frozenset({"officers", "supervisors"})]:
            viewer = Viewer("alice", groups, jurisdiction)
            for scope in ("all", "groups", "mine"):
                for due in (None, "overdue"):
                    every = _expected(queues, viewer, TaskQuery(scope=scope, due=due))
                    for offset in (0, 4, 8):
                        with db.tx() as s:
                            page = list_tasks(s, viewer, TaskQuery(scope=scope, due=due, limit=4, offset=offset),
                                              now=now)
                        assert _ids(page) == every[offset:offset + 4], (jurisdiction, groups, scope, due, offset)
                        assert page.total == len(every) and not page.capped
                        checked += 1
    assert checked == 4 * 2 * 3 * 2 * 3


def test_entity_search_pages_sorts_and_counts_as_the_task_check(db, queues, monkeypatch):
    """A search by entity name or USCC: rows, order for each sort (ties on due dates broken by id), paging and
    the count are those of checking every task; the count is capped."""
    rows, entities, now = queues
    uscc = next(iter(entities))
    checked = 0
    for text in ("达食", "食达", "达", "郑州", uscc, "无此企业"):
        for jurisdiction in [(), ("410102",), ("410103", "410104")]:
            viewer = Viewer("alice", frozenset({"officers", "supervisors"}), jurisdiction)
            for sort in ("due", "priority", "created"):
                for scope, due in (("all", None), ("groups", None), ("all", "overdue")):
                    q = dict(entity=text, sort=sort, scope=scope, due=due)
                    every = _expected(queues, viewer, TaskQuery(**q).normalised() if text != uscc else
                                      TaskQuery(**{**q, "entity": None}).normalised())
                    if text == uscc:
                        every = [t for t in every if next(r for r in rows if r[0] == t)[1] == uscc]
                    for offset in (0, 5):
                        with db.tx() as s:
                            page = list_tasks(s, viewer, TaskQuery(**q, limit=5, offset=offset), now=now)
                        assert _ids(page) == every[offset:offset + 5], (text, jurisdiction, sort, scope, due, offset)
                        assert (page.total, page.capped) == (len(every), False)
                        checked += 1
    assert checked == 6 * 3 * 3 * 3 * 2
    monkeypatch.setattr(inbox, "COUNT_CAP", 3)
    with db.tx() as s:
        page = list_tasks(s, Viewer("bob", OFFICERS), TaskQuery(entity="郑州", limit=2), now=now)
    assert (page.total, page.capped, len(page.rows)) == (3, True, 2)
