"""Evidence files attached to human tasks: checked, content-addressed, recorded.

An upload is accepted only when its extension AND its first bytes agree on one of the allowed types
(PDF, PNG, JPEG, plain text / CSV), it is not empty and not larger than ``settings.max_upload_mb``.
The bytes are streamed to a temporary file while their SHA-256 is computed, then moved (atomically)
to ``<upload_dir>/<sha256[:2]>/<sha256>``; the same content uploaded twice is stored once. Each upload
gets an ``Evidence`` row (task, instance, file name, type, size, SHA-256, uploader, time). A rejected
upload leaves nothing behind. Forms carry references ``{sha256, filename, size, content_type}``
(``forms.validate.evidence_ref``), never the bytes.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound
from engine.runtime import clock
from engine.runtime.models import Evidence

from .portal_models import PortalSubmission

CHUNK = 64 * 1024
#: bytes of a text file inspected to tell it from a binary one
TEXT_SNIFF = 8192


@dataclass(frozen=True)
class FileType:
    name: str
    content_type: str
    extensions: tuple[str, ...]


TYPES = (
    FileType("pdf", "application/pdf", ("pdf",)),
    FileType("png", "image/png", ("png",)),
    FileType("jpeg", "image/jpeg", ("jpg", "jpeg")),
    FileType("text", "text/plain", ("txt",)),
    FileType("csv", "text/csv", ("csv",)),
)
BY_EXTENSION = {ext: t for t in TYPES for ext in t.extensions}
ALLOWED_EXTENSIONS = tuple(BY_EXTENSION)

#: leading bytes of binary formats; a "text" file that starts with one of them is a disguised binary
_MAGIC = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"PK\x03\x04", "zip"),
    (b"MZ", "exe"),
    (b"\x7fELF", "elf"),
    (b"GIF8", "gif"),
    (b"\xd0\xcf\x11\xe0", "ole"),
    (b"\x1f\x8b", "gzip"),
    (b"Rar!", "rar"),
    (b"7z\xbc\xaf", "7z"),
)


class EvidenceRejected(InvalidInput):
    """An upload that was refused; nothing was stored. ``reason``: empty | too_large | type | name."""

    http_status = 400

    def __init__(self, message: str, reason: str, **details):
        super().__init__(message, reason=reason, **details)
        self.reason = reason


class EvidenceTooLarge(EvidenceRejected):
    http_status = 413


class EvidenceTypeRejected(EvidenceRejected):
    http_status = 415


def clean_filename(name: str | None) -> str:
    """The last path part, NFC, without control characters or path separators, at most 255 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 254 - len(ext)] + dot + ext) if dot and len(ext) < 20 else name[:255]
    return name


