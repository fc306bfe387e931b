"""Case-file commands: export a case's file (案卷) as one signed, verifiable ZIP, and check such a ZIP
(:mod:`engine.supervision.case_file`).

Who may export: whoever may read the case's instance (:func:`engine.policy.check_export_case_file`); the
instances the case started are included only where they may read them too (the others are named in the
manifest's notes). An export is a read of the instance: it is recorded in the read log (``read_record``, kind
``instance``) as the instance's history pages are — by the CLI in its transaction (:func:`export`), by the web in
a small transaction of its own before the bundle is built (:func:`check_export`, then ``record_read``, then
:func:`export` with ``record=False``). Anyone may check a bundle they hold (:func:`verify`): it needs only the keys
folder's root certificate.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from engine import policy
from engine.errors import NotAllowed, NotFound
from engine.policy import Actor
from engine.runtime import reads
from engine.runtime.models import ProcessInstance
from engine.supervision import case_file
from engine.supervision.case_file_verify import MAX_BUNDLE_BYTES, BundleReport, verify_bundle


def check_export(session: Session, actor: Actor, instance_id: int) -> ProcessInstance:
    """The instance whose case file ``actor`` may export. 404, 403."""
    inst = session.get(ProcessInstance, instance_id)
    if inst is None:
        raise NotFound.fmt("Instance {id} does not exist.", id=instance_id)
    policy.check_export_case_file(session, actor, inst)
    return inst


def export(session: Session, actor: Actor, instance_id: int, *, keys_dir: str | Path, upload_dir: str | Path,
           record: bool = True, now: datetime | None = None,
           max_bytes: int = MAX_BUNDLE_BYTES) -> case_file.Bundle:
    """The case file of instance ``instance_id`` and the instances it started that ``actor`` may read; with
    ``record``, the read is written to the read log in the caller's transaction. 404, 403, 400 (too big)."""
    check_export(session, actor, instance_id)
    related = case_file.related_instances(session, instance_id)
    included, notes = [related[0].id], []
    for inst in related[1:]:
        try:
            policy.check_read_instance(session, actor, inst)
        except NotAllowed:
            notes.append(f"流程实例 {inst.id}（{inst.process_id}）不在 {actor.username} 的阅卷范围内，未收入本卷")
            continue
        included.append(inst.id)
    if record:
        reads.record(session, actor.username, "instance", instance_id,
                     via=actor.via if actor.via in reads.VIAS else "cli")
    return case_file.build(session, included, keys_dir=keys_dir, upload_dir=upload_dir,
                           generated_by=actor.username, now=now, notes=notes, max_bytes=max_bytes)


def verify(data: bytes, keys_dir: str | Path, *, max_bytes: int = MAX_BUNDLE_BYTES) -> BundleReport:
    """Check a case-file ZIP offline (:func:`engine.supervision.case_file_verify.verify_bundle`). 400 for a file
    refused before unpacking (too big, a possible ZIP bomb, not a ZIP)."""
    return verify_bundle(data, keys_dir, max_bytes=max_bytes)
