"""Checking a case file (案卷) bundle offline: :func:`verify_bundle` over the ZIP that
:func:`engine.supervision.case_file.build` writes, trusting nothing in it but the keys folder's root.

The chain of trust: ``index.pdf`` (the 卷内目录) is signed with the agency's key — its signature must be valid, the
signer's certificate chain to the keys folder's root and nothing appended after signing
(:func:`~engine.supervision.signing.verify_pdf`). The signed index carries the SHA-256 of ``manifest.json``,
printed on its pages and stored as the PDF's subject (read back from there); ``manifest.json`` names every
other file with its SHA-256 and size; ``history.json`` holds the audit events of the instances' hash chains,
recomputed here with the audit log's own hashing (:func:`engine.runtime.audit.row_hash`) up to the heads the
manifest records. So a changed byte anywhere — a document, an evidence file, an event, the manifest — is a
problem named by its file.

A bundle is a stranger's file: it is refused before anything is unpacked (:class:`BundleRefused`) when it is
bigger than the limit, has too many entries, declares more unpacked bytes than the limit, an entry that would
unpack more than :data:`MAX_RATIO`-fold (a ZIP bomb), an encrypted entry or an unknown compression method.
Entries are then read only up to their declared sizes (:mod:`zipfile` stops there and checks each CRC).
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path

from engine.errors import InvalidInput
from engine.runtime.audit import GENESIS, row_hash

from .signing import verify_pdf

FORMAT = "regflow-case-file/1"
HISTORY_FORMAT = "regflow-case-history/1"
MANIFEST, INDEX, HISTORY = "manifest.json", "index.pdf", "history.json"
#: the largest bundle built or accepted, packed and unpacked (bytes)
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
#: the most entries a bundle may have
MAX_ENTRIES = 5000
#: an entry bigger than :data:`RATIO_FLOOR` may unpack at most this many times its packed size
MAX_RATIO = 200
RATIO_FLOOR = 64 * 1024
#: the PDF subject of the index: this prefix, then the manifest's SHA-256
SUBJECT_PREFIX = "regflow case file manifest-sha256:"
_ROW_KEYS = ("at", "actor", "kind", "instance_id", "bpmn_id", "task_guid", "flow_ids", "data_diff", "detail")


class BundleRefused(InvalidInput):
    """A bundle refused before it was unpacked: too big, too many entries, a possible ZIP bomb, not a ZIP."""


class BundleTooLarge(BundleRefused):
    http_status = 413


@dataclass
class BundleReport:
    ok: bool = True
    case_number: str | None = None
    instance_id: int | None = None
    entity: dict | None = None
    agency: dict | None = None
    generated_at: str | None = None
    manifest_sha256: str | None = None
    signer_subject: str | None = None
    files_checked: int = 0
    events_checked: int = 0
    problems: list[dict] = field(default_factory=list)

    def problem(self, file: str, text: str) -> None:
        self.ok = False
        self.problems.append({"file": file, "problem": text})

    def to_dict(self) -> dict:
        return {"ok": self.ok, "case_number": self.case_number, "instance_id": self.instance_id,
                "entity": self.entity, "agency": self.agency, "generated_at": self.generated_at,
                "manifest_sha256": self.manifest_sha256, "signer_subject": self.signer_subject,
                "files_checked": self.files_checked, "events_checked": self.events_checked,
                "problems": self.problems}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_bundle(data: bytes, max_bytes: int = MAX_BUNDLE_BYTES) -> zipfile.ZipFile:
    """The ZIP, its central directory checked against the limits before any entry is unpacked (see the module)."""
    if not isinstance(data, (bytes, bytearray)):
        raise BundleRefused.fmt("A case file must be given as bytes.")
    if len(data) > max_bytes:
        raise BundleTooLarge.fmt("The case file is {size} bytes; at most {limit} bytes are accepted.",
                                 size=len(data), limit=max_bytes)
    try:
        zf = zipfile.ZipFile(BytesIO(bytes(data)))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise BundleRefused.fmt("This is not a readable ZIP file ({why}).", why=str(exc)[:200]) from exc
    if len(infos) > MAX_ENTRIES:
        raise BundleRefused.fmt("The case file has {count} entries; at most {limit} are accepted.",
                                count=len(infos), limit=MAX_ENTRIES)
    total = 0
    for info in infos:
        total += info.file_size
        if info.flag_bits & 0x1:
            raise BundleRefused.fmt("Entry {name} is encrypted; a case file is not.", name=info.filename[:200])
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleRefused.fmt("Entry {name} uses an unsupported compression method.", name=info.filename[:200])
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise BundleRefused.fmt("Entry {name} would unpack from {packed} to {size} bytes: refused as a possible "
                                    "ZIP bomb.", name=info.filename[:200], packed=info.compress_size,
                                    size=info.file_size)
    if total > max_bytes:
        raise BundleTooLarge.fmt("The case file would unpack to {size} bytes; at most {limit} bytes are accepted.",
                                 size=total, limit=max_bytes)
    return zf


def _read_all(zf: zipfile.ZipFile, report: BundleReport) -> dict[str, bytes]:
    """Every entry's bytes (up to its declared size); a damaged entry or a repeated name is a problem."""
    out: dict[str, bytes] = {}
    for info in zf.infolist():
        if info.is_dir():
            continue
        if info.filename in out:
            report.problem(info.filename, "the name occurs more than once in the ZIP")
            continue
        try:
            with zf.open(info) as f:
                out[info.filename] = f.read(info.file_size + 1)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            report.problem(info.filename, f"cannot be read from the ZIP: {str(exc)[:200]}")
    return out


