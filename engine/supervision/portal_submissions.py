"""What a business submits through the portal: checked, delivered to the waiting instance or kept, never lost.

Each kind of submission is the BPMN message of the same name (:data:`.portal_models.SUBMISSION_KINDS`):
``rectification_report`` (``processes/rectification.bpmn``: the order's ``await_report``, or before service the
``early_report`` boundary event), ``information_publicised`` (``entity_inspection.bpmn``'s ``await_publicity``),
``hearing_request`` (``enforcement.bpmn``'s ``await_hearing_request``), ``statement_defence`` (陈述申辩),
``extension_request`` and ``credit_repair`` (delivered when a process waits for them, kept otherwise).

:func:`submit` gives every submission its receipt number and then

* **delivers** it exactly as ``regflow message`` does (:meth:`Runtime.correlate_message`, correlated by the
  USCC, acting as ``entity:<USCC>``) when one instance waits for it: the message step's own events in the
  instance's hash chain record it (``message_received`` with the payload, which carries the receipt number),
  and each file becomes evidence of that instance (``evidence_attached``, its SHA-256 in the chain), attached
  to the task the instance moved on to (the re-inspection), whose officers may then open it;
* otherwise **keeps** it (``routed``) — no instance waits, several do (the officer tells which), the instance
  is suspended, the delivery broke — for an officer: the assignee of the entity's newest open task, else that
  task's first candidate group, else :data:`DEFAULT_GROUP`; a ``portal_submission_kept`` event on the system
  chain records it with its receipt, where it went, why, and its files' digests. The delivery runs in a
  savepoint, so a refused delivery leaves nothing half done.

Every field has a size limit (:data:`FIELDS`); anything else is refused with the field named.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import EngineError, InvalidInput, NotFound
from engine.runtime import audit, clock
from engine.runtime.models import Evidence, HumanTask

from .calendar import SHANGHAI
from .portal import ALPHABET, entity_actor
from .portal_models import SUBMISSION_KINDS, PortalSubmission

#: where a submission goes when no open task of the entity names anyone
DEFAULT_GROUP = "officers"
#: the most files one submission carries
MAX_FILES = 5
CONTACT = [("contact_name", "text", False, 50), ("contact_phone", "text", False, 30)]
#: kind → its fields: (name, type, required, limit) — text: characters; int: the largest value (from 1)
FIELDS: dict[str, list[tuple[str, str, bool, int]]] = {
    "rectification_report": [("note", "text", True, 2000)] + CONTACT,
    "information_publicised": [("note", "text", True, 1000)] + CONTACT,
    "hearing_request": [("reason", "text", True, 2000)] + CONTACT,
    "statement_defence": [("statement", "text", True, 5000)] + CONTACT,
    "extension_request": [("reason", "text", True, 2000), ("requested_days", "int", True, 90)] + CONTACT,
    "credit_repair": [("reason", "text", True, 2000), ("measures", "text", True, 2000)] + CONTACT,
}
#: kinds that carry files (photos, scans)
WITH_FILES = ("rectification_report", "information_publicised", "statement_defence", "credit_repair")


def check_kind(kind: object) -> str:
    if kind not in SUBMISSION_KINDS:
        raise NotFound.fmt("There is no submission of kind {kind}.", kind=str(kind)[:40])
    return kind


def clean_payload(kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a ``kind`` submission, checked and bounded; :class:`InvalidInput` names the first bad one."""
    out: dict[str, Any] = {}
    for name, typ, required, limit in FIELDS[check_kind(kind)]:
        value = raw.get(name)
        value = value.strip() if isinstance(value, str) else value
        if value in (None, ""):
            if required:
                raise InvalidInput.fmt("“{field}” is required.", field=name)
            continue
        if typ == "text":
            if not isinstance(value, str) or len(value) > limit:
                raise InvalidInput.fmt("“{field}” takes at most {n} characters.", field=name, n=limit)
            out[name] = value
        else:
            text = str(value)
            if not (text.isdigit() and len(text) <= 6 and 1 <= int(text) <= limit):
                raise InvalidInput.fmt("“{field}” must be a whole number from 1 to {n}.", field=name, n=limit)
            out[name] = int(text)
    return out


def new_receipt(session: Session, now: datetime) -> str:
    """``P<day in China>-<6 characters>``, unique (drawn again on the rare collision)."""
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    while True:
        receipt = f"P{day}-" + "".join(secrets.choice(ALPHABET) for _ in range(6))
        if session.scalar(select(PortalSubmission.id).where(PortalSubmission.receipt == receipt)) is None:
            return receipt


def route(session: Session, uscc: str) -> tuple[str | None, str | None]:
    """``(user, group)`` a kept submission of ``uscc`` goes to (see the module's docstring)."""
    tasks = session.scalars(select(HumanTask).where(HumanTask.business_key == uscc, HumanTask.status == "open")
                            .order_by(HumanTask.id.desc()).limit(50)).all()
    for t in tasks:
        if t.assignee:
            return t.assignee, None
    for t in tasks:
        if t.candidate_groups:
            return None, t.candidate_groups[0]
    return None, DEFAULT_GROUP


