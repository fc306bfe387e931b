"""The case file (案卷) of an administrative-penalty case as one verifiable ZIP, built in memory.

:func:`build` bundles a process instance — an ``enforcement`` case, or the inspection that ran one as a call
activity — and the instances it started (:func:`related_instances`) as the SAMR rules on case files expect:

- ``documents/NN-<title>-<number>.pdf``: every official document the instances issued, its signed PDF exactly as
  stored (void ones too, marked so: the register keeps them);
- ``evidence/NN-<id>-<file name>``: every evidence file, its bytes as stored (a file missing from the store is
  listed without a path, with a note);
- ``history.json``: the audit events of every instance's hash chain up to its recorded head, with their seq,
  ``prev_hash`` and ``hash`` — enough to recompute the chain;
- ``manifest.json``: case number, entity, agency, signer, ``generated_at``/``generated_by``, the chains' heads,
  notes, and the items of the table of contents in procedural order — each with its ``order``, ``stage``, title,
  number and date, and either its file (``path``, ``sha256``, ``size``) or the history event it rests on
  (hearing record, service, execution, closure: ``event`` = chain, seq, hash);
- ``index.pdf``: the cover, the 卷内目录 and the 备考表 (:mod:`.case_file_index`), which prints and carries the
  manifest's SHA-256, signed with the agency's key as documents are (:func:`.signing.load_signer`).

The agency is the one that issued the instances' documents (the latest), else the agency covering the entity's
district. :func:`~engine.supervision.case_file_verify.verify_bundle` checks a bundle offline. Reads only; takes a
``Session`` and never commits. Who may export is the policy's (:mod:`engine.commands.case_files`).
"""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from engine.errors import InvalidInput, NotFound
from engine.runtime import clock
from engine.runtime.audit import instance_chain
from engine.runtime.models import AuditEvent, Evidence, ProcessInstance
from scoring.models import Entity

from . import agencies
from .calendar import SHANGHAI
from .case_file_index import render_index
from .case_file_verify import (
    FORMAT,
    HISTORY,
    HISTORY_FORMAT,
    INDEX,
    MANIFEST,
    MAX_BUNDLE_BYTES,
    sha256,
    verify_bundle,  # noqa: F401  (re-exported: the service's other half)
)
from .document_file_models import SERVICE_METHODS, DocumentFile, DocumentService
from .document_models import DOCUMENT_KINDS, Agency, Document
from .evidence import blob_path, clean_filename
from .loop_models import EnforcementCase
from .signing import load_signer

USCC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}(\d{6})[0-9A-HJ-NPQRTUWXY]{10}$")
#: the most instances one case file covers (the instance and those it started)
MAX_INSTANCES = 20
#: the procedural stages of a case file, in order (the 卷内目录 lists its items stage by stage, then by date)
STAGES = ("inspection", "filing", "evidence", "review", "notice", "hearing", "deliberation", "decision", "service",
          "execution", "closing", "history")
#: document kind → its stage
DOCUMENT_STAGES = {"inspection_record": "inspection", "rectification_notice": "inspection",
                   "transfer_letter": "inspection", "filing_approval": "filing", "penalty_notice": "notice",
                   "hearing_notice": "hearing", "penalty_decision": "decision", "service_receipt": "service"}
#: a completed user task whose form is a record of the case → (stage, title); the record is its history event
RECORD_TASKS = {"inspect": ("inspection", "检查记录"), "reinspect": ("inspection", "复查记录"),
                "verify_lead": ("filing", "案源核查记录"), "filing": ("filing", "立案决定记录"),
                "investigate": ("evidence", "调查终结报告"), "decide_hold": ("evidence", "先行登记保存物品处理决定"),
                "legal_review": ("review", "法制审核意见"), "pre_notice": ("notice", "行政处罚告知记录"),
                "hearing": ("hearing", "听证笔录"), "deliberate": ("deliberation", "集体讨论记录"),
                "summary_decision": ("decision", "当场处罚决定记录"), "decide": ("decision", "处罚决定记录"),
                "serve_order": ("service", "送达记录"), "serve_decision": ("service", "送达记录"),
                "execute": ("execution", "执行记录"), "close": ("closing", "结案报告")}


