"""Issuing a document as a signed PDF, serving it (送达回证), and checking every stored PDF.

:func:`issue_signed` numbers the document in the register (:func:`engine.supervision.documents.issue`),
renders its kind's template from the fields (:mod:`engine.supervision.document_render`), signs the PDF with the
agency's :class:`~engine.supervision.signing.Signer` and stores it (:class:`DocumentFile`) with its SHA-256 —
all in the caller's transaction, so a rolled-back step leaves neither a number nor a file. The
``document_issued`` audit event carries the PDF's SHA-256; a BPMN step collects it (``events``) and writes it
into the instance's chain with its own events (see :mod:`engine.supervision.documents`).

:func:`serve` records how and when a document was served — the moment its legal clocks start — once: a second
service of one document is a Conflict, a void one cannot be served. :func:`verify_files` recomputes every
stored PDF's digest and checks its signature against the keys folder's root (``regflow documents verify``).
Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import clock

from . import documents, portal
from .calendar import SHANGHAI
from .document_file_models import SERVICE_METHODS, DocumentFile, DocumentService
from .document_models import DOCUMENT_KINDS, Agency, Document
from .document_render import prepare_fields, render_pdf, template_name
from .registry_models import CheckItem
from .signing import Signer, verify_pdf

MAX_NAME = 120
#: documents served to the party, which carry its entity-portal access code (not the internal filing approval, the
#: service receipt itself or a letter to another authority)
PORTAL_KINDS = frozenset({"inspection_record", "rectification_notice", "penalty_notice", "hearing_notice",
                          "penalty_decision"})
MAX_NOTE = 500
MAX_FINDINGS = 200


def findings_fields(session: Session, fields: dict) -> dict:
    """``findings`` as the inspection form records them (``[{item_code, clause, description}, …]``) become one
    line each, ``[item clause] description``; without a ``legal_basis`` of its own, the document cites the legal
    bases of the findings' check items (the registry's ``check_item.legal_basis``). Other fields pass as given."""
    findings = fields.get("findings")
    if not isinstance(findings, list) or not findings or not all(isinstance(f, dict) for f in findings):
        return fields
    if len(findings) > MAX_FINDINGS:
        raise InvalidInput(f"{len(findings)} findings; a document lists at most {MAX_FINDINGS}")
    lines, codes = [], []
    for f in findings:
        code, clause = str(f.get("item_code") or "").strip(), str(f.get("clause") or "").strip()
        label = " ".join(p for p in (code, clause) if p)
        lines.append(f"[{label}] {f.get('description') or ''}".strip() if label else str(f.get("description") or ""))
        if code and code not in codes:
            codes.append(code)
    out = {**fields, "findings": lines}
    if not fields.get("legal_basis") and codes:
        bases = dict(session.execute(select(CheckItem.code, CheckItem.legal_basis)
                                     .where(CheckItem.code.in_(codes))).all())
        cited = list(dict.fromkeys(bases[c] for c in codes if bases.get(c)))
        if cited:
            out["legal_basis"] = cited
    return out


def issue_signed(session: Session, *, agency: Agency, kind: str, signer: Signer, instance_id: int | None,
                 ref: str | None, uscc: str | None, entity_name: str | None, fields: dict | None,
                 issued_by: str = "system", now: datetime | None = None,
                 events: list | None = None, portal_code_days: int = 0) -> tuple[Document, DocumentFile]:
    """Number, render, sign and store a document of ``kind`` (see the module). The same (instance, kind, ref)
    while its document stands gives back that document and its file, issuing nothing. With ``portal_code_days``,
    a document served to a party (:data:`PORTAL_KINDS`) carries a new entity-portal access code valid that long."""
    now = now or clock.now()
    if kind not in DOCUMENT_KINDS:
        raise InvalidInput(f"document kind {kind!r} is not one of {', '.join(DOCUMENT_KINDS)}")
    pending: list = []
    doc = documents.issue(session, agency, kind, documents.local_year(now), instance_id=instance_id, ref=ref,
                          uscc=uscc, issued_by=issued_by, now=now, events=pending)
    if not pending:  # the same (instance, kind, ref) was issued before: that document stands
        existing = session.get(DocumentFile, doc.id)
        if existing is None:
            raise Conflict(f"document {doc.number} was issued without its PDF")
        return doc, existing
    snapshot = prepare_fields(kind, findings_fields(session, fields or {}), number=doc.number,
                              agency_name=agency.name, entity_name=entity_name, uscc=doc.uscc, issued_at=now)
    code, until = None, None
    if kind in PORTAL_KINDS and doc.uscc and portal.normalise_uscc(doc.uscc) is not None and portal_code_days:
        # the party's code for the entity portal, printed on the document it is served (stored only as a hash)
        code = portal.issue_access_code(session, uscc=doc.uscc, document_id=doc.id, ttl_days=portal_code_days,
                                        now=now, issued_by=issued_by, events=pending)
        until = (now + timedelta(days=portal_code_days)).astimezone(SHANGHAI).date().isoformat()
        for event in pending:
            event.instance_id = event.instance_id if event.instance_id is not None else instance_id
    pdf = signer.sign(render_pdf(kind, snapshot, access_code=code, access_until=until),
                      reason=f"{agency.name} 签发 {doc.number}")
    digest = hashlib.sha256(pdf).hexdigest()
    row = DocumentFile(document_id=doc.id, pdf=pdf, size=len(pdf), sha256=digest,
                       signer_fingerprint=signer.fingerprint, signer_subject=signer.subject[:300],
                       fields=snapshot, template=template_name(kind), rendered_at=now)
    session.add(row)
    session.flush()
    for event in pending:
        event.detail = {**event.detail, "sha256": digest, "signer_fingerprint": signer.fingerprint}
    if events is not None:
        events.extend(pending)
    else:
        for event in pending:
            documents.record_event(session, doc, event)
    return doc, row


def document_file(session: Session, doc: Document) -> DocumentFile:
    row = session.scalar(select(DocumentFile).options(undefer(DocumentFile.pdf))
                         .where(DocumentFile.document_id == doc.id))
    if row is None:
        raise NotFound(f"document {doc.number} has no PDF (it was numbered before documents were rendered)")
    return row


def pdf_bytes(session: Session, number: str) -> tuple[Document, bytes]:
    doc = documents.get_document(session, number)
    return doc, document_file(session, doc).pdf


def file_name(doc: Document) -> str:
    """``责令改正通知书-郑市监责改〔2026〕1号.pdf``."""
    return f"{DOCUMENT_KINDS[doc.kind][0]}-{doc.number}.pdf"


def _clean(value, name: str, limit: int, required: bool = True) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise InvalidInput(f"{name} is required")
        return None
    if len(text) > limit:
        raise InvalidInput(f"{name} is {len(text)} characters; at most {limit}")
    return text


def serve(session: Session, number: str, *, method: str, served_to, served_at: datetime | None,
          recorded_by: str, note=None, now: datetime | None = None) -> DocumentService:
    """Record the service of document ``number`` (送达回证), audited in its instance's chain (else the system's).
    Conflict if it was served already or is void; InvalidInput for an unknown method, a missing recipient or a
    service time in the future."""
    if method not in SERVICE_METHODS:
        raise InvalidInput(f"service method {method!r} is not one of {', '.join(SERVICE_METHODS)}")
    served_to = _clean(served_to, "the recipient (served to)", MAX_NAME)
    note = _clean(note, "the note", MAX_NOTE, required=False)
    now = now or clock.now()
    served_at = served_at or now
    if served_at.tzinfo is None:
        raise InvalidInput("the service time needs a time zone")
    doc = documents.get_document(session, number)
    if doc.status == "void":
        raise Conflict(f"document {doc.number} is void and cannot be served")
    if served_at < doc.issued_at:
        raise InvalidInput(f"document {doc.number} was issued at {doc.issued_at.isoformat(timespec='minutes')}; "
                           f"it cannot have been served before")
    if served_at > now:
        raise InvalidInput("the service time is in the future")
    earlier = session.get(DocumentService, doc.id)
    if earlier is not None:
        raise Conflict(f"document {doc.number} was served already ({SERVICE_METHODS[earlier.method]}, "
                       f"{earlier.served_at.isoformat(timespec='minutes')}, to {earlier.served_to})")
    row = DocumentService(document_id=doc.id, served_at=served_at, method=method, served_to=served_to,
                          recorded_by=recorded_by, recorded_at=now, note=note)
    session.add(row)
    session.flush()
    documents.record(session, doc, "document_served", recorded_by, now, method=method, served_to=served_to,
                     served_at=served_at.isoformat())
    return row


def service_doc(row: DocumentService | None) -> dict | None:
    if row is None:
        return None
    return {"served_at": row.served_at, "method": row.method, "method_name": SERVICE_METHODS[row.method],
            "served_to": row.served_to, "recorded_by": row.recorded_by, "recorded_at": row.recorded_at,
            "note": row.note}


def file_doc(session: Session, doc: Document) -> dict:
    """What the register keeps beside a document: its PDF's digest and signer, and its service."""
    f = session.get(DocumentFile, doc.id)
    return {"sha256": f.sha256 if f else None, "size": f.size if f else None,
            "signer_fingerprint": f.signer_fingerprint if f else None,
            "signer_subject": f.signer_subject if f else None, "template": f.template if f else None,
            "service": service_doc(session.get(DocumentService, doc.id))}


