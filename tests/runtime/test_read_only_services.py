"""Service operators registered with ``writes=False`` run without a savepoint, and (with the suite's
cross-check on) one that writes anyway is stopped before its write reaches the database."""
from __future__ import annotations

from sqlalchemy import event, select, text

from engine.runtime import script_engine
from engine.runtime.models import AuditEvent, HumanTask, Job, ProcessInstance
from scoring.models import Entity
from tests.conftest import deploy_files


def _statements(db):
    seen: list[str] = []

    def on(_conn, _cursor, statement, *_a):
        seen.append(statement.split()[0].upper())
    return seen, on


def test_read_only_operator_runs_without_a_savepoint(runtime, db, people):
    deploy_files(runtime, db, "peek.bpmn", "service.bpmn")
    seen, on = _statements(db)
    with db.tx() as s:
        conn = s.connection()
        event.listen(conn, "before_cursor_execute", on)
        try:
            iid = runtime.start(s, "peek_flow", data={"label": "x", "mode": "ok"}).instance.id
        finally:
            event.remove(conn, "before_cursor_execute", on)
    assert "SAVEPOINT" not in seen and "RELEASE" not in seen
    with db.tx() as s:
        (t,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid)).all()
        assert t.bpmn_id == "done"
        wf = runtime.load_workflow(s, iid)
    assert wf.get_tasks(spec_name="done")[0].data["peeked"] == {"label": "x", "instance": iid}
    # a writing operator still gets its savepoint
    seen.clear()
    with db.tx() as s:
        conn = s.connection()
        event.listen(conn, "before_cursor_execute", on)
        try:
            sid = runtime.start(s, "service_flow", data={"label": "y", "mode": "ok"}).instance.id
            (t,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == sid)).all()
            runtime.complete_task(s, t.id, "alice", {})
        finally:
            event.remove(conn, "before_cursor_execute", on)
    assert "SAVEPOINT" in seen and "RELEASE" in seen


def test_read_only_operator_that_writes_is_stopped(runtime, db, people):
    assert script_engine.CROSS_CHECK, "the suite runs with REGFLOW_ENGINE_CROSS_CHECK=1"
    deploy_files(runtime, db, "peek.bpmn")
    with db.tx() as s:
        out = runtime.start(s, "peek_flow", data={"label": "sneaky", "mode": "write"})
        iid = out.instance.id
    assert out.failure and "writes=False" in out.failure["error"] and out.failure["bpmn_id"] == "record"
    with db.tx() as s:
        has_table = s.execute(text(
            "select count(*) from information_schema.tables where table_name = 'test_effect'"
            if s.get_bind().dialect.name == "postgresql" else
            "select count(*) from sqlite_master where name = 'test_effect'")).scalar()
        assert not has_table or s.execute(text("select count(*) from test_effect")).scalar() == 0
        assert s.scalars(select(Job.kind).where(Job.instance_id == iid)).all() == ["retry"]
        kinds = list(s.scalars(select(AuditEvent.kind).where(AuditEvent.instance_id == iid)))
    assert "service_failed" in kinds


def test_read_only_operator_error_reaches_its_boundary(runtime, db, people):
    deploy_files(runtime, db, "peek.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "peek_flow", data={"label": "gone", "mode": "unreachable"}).instance.id
        (t,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid)).all()
    assert t.bpmn_id == "handle_unreachable"


def test_failed_writing_operator_leaves_loaded_objects_as_stored(runtime, db, people):
    """An operator that wrote with Core and set a loaded object's committed values (scoring does), then
    failed: its savepoint is rolled back and the session's objects are expired, so the object reads what
    the database holds, not the value that was rolled back."""
    deploy_files(runtime, db, "score_fail.bpmn")
    with db.tx() as s:
        e = Entity(uscc="91410105341672112H", name="e", industry_section="F", district="410105",
                   entity_type="llc", risk_score=0.1, risk_class="A")
        s.add(e)
        s.flush()
        out = runtime.start(s, "score_fail_flow", data={"label": str(e.id), "mode": "x"})
        assert out.failure and "fell over" in out.failure["error"]
        assert (e.risk_score, e.risk_class) == (0.1, "A")
    with db.tx() as s:
        assert (s.get(Entity, e.id).risk_score, s.get(Entity, e.id).risk_class) == (0.1, "A")


def test_operator_without_instance_row_runs_before_the_row_is_written(runtime, db, people):
    """An operator registered with ``instance_row=False`` runs in a new instance without its row being
    written first: the batch writes the rows of such instances together when it flushes. A default operator
    (``test.record``) finds its instance's row when it runs."""
    deploy_files(runtime, db, "detached.bpmn", "service.bpmn")
    seen: list[str] = []

    def on(_conn, _cursor, statement, *_a):
        if statement.lstrip().upper().startswith("INSERT INTO PROCESS_INSTANCE"):
            seen.append("insert")
    with db.tx() as s:
        conn = s.connection()
        event.listen(conn, "before_cursor_execute", on)
        try:
            outs = runtime.start_many(s, "detached_flow", [{"data": {"label": f"d{i}"}} for i in range(3)])
        finally:
            event.remove(conn, "before_cursor_execute", on)
    assert seen == ["insert"], "three new instances, one INSERT at the batch's flush"
    ids = [o.instance.id for o in outs]
    with db.tx() as s:
        assert [s.get(ProcessInstance, i).status for i in ids] == ["running"] * 3
        for i in ids:
            wf = runtime.load_workflow(s, i)
            assert wf.get_tasks(spec_name="done")[0].data["detached"]["row_exists"] is False
        labels = sorted(s.execute(text("SELECT label FROM test_effect")).scalars())
    assert labels == ["d0", "d1", "d2"]