@dataclass
class Bundle:
    data: bytes
    file_name: str
    manifest: dict
    manifest_sha256: str


def related_instances(session: Session, instance_id: int) -> list[ProcessInstance]:
    """The instance and, breadth first, the instances it started (``parent_instance_id``); call activities run
    inside their caller's instance. NotFound; InvalidInput past :data:`MAX_INSTANCES` (a campaign is no case)."""
    root = session.get(ProcessInstance, int(instance_id))
    if root is None:
        raise NotFound.fmt("Instance {id} does not exist.", id=instance_id)
    found, frontier = [root], [root.id]
    while frontier:
        children = session.scalars(select(ProcessInstance).where(ProcessInstance.parent_instance_id.in_(frontier))
                                   .order_by(ProcessInstance.id).limit(MAX_INSTANCES + 1)).all()
        found += children
        if len(found) > MAX_INSTANCES:
            raise InvalidInput.fmt("Instance {id} started more than {limit} instances: a case file covers one case.",
                                   id=root.id, limit=MAX_INSTANCES)
        frontier = [c.id for c in children]
    return found


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat() if moment else None


def _safe(text: str) -> str:
    return clean_filename(str(text).replace("/", "／").replace("\\", "＼")) or "file"


def _entity(session: Session, root: ProcessInstance, cases: list[EnforcementCase]) -> dict:
    """The party: its registered entity, else the division code its USCC carries (characters 3–8, GB 32100), as
    the documents' issuing step places it (``engine.service_tasks.documents.instance_party``)."""
    uscc = (cases[0].uscc if cases else (root.business_key or "")).strip().upper()
    row = session.scalar(select(Entity).where(Entity.uscc == uscc)) if uscc else None
    if row is not None:
        return {"uscc": uscc, "name": row.name, "district": row.district}
    m = USCC_RE.match(uscc)
    return {"uscc": uscc or None, "name": None, "district": m.group(1) if m else None}


def _agency(session: Session, docs: list[Document], entity: dict, instance_id: int) -> Agency:
    if docs:
        return session.get(Agency, docs[-1].agency_id)
    if entity.get("district"):
        return agencies.responsible_agency(session, entity["district"])
    raise NotFound.fmt("Instance {id} issued no document and names no registered entity: no agency can sign its "
                       "case file.", id=instance_id)


def _history(session: Session, instances: list[ProcessInstance]) -> tuple[dict, list[dict], list[AuditEvent]]:
    """history.json's document, the chains' heads, and the events (each chain up to its recorded head)."""
    chains, heads, events = [], [], []
    for inst in instances:
        name = instance_chain(inst.id)
        rows = session.scalars(select(AuditEvent).where(AuditEvent.chain == name, AuditEvent.seq <= inst.audit_seq)
                               .order_by(AuditEvent.seq)).all()
        events += rows
        heads.append({"chain": name, "instance_id": inst.id, "seq": inst.audit_seq, "hash": inst.audit_head})
        chains.append({"chain": name, "instance_id": inst.id, "head": {"seq": inst.audit_seq, "hash": inst.audit_head},
                       "events": [{"seq": e.seq, "at": e.at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
                                   "actor": e.actor, "kind": e.kind, "instance_id": e.instance_id,
                                   "bpmn_id": e.bpmn_id, "task_guid": e.task_guid, "flow_ids": e.flow_ids,
                                   "data_diff": e.data_diff, "detail": e.detail, "prev_hash": e.prev_hash,
                                   "hash": e.hash} for e in rows]})
    return {"format": HISTORY_FORMAT, "chains": chains}, heads, events


def _event_ref(e: AuditEvent) -> dict:
    return {"chain": e.chain, "seq": e.seq, "hash": e.hash}


