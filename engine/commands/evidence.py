"""Evidence commands: attach files to an open task, open a stored file (see :mod:`engine.commands`)."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from engine import policy
from engine.errors import Conflict, NotFound
from engine.policy import Actor
from engine.runtime.models import Evidence, HumanTask
from engine.runtime.runtime import Runtime
from engine.supervision import evidence as evidence_service

from .tasks import authorize, not_open_message


def attach(rt: Runtime, session: Session, actor: Actor, task_id: int, *, upload_dir: str, max_bytes: int,
           files: list[tuple[BinaryIO, str]]) -> list[Evidence]:
    """Store ``files`` (stream, file name) as evidence of the open task ``task_id``; all or nothing."""
    ht = authorize(session, actor, task_id, "attach")
    if ht.status != "open":
        raise Conflict(not_open_message(ht), task_status=ht.status)
    return [evidence_service.attach(session, rt, upload_dir=upload_dir, max_bytes=max_bytes, stream=stream,
                                    filename=filename, instance_id=ht.instance_id, task_id=ht.id,
                                    uploaded_by=actor.username, bpmn_id=ht.bpmn_id, task_guid=ht.task_guid)
            for stream, filename in files]


def open_file(session: Session, actor: Actor, evidence_id: int, upload_dir: str) -> tuple[Evidence, Path]:
    """A stored evidence file, for the task's participants, supervisors and auditors
    (:func:`engine.policy.check_evidence`)."""
    ev = evidence_service.get(session, evidence_id)
    task = session.get(HumanTask, ev.task_id) if ev.task_id else None
    policy.check_evidence(session, actor, ev, task)
    path = evidence_service.blob_path(upload_dir, ev.sha256)
    if not Path(path).is_file():
        raise NotFound.fmt("The stored file of evidence {id} is missing.", id=evidence_id)
    return ev, Path(path)