def index_digest(pdf: bytes) -> str | None:
    """The manifest SHA-256 the (signed) index carries as its subject, or None."""
    from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: PLC0415  (pyHanko: a second to import)

    try:
        info = PdfFileReader(BytesIO(pdf), strict=False).trailer_view.get("/Info")
        subject = str(info.get_object().get("/Subject") or "") if info is not None else ""
    except Exception:  # noqa: BLE001 - a mangled file is a finding, not a crash
        return None
    if not subject.startswith(SUBJECT_PREFIX):
        return None
    return subject[len(SUBJECT_PREFIX):].strip() or None


def verify_bundle(data: bytes, keys_dir: str | Path, *, max_bytes: int = MAX_BUNDLE_BYTES) -> BundleReport:
    """Check a case-file ZIP (see the module): a report whose ``problems`` name each file and what is wrong.
    :class:`BundleRefused` (InvalidInput) for a file refused before unpacking."""
    zf = open_bundle(data, max_bytes)
    report = BundleReport()
    with zf:
        files = _read_all(zf, report)
    raw, index = files.get(MANIFEST), files.get(INDEX)
    if index is None:
        report.problem(INDEX, "missing: the bundle has no signed index")
    else:
        check = verify_pdf(index, keys_dir)
        report.signer_subject = check.signer_subject
        if not check.ok:
            report.problem(INDEX, f"signature: {check.problem}")
    if raw is None:
        report.problem(MANIFEST, "missing")
        return report
    report.manifest_sha256 = sha256(raw)
    if index is not None:
        printed = index_digest(index)
        if printed is None:
            report.problem(INDEX, "carries no manifest digest")
        elif printed != report.manifest_sha256:
            report.problem(MANIFEST, "its SHA-256 differs from the one the signed index records (the manifest was "
                                     "changed)")
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest")
        _check_manifest(manifest, files, report, check.signer_fingerprint if index is not None else None)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        report.problem(MANIFEST, f"not a case-file manifest ({str(exc)[:200]})")
    return report


def _check_manifest(manifest: dict, files: dict[str, bytes], report: BundleReport, signer: str | None) -> None:
    report.case_number = manifest.get("case_number")
    report.instance_id = manifest.get("instance_id")
    report.entity, report.agency = manifest.get("entity"), manifest.get("agency")
    report.generated_at = manifest.get("generated_at")
    recorded = (manifest.get("signer") or {}).get("fingerprint")
    if signer is not None and recorded and recorded != signer:
        report.problem(INDEX, "signed by another certificate than the manifest names")
    listed = {MANIFEST, INDEX}
    for item in manifest["items"]:
        path = item.get("path")
        if not path:
            continue
        listed.add(path)
        data = files.get(path)
        report.files_checked += 1
        if data is None:
            report.problem(path, "missing from the bundle")
        elif sha256(data) != item["sha256"]:
            report.problem(path, "its SHA-256 differs from the manifest's (the file was changed)")
        elif len(data) != item["size"]:
            report.problem(path, "its size differs from the manifest's")
    for name in sorted(set(files) - listed):
        report.problem(name, "not listed in the manifest")
    history = files.get(HISTORY)
    if history is None or HISTORY not in listed:
        report.problem(HISTORY, "missing: the bundle has no audit history")
        return
    events = _check_history(history, manifest["history"]["chains"], report)
    for item in manifest["items"]:
        ref = item.get("event")
        if ref and events.get((ref["chain"], ref["seq"])) != ref["hash"]:
            report.problem(HISTORY, f"item {item.get('order')} ({item.get('title')}) names event {ref['chain']} "
                                    f"seq {ref['seq']}, which the history does not hold with that hash")


def _check_history(raw: bytes, heads: list[dict], report: BundleReport) -> dict[tuple[str, int], str]:
    """Recompute every chain of ``history.json`` from the genesis hash to the head the manifest records."""
    found: dict[tuple[str, int], str] = {}
    try:
        doc = json.loads(raw)
        chains = {c["chain"]: c for c in doc["chains"]} if doc.get("format") == HISTORY_FORMAT else None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        report.problem(HISTORY, f"not a case-file history ({str(exc)[:200]})")
        return found
    if chains is None:
        report.problem(HISTORY, f"not a {HISTORY_FORMAT} document")
        return found
    for head in heads:
        name = head["chain"]
        chain = chains.get(name)
        if chain is None:
            report.problem(HISTORY, f"chain {name} is missing")
            continue
        seq, prev = 0, GENESIS
        for ev in chain["events"]:
            report.events_checked += 1
            seq += 1
            where = f"chain {name} seq {ev.get('seq')}"
            if ev.get("seq") != seq:
                report.problem(HISTORY, f"{where}: expected seq {seq} (an event is missing or moved)")
                seq = ev.get("seq") if isinstance(ev.get("seq"), int) else seq
            if ev.get("prev_hash") != prev:
                report.problem(HISTORY, f"{where}: prev_hash does not link to the previous event")
            try:
                row = {k: ev[k] for k in _ROW_KEYS}
                row["at"] = datetime.fromisoformat(row["at"])
                digest = row_hash(ev["prev_hash"], name, ev["seq"], row)
            except (ValueError, TypeError, KeyError) as exc:
                report.problem(HISTORY, f"{where}: unreadable event ({str(exc)[:120]})")
                digest = None
            if digest is not None and digest != ev.get("hash"):
                report.problem(HISTORY, f"{where}: content does not match its hash (the event was changed)")
            prev = ev.get("hash")
            found[(name, ev.get("seq"))] = prev
        if (seq, prev) != (head["seq"], head["hash"]):
            report.problem(HISTORY, f"chain {name} ends at seq {seq} but the manifest records its head at seq "
                                    f"{head['seq']} (events removed or changed)")
    return found
