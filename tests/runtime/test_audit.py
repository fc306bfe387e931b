"""The audit log detects any edited, deleted (newest included) or reordered row."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update

from engine.runtime import audit
from engine.runtime.models import AuditAnchor, AuditEvent
from engine.runtime.users import authenticate
from tests.conftest import deploy_files


@pytest.fixture
def history(runtime, db, people):
    deploy_files(runtime, db, "minimal.bpmn")
    ids = []
    for amount in (7, 8):
        with db.tx() as s:
            ids.append(runtime.start(s, "minimal", data={"amount": amount}).instance.id)
    with db.tx() as s:
        audit.write_anchor(s)
    with db.tx() as s:
        t = runtime_task(s, ids[0])
        runtime.complete_task(s, t, "sam", {"ok": True})
    with db.tx() as s:
        assert audit.verify(s).ok
    return ids


def runtime_task(s, iid):
    from engine.runtime.models import HumanTask
    return s.scalars(select(HumanTask.id).where(HumanTask.instance_id == iid, HumanTask.status == "open")).first()


def problems(db):
    with db.tx() as s:
        report = audit.verify(s)
    assert not report.ok
    return " | ".join(p["problem"] for p in report.problems)


def rows(db, iid):
    with db.tx() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.chain == f"instance:{iid}").order_by(AuditEvent.seq)).all()


def test_system_chain_records_deploys_users_and_sign_ins(db, history):
    with db.tx() as s:
        assert authenticate(s, "alice", "alice-pass-1") is not None
        assert authenticate(s, "alice", "wrong") is None
    with db.tx() as s:
        kinds = [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == "system")
                                          .order_by(AuditEvent.seq))]
        assert kinds[:3] == ["user_added"] * 3 and "deployed" in kinds
        assert kinds[-2:] == ["sign_in", "sign_in_failed"]
        assert audit.verify(s).ok


def test_edited_row_detected(db, history):
    target = rows(db, history[0])[2]
    with db.tx() as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(actor="mallory"))
    assert "edited" in problems(db)


def test_edited_data_diff_detected(db, history):
    target = next(r for r in rows(db, history[0]) if r.kind == "task_completed")
    with db.tx() as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(data_diff={"ok": {"new": False}}))
    assert "edited" in problems(db)


def test_deleted_middle_row_detected(db, history):
    target = rows(db, history[0])[1]
    with db.tx() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == target.id))
    assert "missing" in problems(db)


def test_deleted_newest_rows_detected(db, history):
    newest = rows(db, history[0])[-2:]
    with db.tx() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id.in_([r.id for r in newest])))
    assert "newest rows deleted" in problems(db)


def test_deleted_newest_rows_and_forged_head_caught_by_anchor(db, history):
    # instance 2 was anchored; delete its newest row and rewrite the chain head to match
    evs = rows(db, history[1])
    with db.tx() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == evs[-1].id))
        s.execute(text("UPDATE audit_chain SET last_seq = :q, head_hash = :h WHERE chain = :c"),
                  {"q": evs[-2].seq, "h": evs[-2].hash, "c": f"instance:{history[1]}"})
    assert "anchored event missing or changed" in problems(db)


def test_reordered_rows_detected(db, history):
    a, b = rows(db, history[0])[1:3]
    with db.tx() as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=-1))
        s.execute(update(AuditEvent).where(AuditEvent.id == b.id).values(seq=a.seq))
        s.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=b.seq))
    assert "prev_hash does not link" in problems(db) or "edited" in problems(db)


def test_edited_anchor_detected(db, history):
    with db.tx() as s:
        anchor = s.scalars(select(AuditAnchor)).first()
        heads = dict(anchor.heads)
        s.execute(update(AuditAnchor).where(AuditAnchor.id == anchor.id).values(heads={k: v for k, v in list(heads.items())[1:]}))
    assert "anchor edited" in problems(db)