def _detect(head: bytes) -> str | None:
    """The binary format the first bytes announce (``None``: none of the known ones)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    sample = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    for encoding in ("utf-8", "gb18030"):
        try:
            sample.decode(encoding)
            return True
        except UnicodeDecodeError as exc:
            # a multi-byte character cut at the end of the sample is fine
            if exc.start >= len(sample) - 4 and exc.reason.startswith("unexpected end"):
                return True
    return False


def check_type(filename: str, head: bytes) -> FileType:
    """The accepted type of a file from its name and first bytes, or :class:`EvidenceTypeRejected`."""
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    allowed = ", ".join(ALLOWED_EXTENSIONS)
    ftype = BY_EXTENSION.get(ext)
    if ftype is None:
        raise EvidenceTypeRejected(
            f"{filename}: file type {('.' + ext) if ext else '(no extension)'} is not accepted; allowed: {allowed}",
            "type", filename=filename, extension=ext, allowed=list(ALLOWED_EXTENSIONS))
    found = _detect(head)
    if ftype.name in ("pdf", "png", "jpeg"):
        if found != ftype.name:
            raise EvidenceTypeRejected(
                f"{filename}: the content is not a {ftype.name.upper()} file "
                f"({'it looks like ' + found.upper() if found else 'unknown content'}); nothing was stored",
                "type", filename=filename, extension=ext, detected=found)
    elif found is not None or not _looks_like_text(head):
        raise EvidenceTypeRejected(
            f"{filename}: a .{ext} file must be plain text (UTF-8 or GB18030), but the content is "
            f"{found.upper() if found else 'binary'}; nothing was stored", "type", filename=filename, extension=ext,
            detected=found)
    return ftype


def blob_path(upload_dir: str | Path, sha256: str) -> Path:
    return Path(upload_dir) / sha256[:2] / sha256


@dataclass(frozen=True)
class StoredFile:
    filename: str
    content_type: str
    size: int
    sha256: str

    def reference(self) -> dict:
        return {"sha256": self.sha256, "filename": self.filename, "size": self.size,
                "content_type": self.content_type}


def store_upload(session: Session, *, upload_dir: str | Path, max_bytes: int, stream: BinaryIO, filename: str,
                 instance_id: int, task_id: int | None, uploaded_by: str) -> Evidence:
    """Check and store one uploaded file, add its ``Evidence`` row to ``session`` (not committed).

    Raises :class:`EvidenceRejected` (empty, bad name), :class:`EvidenceTooLarge` or
    :class:`EvidenceTypeRejected`; in each case no file is left under ``upload_dir``."""
    f = store_file(upload_dir=upload_dir, max_bytes=max_bytes, stream=stream, filename=filename)
    row = Evidence(instance_id=instance_id, task_id=task_id, filename=f.filename, content_type=f.content_type,
                   size=f.size, sha256=f.sha256, uploaded_by=uploaded_by, uploaded_at=clock.now())
    session.add(row)
    session.flush()
    return row


def store_file(*, upload_dir: str | Path, max_bytes: int, stream: BinaryIO, filename: str) -> StoredFile:
    """The checks and the content-addressed storing of :func:`store_upload`, without the ``Evidence`` row (a
    business's file kept with its portal submission before any instance holds it)."""
    name = clean_filename(filename)
    if not name:
        raise EvidenceRejected("the uploaded file has no name", "name")
    root = Path(upload_dir)
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=root / "tmp", prefix="upload-")
    tmp = Path(tmp_name)
    try:
        digest, size, head = hashlib.sha256(), 0, b""
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise EvidenceTooLarge(
                        f"{name}: the file is larger than the limit of {_mb(max_bytes)}; nothing was stored",
                        "too_large", filename=name, limit_bytes=max_bytes)
                if len(head) < TEXT_SNIFF:
                    head += chunk[: TEXT_SNIFF - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise EvidenceRejected(f"{name}: the file is empty; nothing was stored", "empty", filename=name)
        ftype = check_type(name, head)
        sha = digest.hexdigest()
        final = blob_path(root, sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            tmp.unlink()
        else:
            os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return StoredFile(name, ftype.content_type, size, sha)


def attach(session: Session, runtime, *, upload_dir: str | Path, max_bytes: int, stream: BinaryIO, filename: str,
           instance_id: int, task_id: int | None, uploaded_by: str, bpmn_id: str | None = None,
           task_guid: str | None = None) -> Evidence:
    """:func:`store_upload`, and an ``evidence_attached`` event in the instance's hash chain naming the file and
    its SHA-256: the audit log then vouches for the evidence (a swapped file no longer matches the digest the
    chain recorded; a deleted row leaves its event behind)."""
    row = store_upload(session, upload_dir=upload_dir, max_bytes=max_bytes, stream=stream, filename=filename,
                       instance_id=instance_id, task_id=task_id, uploaded_by=uploaded_by)
    runtime.append_event(session, instance_id, "evidence_attached", uploaded_by, bpmn_id=bpmn_id,
                         task_guid=task_guid, detail={"evidence_id": row.id, "task_id": task_id,
                                                      "filename": row.filename, "sha256": row.sha256,
                                                      "size": row.size, "content_type": row.content_type})
    return row


def verify_files(session: Session, upload_dir: str | Path) -> dict:
    """Re-hash every stored file against its ``evidence`` row: ``{"ok", "checked", "missing": [...],
    "mismatched": [...]}`` (each problem names the evidence id, instance, file name and expected SHA-256).
    With the digests in the instances' hash chains, a replaced file is caught here and an edited digest there."""
    root = Path(upload_dir)
    missing, mismatched, checked, seen = [], [], 0, {}
    rows = session.execute(select(Evidence.id, Evidence.instance_id, Evidence.filename, Evidence.sha256)
                           .order_by(Evidence.id)).all()
    for ev_id, instance_id, filename, sha in rows:
        checked += 1
        problem = {"evidence_id": ev_id, "instance_id": instance_id, "filename": filename, "sha256": sha}
        if sha not in seen:
            path = blob_path(root, sha)
            if not path.is_file():
                seen[sha] = "missing"
            else:
                digest = hashlib.sha256()
                with path.open("rb") as f:
                    for chunk in iter(lambda: f.read(CHUNK), b""):
                        digest.update(chunk)
                seen[sha] = "ok" if digest.hexdigest() == sha else digest.hexdigest()
        state = seen[sha]
        if state == "missing":
            missing.append(problem)
        elif state != "ok":
            mismatched.append(problem | {"found": state})
    return {"ok": not missing and not mismatched, "checked": checked, "missing": missing, "mismatched": mismatched}


def sweep(session: Session, upload_dir: str | Path, *, older_than: timedelta, now: datetime,
          dry_run: bool = False) -> dict:
    """Delete stored files that no ``evidence`` row refers to and interrupted uploads (``tmp/``), when last
    modified before ``now - older_than`` (an upload whose transaction is still running is younger than that).
    A file is left behind when the transaction that stored it rolls back; this removes it. Files a portal
    submission refers to (kept for an officer, no instance holds them) are referenced too."""
    root = Path(upload_dir)
    cutoff = (now - older_than).timestamp()
    known = set(session.scalars(select(Evidence.sha256).distinct()))
    known |= {ref.get("sha256") for refs in session.scalars(select(PortalSubmission.evidence)) for ref in refs or ()}
    removed, kept_recent, freed = [], 0, 0
    if not root.is_dir():
        return {"removed": [], "kept_recent": 0, "bytes_freed": 0, "dry_run": dry_run}
    for path in sorted(root.glob("*/*")):
        if not path.is_file():
            continue
        is_tmp = path.parent.name == "tmp"
        if not is_tmp and (path.name in known or len(path.name) != 64 or path.parent.name != path.name[:2]):
            continue  # referenced, or not a file of ours
        st = path.stat()
        if st.st_mtime >= cutoff:
            kept_recent += 1
            continue
        removed.append(str(path.relative_to(root)))
        freed += st.st_size
        if not dry_run:
            path.unlink(missing_ok=True)
    return {"removed": removed, "kept_recent": kept_recent, "bytes_freed": freed, "dry_run": dry_run}


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def reference(ev: Evidence) -> dict:
    """The form reference of an evidence row (what an ``evidence`` field holds)."""
    return {"sha256": ev.sha256, "filename": ev.filename, "size": ev.size, "content_type": ev.content_type}


def for_task(session: Session, task_id: int) -> list[Evidence]:
    return list(session.scalars(select(Evidence).where(Evidence.task_id == task_id).order_by(Evidence.id)))


def for_instance(session: Session, instance_id: int) -> list[Evidence]:
    return list(session.scalars(select(Evidence).where(Evidence.instance_id == instance_id).order_by(Evidence.id)))


def get(session: Session, evidence_id: int) -> Evidence:
    ev = session.get(Evidence, evidence_id)
    if ev is None:
        raise NotFound(f"evidence {evidence_id} not found")
    return ev