def instance_documents(session: Session, instance_id: int) -> list[dict]:
    """The documents an instance issued, in issue order, for its dossier and task pages."""
    rows = session.execute(select(Document, DocumentFile.sha256, DocumentService.served_at)
                           .outerjoin(DocumentFile, DocumentFile.document_id == Document.id)
                           .outerjoin(DocumentService, DocumentService.document_id == Document.id)
                           .where(Document.instance_id == instance_id).order_by(Document.issued_at, Document.id))
    return [{"id": d.id, "number": d.number, "kind": d.kind, "kind_name": DOCUMENT_KINDS[d.kind][0], "status": d.status,
             "issued_at": d.issued_at, "has_pdf": sha is not None, "sha256": sha, "served_at": served}
            for d, sha, served in rows]


def verify_files(session: Session, keys_dir: str | Path, *, batch: int = 100) -> dict:
    """Every stored PDF: its bytes' SHA-256 equals the recorded one and its signature is valid (trusted root,
    nothing changed); problems as ``{number, problem}``. Also documents without a PDF, counted apart (numbers
    allocated before PDFs existed, or by hand)."""
    problems: list[dict] = []
    checked = 0
    last = 0
    while True:
        rows = session.execute(select(Document.id, Document.number, DocumentFile.sha256, DocumentFile.pdf,
                                      DocumentFile.signer_fingerprint)
                               .join(DocumentFile, DocumentFile.document_id == Document.id)
                               .where(Document.id > last).order_by(Document.id).limit(batch)).all()
        if not rows:
            break
        for doc_id, number, sha, pdf, fp in rows:
            last, checked = doc_id, checked + 1
            if hashlib.sha256(pdf).hexdigest() != sha:
                problems.append({"number": number, "problem": "the PDF's SHA-256 differs from the recorded one"})
                continue
            check = verify_pdf(pdf, keys_dir)
            if not check.ok:
                problems.append({"number": number, "problem": f"signature: {check.problem}"})
            elif check.signer_fingerprint != fp:
                problems.append({"number": number, "problem": "signed by another certificate than recorded"})
    unrendered = session.scalar(select(func.count(Document.id))
                                .outerjoin(DocumentFile, DocumentFile.document_id == Document.id)
                                .where(DocumentFile.document_id.is_(None)))
    return {"files_checked": checked, "without_pdf": unrendered, "problems": problems}


def summary(session: Session, keys_dir: str | Path) -> dict:
    """``documents`` (how many of each kind were issued) and ``documents_verified`` (the register has no gap and
    every document has its PDF, whose digest and signature match), as the simulation reports them."""
    counts = dict(session.execute(select(Document.kind, func.count()).group_by(Document.kind)).all())
    files = verify_files(session, keys_dir)
    ok = documents.verify_register(session).ok and not files["problems"] and not files["without_pdf"]
    return {"documents": {k: counts[k] for k in DOCUMENT_KINDS if k in counts}, "documents_verified": ok}
