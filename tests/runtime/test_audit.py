"""The audit log detects any edited, deleted (newest included) or reordered row."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, select, text, update

from engine.runtime import audit
from engine.runtime.models import AuditAnchor, AuditEvent, HumanTask
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
        s.execute(update(AuditAnchor).where(AuditAnchor.id == anchor.id)
                  .values(heads={k: v for k, v in list(heads.items())[1:]}))
    assert "anchor edited" in problems(db)


EVENTS = [
    audit.Event("instance_started", "system", 7, detail={"process_id": "p", "version": 2},
                data_diff={"amount": {"new": 7.25}, "名称": {"new": "郑州市某某有限公司"}}),
    audit.Event("element_completed", "张三", 7, "Task_1", "0b7f", flow_ids=["Flow_1"],
                data_diff={"due": {"new": __import__("datetime").datetime(2026, 3, 5, 8, 0)}}),
    audit.Event("task_created", "system", None, None, None),
    audit.Event("odd", "x\"\\\n", 7, "B", "g", data_diff={"nested": {"new": [1, {"b": None, "a": True}]}},
                detail={2: "int key", 10: "u\u2028"}),
]


def test_rows_hash_the_canonical_form_and_store_what_was_hashed():
    """The hash of each row is sha256(prev ‖ canonical JSON of the row as it will be read back), the form
    verify recomputes; values JSON has no type for are stored as the text that was hashed."""
    rows, (seq, head) = audit.build_rows("instance:7", EVENTS, (3, audit.GENESIS))
    assert [r["seq"] for r in rows] == [4, 5, 6, 7] and seq == 7 and head == rows[-1]["hash"]
    prev = audit.GENESIS
    for r in rows:
        read_back = {**r, **{k: json.loads(r[k]) for k in ("flow_ids", "data_diff", "detail")}}
        assert r["prev_hash"] == prev
        assert audit.row_hash(prev, r["chain"], r["seq"], read_back) == r["hash"]
        prev = r["hash"]
    assert json.loads(rows[1]["data_diff"]) == {"due": {"new": "2026-03-05 08:00:00"}}
    # int keys are hashed as the strings they are read back as, in that order ("10" before "2")
    assert rows[3]["detail"] == '{"10":"u\u2028","2":"int key"}'


def test_stored_rows_verify_on_both_databases(db):
    with db.tx() as s:
        audit.append(s, audit.SYSTEM_CHAIN, EVENTS)
    with db.tx() as s:
        assert audit.verify(s).ok
        stored = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert stored[1].data_diff == {"due": {"new": "2026-03-05 08:00:00"}}
        assert stored[0].data_diff["名称"] == {"new": "郑州市某某有限公司"}


def test_one_chain_is_verified_against_its_own_anchors(db, history):
    """An instance's history page verifies its chain with only the anchors that recorded that chain's head
    (selected by the database), and still catches a forged head and an edited anchor."""
    first, second = history
    with db.tx() as s:
        # a second anchor: only the first instance moved since the first one (its task was completed)
        assert set(audit.write_anchor(s).heads) == {f"instance:{first}"}
        report = audit.verify(s, chain=f"instance:{second}")
        assert report.ok and report.anchors == 1  # the one anchor that recorded it
        everything = audit.verify(s)
        assert everything.ok and everything.anchors == 2
    evs = rows(db, second)
    with db.tx() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == evs[-1].id))
        s.execute(text("UPDATE process_instance SET audit_seq = :q, audit_head = :h WHERE id = :i"),
                  {"q": evs[-2].seq, "h": evs[-2].hash, "i": second})
    with db.tx() as s:
        report = audit.verify(s, chain=f"instance:{second}")
    assert [p["problem"] for p in report.problems] == ["anchored event missing or changed"]
    with db.tx() as s:
        anchor = s.scalars(select(AuditAnchor).order_by(AuditAnchor.id)).first()
        heads = {**anchor.heads, f"instance:{second}": [evs[-2].seq, evs[-2].hash]}  # forge it to match
        s.execute(update(AuditAnchor).where(AuditAnchor.id == anchor.id).values(heads=heads))
    with db.tx() as s:
        report = audit.verify(s, chain=f"instance:{second}")
    assert [p["problem"] for p in report.problems] == ["anchor edited or anchors reordered"]
