"""The entity portal's codes and submissions through the real Runtime, on SQLite and PostgreSQL: a code is
stored only as its keyed hash, expires, is one per document, signs in only with its own USCC and is
throttled; a submission is delivered to the rectification instance waiting for it (which moves on, its
evidence in the instance's chain) or, when nothing waits, kept and routed to an officer and audited on the
system chain; a business sees and submits only for its own USCC; officers see only their jurisdiction."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import policy
from engine.commands import portal as portal_commands
from engine.errors import InvalidInput, NotAllowed
from engine.runtime import audit, clock
from engine.runtime.models import AuditEvent, Evidence, HumanTask
from engine.runtime.users import add_user, set_jurisdiction
from engine.supervision import evidence, portal, portal_submissions
from engine.supervision.document_models import Agency, Document
from engine.supervision.portal import EntitySession
from engine.supervision.portal_models import PortalAccessCode, PortalSubmission
from scoring.models import Entity
from tests.supervision.test_rectification_process import T0, USCC, finding, start_data

KEY = "portal-test-secret"
OTHER = "91110108MA00000A1P"  # another valid USCC
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _session(row: PortalAccessCode, at=None) -> EntitySession:
    return EntitySession(row.id, row.uscc, row.session_version, int((at or clock.now()).timestamp()))


def _document(s, uscc: str, number: str = "榕市监责改〔2026〕1号") -> Document:
    agency = s.scalars(select(Agency).limit(1)).first()
    if agency is None:
        agency = Agency(code="榕市监", name="福州市市场监督管理局", districts=["350100"], updated_at=clock.now())
        s.add(agency)
        s.flush()
    doc = Document(number=number, kind="rectification_notice", agency_id=agency.id, year=2026,
                   seq=int(number.split("〕")[1].rstrip("号")), uscc=uscc, issued_at=clock.now(), issued_by="alice",
                   status="issued")
    s.add(doc)
    s.flush()
    return doc


def test_the_other_uscc_is_valid():
    assert portal.normalise_uscc(OTHER) == OTHER and portal.normalise_uscc(USCC) == USCC


# ------------------------------------------------------------------------------------------------ codes
def test_a_code_is_stored_only_as_its_keyed_hash_and_signs_in_only_its_uscc(db):
    with db.tx() as s:
        code = portal.issue_access_code(s, uscc=USCC, ttl_days=30, key=KEY)
    assert len(code) == 11 and code[5] == "-" and all(c in portal.ALPHABET for c in code.replace("-", ""))
    with db.tx() as s:
        (row,) = s.scalars(select(PortalAccessCode)).all()
        assert code.replace("-", "") not in row.code_hash and len(row.code_hash) == 64
        assert row.code_hash == portal.code_hash(KEY, USCC, code.replace("-", ""))
        # typed in lower case, with spaces, O for 0 and I/L for 1: still the code
        typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
        assert portal.check_access_code(s, uscc=f" {USCC.lower()} ", code=typed, key=KEY).id == row.id
        assert portal.check_access_code(s, uscc=OTHER, code=code, key=KEY) is None  # another USCC
        assert portal.check_access_code(s, uscc=USCC, code=code, key="another-secret") is None  # another secret
        wrong = ("1" if code[0] != "1" else "2") + code[1:]
        assert portal.check_access_code(s, uscc=USCC, code=wrong, key=KEY) is None
        assert portal.check_access_code(s, uscc=USCC, code="x" * 5000, key=KEY) is None
        assert row.used_at is not None
    with db.tx() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.kind == "portal_code_issued")).all()
        assert len(events) == 1 and code not in str(events[0].detail) and events[0].detail["uscc"] == USCC
        assert audit.verify(s).ok


def test_a_code_expires(db):
    with db.tx() as s:
        code = portal.issue_access_code(s, uscc=USCC, ttl_days=3, now=T0, key=KEY)
    with db.tx() as s:
        assert portal.check_access_code(s, uscc=USCC, code=code, now=T0 + timedelta(days=2), key=KEY) is not None
        assert portal.check_access_code(s, uscc=USCC, code=code, now=T0 + timedelta(days=3), key=KEY) is None
    with db.tx() as s, pytest.raises(InvalidInput):
        portal.issue_access_code(s, uscc=USCC, ttl_days=0, key=KEY)
    with db.tx() as s, pytest.raises(InvalidInput):
        portal.issue_access_code(s, uscc="91350100M000100Y44", key=KEY)  # a wrong check digit


def test_one_live_code_per_document(db):
    with db.tx() as s:
        doc_id = _document(s, USCC).id
        first = portal.issue_access_code(s, uscc=USCC, document_id=doc_id, key=KEY)
        loose = portal.issue_access_code(s, uscc=USCC, key=KEY)
    with db.tx() as s:
        second = portal.issue_access_code(s, uscc=USCC, document_id=doc_id, key=KEY)
    with db.tx() as s:
        assert portal.check_access_code(s, uscc=USCC, code=first, key=KEY) is None  # replaced
        assert portal.check_access_code(s, uscc=USCC, code=second, key=KEY).document_id == doc_id
        assert portal.check_access_code(s, uscc=USCC, code=loose, key=KEY).document_id is None  # untouched
        live = s.scalars(select(PortalAccessCode).where(PortalAccessCode.document_id == doc_id,
                                                        PortalAccessCode.revoked_at.is_(None))).all()
        assert len(live) == 1
    with db.tx() as s, pytest.raises(InvalidInput):
        portal.issue_access_code(s, uscc=OTHER, document_id=doc_id, key=KEY)  # the document is about USCC


def test_revocation_and_sign_out_end_the_entity_sessions(db):
    with db.tx() as s:
        code = portal.issue_access_code(s, uscc=USCC, key=KEY)
    now = clock.now()
    with db.tx() as s:
        row = portal.check_access_code(s, uscc=USCC, code=code, key=KEY)
        held = _session(row, now)
    with db.tx() as s:
        assert portal.session_valid(s, held, now=now, max_hours=2)
        assert not portal.session_valid(s, held, now=now + timedelta(hours=2, seconds=1), max_hours=2)
        portal_commands.sign_out(s, held)
    with db.tx() as s:
        assert not portal.session_valid(s, held, now=now, max_hours=2)
        row = s.get(PortalAccessCode, held.code_id)
        again = _session(row, now)
        assert portal.session_valid(s, again, now=now, max_hours=2)  # a new sign-in with the same code
        portal.revoke(s, row.id, by="alice", reason="served to the wrong person")
    with db.tx() as s:
        assert not portal.session_valid(s, again, now=now, max_hours=2)
        assert portal.check_access_code(s, uscc=USCC, code=code, key=KEY) is None


def test_code_sign_in_is_throttled_per_uscc_and_address_and_never_locks_out(db):
    with db.tx() as s:
        code = portal.issue_access_code(s, uscc=USCC, key=KEY)
    at = T0
    for _ in range(3):
        with clock.frozen(at), db.tx() as s:
            assert portal_commands.sign_in(s, uscc=USCC, code="AAAAA-AAAAA", address="10.0.0.9", free=3,
                                           max_delay_s=900, key=KEY).code is None
    with clock.frozen(at), db.tx() as s:
        refused = portal_commands.sign_in(s, uscc=USCC, code=code, address="10.0.0.9", free=3, max_delay_s=900,
                                          key=KEY)
    assert refused.wait >= 1 and refused.code is None  # even the right code waits: nothing is checked
    with clock.frozen(at), db.tx() as s:  # another address is not slowed by this one's failures
        assert portal_commands.sign_in(s, uscc=USCC, code=code, address="10.0.0.10", free=3, max_delay_s=900,
                                       key=KEY).code is not None
    with clock.frozen(at + timedelta(seconds=2)), db.tx() as s:  # the wait is bounded: then the code works
        ok = portal_commands.sign_in(s, uscc=USCC, code=code, address="10.0.0.9", free=3, max_delay_s=900, key=KEY)
    assert ok.wait == 0 and ok.code is not None
    with db.tx() as s:
        kinds = [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.kind.like("portal_sign_in%"))
                                           .order_by(AuditEvent.seq))]
        assert kinds == ["portal_sign_in_failed"] * 3 + ["portal_sign_in"] * 2


# ------------------------------------------------------------------------------------------------ submissions
def test_a_report_is_delivered_to_the_waiting_rectification_and_it_moves_on(loop, tmp_path):
    iid = loop.start("rectification", start_data(finding("medium")), T0)
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["serve_order"]
    with loop.db.tx() as s:
        code = portal.issue_access_code(s, uscc=USCC, key=KEY)
    with loop.db.tx() as s:
        held = _session(portal.check_access_code(s, uscc=USCC, code=code, key=KEY))
    with clock.frozen(T0 + timedelta(hours=2)), loop.db.tx() as s:
        out = portal_commands.submit(loop.runtime, s, held, uscc=USCC, kind="rectification_report",
                                     fields={"note": "已整改，证照已公示", "contact_phone": "13800000000"},
                                     files=[(io.BytesIO(PNG), "现场照片.png")], upload_dir=str(tmp_path),
                                     max_bytes=10_000, address="10.0.0.9")
        receipt = out.submission.receipt
    assert out.delivered and receipt.startswith("P20260924-") and len(receipt) == 16
    (order,) = loop.orders(iid)
    assert order.status == "reported" and order.rectified_before_service
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["reinspect"]  # the instance moved on
    with loop.db.tx() as s:
        row = s.scalars(select(PortalSubmission)).one()
        assert (row.status, row.instance_id, row.routed_user, row.routed_group) == ("delivered", iid, None, None)
        chain = s.scalars(select(AuditEvent).where(AuditEvent.chain == audit.instance_chain(iid))
                          .order_by(AuditEvent.seq)).all()
        got = [e for e in chain if e.kind == "message_received"]
        assert got[-1].actor == f"entity:{USCC}" and got[-1].detail["payload"]["receipt"] == receipt
        (attached,) = [e for e in chain if e.kind == "evidence_attached"]
        (ev,) = s.scalars(select(Evidence).where(Evidence.instance_id == iid)).all()
        assert attached.detail["sha256"] == ev.sha256 and attached.detail["receipt"] == receipt
        # attached to the re-inspection the report led to: its officers open the photo
        assert s.get(HumanTask, ev.task_id).bpmn_id == "reinspect" == attached.bpmn_id
        assert (tmp_path / ev.sha256[:2] / ev.sha256).read_bytes() == PNG
        assert not s.scalars(select(AuditEvent).where(AuditEvent.kind == "portal_submission_kept")).all()
    loop.audit_ok()


def test_a_submission_nothing_waits_for_is_kept_routed_and_audited(loop, tmp_path):
    iid = loop.start("rectification", start_data(finding("medium")), T0)
    with loop.db.tx() as s:  # the serve_order task is claimed: its assignee gets what nothing waits for
        t = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")).one()
        loop.runtime.claim(s, t.id, "alice")
        code = portal.issue_access_code(s, uscc=USCC, key=KEY)
    with loop.db.tx() as s:
        held = _session(portal.check_access_code(s, uscc=USCC, code=code, key=KEY))
        out = portal_commands.submit(loop.runtime, s, held, uscc=USCC, kind="credit_repair",
                                     fields={"reason": "已纠正违法行为", "measures": "建立台账"},
                                     files=[(io.BytesIO(PNG), "台账.png")], upload_dir=str(tmp_path),
                                     max_bytes=10_000)
    assert not out.delivered
    with loop.db.tx() as s:
        row = s.scalars(select(PortalSubmission)).one()
        assert (row.status, row.routed_user, row.instance_id) == ("routed", "alice", None)
        assert "credit_repair" in row.kept_reason and row.evidence[0]["filename"] == "台账.png"
        (kept,) = s.scalars(select(AuditEvent).where(AuditEvent.kind == "portal_submission_kept")).all()
        assert kept.chain == audit.SYSTEM_CHAIN and kept.detail["receipt"] == row.receipt
        assert kept.detail["evidence"] == [row.evidence[0]["sha256"]]
        # an unrelated entity's submission goes to the default group
        other = portal_submissions.submit(s, loop.runtime, uscc=OTHER, kind="statement_defence",
                                          payload={"statement": "我方无异议"})
        assert (other.submission.routed_user, other.submission.routed_group) == (None, "officers")
        # the kept file is not swept away as an orphan
        assert portal_submissions.route(s, USCC) == ("alice", None)
    with loop.db.tx() as s:
        swept = evidence.sweep(s, tmp_path, older_than=timedelta(0), now=clock.now() + timedelta(days=1))
        assert swept["removed"] == []
    with loop.db.tx() as s:  # an officer handles it, once
        done = portal_commands.mark_handled(s, policy.load_actor(s, "alice"), row.receipt, "已电话回复")
        assert done.status == "handled" and done.handled_by == "alice"
    with loop.db.tx() as s, pytest.raises(InvalidInput):
        portal_commands.mark_handled(s, policy.load_actor(s, "alice"), row.receipt, "again")
    loop.audit_ok()


def test_two_waiting_instances_keep_the_report_for_an_officer(loop):
    loop.start("rectification", start_data(finding("medium")), T0)
    loop.start("rectification", start_data(finding("low", item="SC-FOOD-02")), T0)
    with loop.db.tx() as s:
        out = portal_submissions.submit(s, loop.runtime, uscc=USCC, kind="rectification_report",
                                        payload={"note": "已整改"})
    assert not out.delivered and "matches 2 instances" in out.submission.kept_reason
    assert out.submission.routed_group == "officers"


def test_fields_are_checked_and_bounded(loop, tmp_path):
    up = tmp_path / "uploads"
    with loop.db.tx() as s:
        code = portal.issue_access_code(s, uscc=USCC, key=KEY)
    with loop.db.tx() as s:
        held = _session(portal.check_access_code(s, uscc=USCC, code=code, key=KEY))
    bad = [("rectification_report", {}), ("rectification_report", {"note": "x" * 2001}),
           ("extension_request", {"reason": "疫情", "requested_days": "91"}),
           ("extension_request", {"reason": "疫情", "requested_days": "-1"}),
           ("statement_defence", {"statement": ["not", "text"]}),
           ("hearing_request", {"reason": "r", "contact_name": "名" * 51})]
    for kind, fields in bad:
        with loop.db.tx() as s, pytest.raises(InvalidInput):
            portal_commands.submit(loop.runtime, s, held, uscc=USCC, kind=kind, fields=fields,
                                   upload_dir=str(up), max_bytes=10_000)
    with loop.db.tx() as s, pytest.raises(InvalidInput):  # an .exe named .png is refused; nothing stored
        portal_commands.submit(loop.runtime, s, held, uscc=USCC, kind="rectification_report",
                               fields={"note": "n"}, files=[(io.BytesIO(b"MZ" + b"\0" * 40), "a.png")],
                               upload_dir=str(up), max_bytes=10_000)
    with loop.db.tx() as s, pytest.raises(InvalidInput):  # too large
        portal_commands.submit(loop.runtime, s, held, uscc=USCC, kind="rectification_report",
                               fields={"note": "n"}, files=[(io.BytesIO(PNG * 500), "a.png")],
                               upload_dir=str(up), max_bytes=10_000)
    with loop.db.tx() as s:
        assert s.scalars(select(PortalSubmission)).all() == []
    assert not [p for p in up.rglob("*") if p.is_file()]


# ------------------------------------------------------------------------------------------------ policy
def test_a_business_sees_and_submits_only_for_its_own_uscc(loop, tmp_path):
    with loop.db.tx() as s:
        code_a = portal.issue_access_code(s, uscc=USCC, key=KEY)
    with loop.db.tx() as s:
        held_a = _session(portal.check_access_code(s, uscc=USCC, code=code_a, key=KEY))
        mine = portal_submissions.submit(s, loop.runtime, uscc=USCC, kind="hearing_request",
                                         payload={"reason": "要求听证"}).submission.receipt
        theirs = portal_submissions.submit(s, loop.runtime, uscc=OTHER, kind="hearing_request",
                                           payload={"reason": "要求听证"}).submission.receipt
    with loop.db.tx() as s:
        assert portal_commands.receipt(s, held_a, mine).uscc == USCC
        with pytest.raises(NotAllowed):
            portal_commands.receipt(s, held_a, theirs)
        with pytest.raises(NotAllowed):
            portal_commands.overview(s, held_a, OTHER)
        with pytest.raises(NotAllowed):
            portal_commands.submit(loop.runtime, s, held_a, uscc=OTHER, kind="hearing_request",
                                   fields={"reason": "冒名"}, upload_dir=str(tmp_path), max_bytes=10_000)
        _ov, subs = portal_commands.overview(s, held_a, USCC)
        assert [x.receipt for x in subs] == [mine]


def test_officers_see_submissions_of_their_jurisdiction_only(loop):
    with loop.db.tx() as s:
        s.add(Entity(uscc=USCC, name="福州某餐饮有限公司", district="350102", industry_section="H",
                     entity_type="company"))
        s.add(Entity(uscc=OTHER, name="北京某公司", district="110101", industry_section="F", entity_type="company"))
        s.flush()
        portal_submissions.submit(s, loop.runtime, uscc=USCC, kind="statement_defence", payload={"statement": "a"})
        portal_submissions.submit(s, loop.runtime, uscc=OTHER, kind="statement_defence", payload={"statement": "b"})
        add_user(s, "fz", "fz-password-1", "officer", "officers")
        set_jurisdiction(s, "fz", ["350102"], actor="admin")
    with loop.db.tx() as s:
        fz, alice, designer = (policy.load_actor(s, "fz"), policy.load_actor(s, "alice"),
                               policy.Actor("d", frozenset({"designer"})))
        assert [r.uscc for r in portal_commands.submissions(s, fz)] == [USCC]
        assert {r.uscc for r in portal_commands.submissions(s, alice)} == {USCC, OTHER}
        assert len(portal_commands.submissions(s, None)) == 2  # the installation's operator (CLI)
        with pytest.raises(NotAllowed):
            portal_commands.submissions(s, designer)
        with pytest.raises(NotAllowed):
            portal_commands.issue_code(s, fz, uscc=OTHER, days=10, key=KEY)
        assert portal_commands.issue_code(s, fz, uscc=USCC, days=10, key=KEY)["uscc"] == USCC