def build(session: Session, instance_ids: list[int], *, keys_dir: str | Path, upload_dir: str | Path,
          generated_by: str, now: datetime | None = None, notes: list[str] | None = None,
          max_bytes: int = MAX_BUNDLE_BYTES) -> Bundle:
    """The case file of ``instance_ids`` (the first is the case's own instance; see the module and
    :func:`related_instances`). ``notes`` go to the manifest and the 备考表 (e.g. instances left out).
    NotFound (an instance, the agency's key), InvalidInput (bigger than ``max_bytes``)."""
    now = now or clock.now()
    notes = list(notes or [])
    instances = [session.get(ProcessInstance, int(i)) for i in instance_ids]
    if not instances or any(i is None for i in instances):
        raise NotFound.fmt("Instance {id} does not exist.", id=instance_ids[0] if instance_ids else "?")
    root, ids = instances[0], [i.id for i in instances]
    cases = list(session.scalars(select(EnforcementCase).where(EnforcementCase.instance_id.in_(ids))
                                 .order_by(EnforcementCase.id)))
    entity = _entity(session, root, cases)
    docs = list(session.scalars(select(Document).where(Document.instance_id.in_(ids))
                                .order_by(Document.issued_at, Document.id)))
    agency = _agency(session, docs, entity, root.id)
    signer = load_signer(keys_dir, agency.code)
    history_doc, heads, events = _history(session, instances)
    items: list[dict] = []  # each: stage, date, tie, title, … and "data" for a file (path set once ordered)
    for doc in docs:
        f = session.scalar(select(DocumentFile).options(undefer(DocumentFile.pdf))
                           .where(DocumentFile.document_id == doc.id))
        title = DOCUMENT_KINDS[doc.kind][0] + ("（已作废）" if doc.status == "void" else "")
        item = {"stage": DOCUMENT_STAGES.get(doc.kind, "inspection"), "kind": "document", "document_kind": doc.kind,
                "title": title, "number": doc.number, "date": _iso(doc.issued_at), "instance_id": doc.instance_id}
        if doc.status == "void":
            notes.append(f"{doc.number} 已作废：{doc.void_reason}")
        if f is None:
            notes.append(f"{doc.number} 无 PDF（签发于文书电子化之前）")
        else:
            item |= {"data": f.pdf, "name": f"{DOCUMENT_KINDS[doc.kind][0]}-{doc.number}.pdf", "folder": "documents",
                     "signer_fingerprint": f.signer_fingerprint}
        service = session.get(DocumentService, doc.id)
        if service is not None:
            served = next((e for e in events if e.kind == "document_served"
                           and (e.detail or {}).get("document_id") == doc.id), None)
            how = f"送达回证（{SERVICE_METHODS[service.method]}，送达{service.served_to}）"
            items.append({"stage": "service", "kind": "service", "title": how, "number": doc.number,
                          "date": _iso(service.served_at),
                          "instance_id": doc.instance_id, **({"event": _event_ref(served)} if served else {})})
        items.append(item)
    upload = Path(upload_dir)
    for ev in session.scalars(select(Evidence).where(Evidence.instance_id.in_(ids)).order_by(Evidence.id)):
        item = {"stage": "evidence", "kind": "evidence", "title": f"证据：{ev.filename}", "number": None,
                "date": _iso(ev.uploaded_at), "instance_id": ev.instance_id, "recorded_sha256": ev.sha256,
                "content_type": ev.content_type}
        path = blob_path(upload, ev.sha256)
        if not path.is_file():
            notes.append(f"证据 {ev.id}（{ev.filename}，SHA-256 {ev.sha256}）在证据库中缺失，未收入本卷")
        elif path.stat().st_size > max_bytes:
            raise InvalidInput.fmt("Evidence file {id} is bigger than a case file may be ({limit} bytes).",
                                   id=ev.id, limit=max_bytes)
        else:
            data = path.read_bytes()
            if sha256(data) != ev.sha256:
                notes.append(f"证据 {ev.id}（{ev.filename}）在证据库中的内容与登记的 SHA-256 不符")
            item |= {"data": data, "name": f"{ev.id}-{ev.filename}", "folder": "evidence"}
        items.append(item)
    for e in events:
        if e.kind == "task_completed" and e.bpmn_id in RECORD_TASKS:
            stage, title = RECORD_TASKS[e.bpmn_id]
            items.append({"stage": stage, "kind": "record", "title": title, "number": None, "date": _iso(e.at),
                          "instance_id": e.instance_id, "actor": e.actor, "event": _event_ref(e)})
    history = json.dumps(history_doc, ensure_ascii=False, sort_keys=True, indent=1, default=str).encode()
    items.append({"stage": "history", "kind": "history", "title": "审计记录（哈希链）", "number": None,
                  "date": _iso(now), "instance_id": root.id, "data": history, "name": HISTORY, "folder": ""})
    items.sort(key=lambda i: (STAGES.index(i["stage"]), i["date"] or "", i.get("number") or ""))
    files: dict[str, bytes] = {}
    for n, item in enumerate(items, 1):
        item["order"] = n
        data = item.pop("data", None)
        name, folder = item.pop("name", None), item.pop("folder", None)
        if data is None:
            continue
        path = HISTORY if name == HISTORY else f"{folder}/{n:02d}-{_safe(name)}"
        files[path] = data
        item |= {"path": path, "sha256": sha256(data), "size": len(data)}
    total = sum(len(d) for d in files.values())
    if total > max_bytes:
        raise InvalidInput.fmt("The case file of instance {id} would be {size} bytes; at most {limit} bytes.",
                               id=root.id, size=total, limit=max_bytes)
    filed = next((c for c in cases if c.case_number), cases[0] if cases else None)
    manifest = {
        "format": FORMAT, "instance_id": root.id, "process_id": root.process_id,
        "case_number": filed.case_number if filed else None, "generated_at": _iso(now), "generated_by": generated_by,
        "entity": entity, "agency": {"code": agency.code, "name": agency.name},
        "signer": {"fingerprint": signer.fingerprint, "subject": signer.subject},
        "instances": [{"instance_id": i.id, "process_id": i.process_id, "business_key": i.business_key,
                       "status": i.status, "parent_instance_id": i.parent_instance_id,
                       "started_at": _iso(i.started_at), "ended_at": _iso(i.ended_at)} for i in instances],
        "cases": [{"case_id": c.id, "case_number": c.case_number, "instance_id": c.instance_id, "status": c.status,
                   "procedure": c.procedure, "lead_source": c.lead_source, "filed_at": _iso(c.filed_at),
                   "decided_at": _iso(c.decided_at), "decision_type": c.decision_type, "fine": c.fine,
                   "penalties": c.penalties, "closed_at": _iso(c.closed_at), "close_reason": c.close_reason}
                  for c in cases],
        "head": next(({"seq": h["seq"], "hash": h["hash"]} for h in heads if h["instance_id"] == root.id), None),
        "history": {"path": HISTORY, "chains": heads},
        "stages": list(STAGES), "items": items, "notes": notes}
    raw = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1).encode()
    digest = sha256(raw)
    label = manifest["case_number"] or f"instance {root.id}"
    index = signer.sign(render_index(manifest, digest), reason=f"{agency.name} 立卷 {label}")
    stamp = now.astimezone(SHANGHAI).timetuple()[:6]
    out = BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [(INDEX, index), (MANIFEST, raw), *files.items()]:
            zf.writestr(zipfile.ZipInfo(name, date_time=max(stamp, (1980, 1, 1, 0, 0, 0))), data,
                        compress_type=zipfile.ZIP_DEFLATED)
    return Bundle(out.getvalue(), f"case-file-{root.id}.zip", manifest, digest)