def next_task(session: Session, instance_id: int) -> HumanTask | None:
    """The instance's newest open task once a submission moved it on (the re-inspection after a report): its
    files are attached to it, so the officers who work on it open them (:func:`engine.policy.check_evidence`)."""
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.status == "open")
                           .order_by(HumanTask.id.desc()).limit(1)).first()


@dataclass(frozen=True)
class Submitted:
    submission: PortalSubmission
    delivered: bool


def submit(session: Session, runtime, *, uscc: str, kind: str, payload: Mapping[str, Any],
           files: list[dict] | None = None, code_id: int | None = None, address: str | None = None,
           now: datetime | None = None) -> Submitted:
    """Record, then deliver or keep a submission of ``uscc`` (see the module's docstring). ``payload`` is checked
    here; ``files`` are references of files already stored (:func:`.evidence.store_file`)."""
    clean = clean_payload(kind, payload)
    refs = list(files or [])
    if len(refs) > MAX_FILES:
        raise InvalidInput.fmt("At most {n} files per submission.", n=MAX_FILES)
    if refs and kind not in WITH_FILES:
        raise InvalidInput.fmt("A submission of kind {kind} carries no files.", kind=kind)
    now = now or clock.now()
    actor = entity_actor(uscc)
    receipt = new_receipt(session, now)
    message = {**clean, "uscc": uscc, "receipt": receipt, "kind": kind, "evidence": refs,
               "submitted_at": now.isoformat(timespec="seconds"), "via": "portal"}
    row = PortalSubmission(receipt=receipt, uscc=uscc, kind=kind, payload=clean, evidence=refs, code_id=code_id,
                           submitted_at=now, status="routed")
    try:
        with session.begin_nested():
            outcome = runtime.correlate_message(session, kind, message, {"uscc": uscc}, actor=actor)
    except EngineError as exc:
        row.kept_reason = str(exc)[:300]
    except Exception as exc:  # noqa: BLE001  (a delivery that breaks keeps the submission; the savepoint undid it)
        row.kept_reason = f"delivery failed: {type(exc).__name__}: {exc}"[:300]
    else:
        row.status, row.instance_id = "delivered", outcome.instance.id
    if row.status == "routed":
        row.routed_user, row.routed_group = route(session, uscc)
    session.add(row)
    session.flush()
    where = {"address": address} if address else {}
    if row.status == "delivered":
        task = next_task(session, row.instance_id)
        for ref in refs:
            ev = Evidence(instance_id=row.instance_id, task_id=task.id if task else None, filename=ref["filename"],
                          content_type=ref["content_type"], size=ref["size"], sha256=ref["sha256"],
                          uploaded_by=actor, uploaded_at=now)
            session.add(ev)
            session.flush()
            runtime.append_event(session, row.instance_id, "evidence_attached", actor,
                                 bpmn_id=task.bpmn_id if task else None, task_guid=task.task_guid if task else None,
                                 detail={"evidence_id": ev.id, "task_id": ev.task_id, "receipt": receipt, **ref})
    else:
        audit.system_event(session, "portal_submission_kept", actor, receipt=receipt, uscc=uscc, submission=kind,
                           routed_user=row.routed_user, routed_group=row.routed_group, reason=row.kept_reason,
                           evidence=[r["sha256"] for r in refs], **where)
    return Submitted(row, row.status == "delivered")


def for_entity(session: Session, uscc: str, limit: int = 50) -> list[PortalSubmission]:
    return list(session.scalars(select(PortalSubmission).where(PortalSubmission.uscc == uscc)
                                .order_by(PortalSubmission.submitted_at.desc(), PortalSubmission.id.desc())
                                .limit(limit)))


def by_receipt(session: Session, receipt: str) -> PortalSubmission:
    row = session.scalars(select(PortalSubmission).where(PortalSubmission.receipt == receipt[:24])).first()
    if row is None:
        raise NotFound.fmt("No submission has receipt number {receipt}.", receipt=receipt[:24])
    return row


def listing(session: Session, *, status: str | None = None, limit: int = 200) -> list[PortalSubmission]:
    """Submissions newest first (``status``: only those), for the officers' list (filtered by the policy)."""
    q = select(PortalSubmission).order_by(PortalSubmission.submitted_at.desc(), PortalSubmission.id.desc())
    if status is not None:
        q = q.where(PortalSubmission.status == status)
    return list(session.scalars(q.limit(limit)))


def mark_handled(session: Session, submission: PortalSubmission, *, by: str, note: str,
                 now: datetime | None = None) -> PortalSubmission:
    """An officer dealt with a kept submission (a delivered one is dealt with by its process). Audited."""
    if submission.status != "routed":
        raise InvalidInput.fmt("Submission {receipt} is {status}, not waiting for an officer.",
                               receipt=submission.receipt, status=submission.status)
    if len(note) > 500:
        raise InvalidInput.fmt("“{field}” takes at most {n} characters.", field="note", n=500)
    submission.status, submission.handled_at = "handled", now or clock.now()
    submission.handled_by, submission.handled_note = by, note or None
    audit.system_event(session, "portal_submission_handled", by, receipt=submission.receipt, uscc=submission.uscc,
                       note=note)
    return submission
