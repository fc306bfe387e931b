"""``regflow evidence``: check stored evidence files against their digests, and sweep files left behind.

``verify`` exits 0 when every file is present with its recorded SHA-256 and 1 otherwise (listing what is
missing or altered). ``sweep`` removes files that no evidence row refers to (an upload whose transaction
rolled back) and interrupted uploads, older than ``--older-than-hours``.
"""
from __future__ import annotations

import sys
from datetime import timedelta

import click

from engine.config import load_settings
from engine.errors import InvalidInput
from engine.runtime import clock
from engine.supervision import evidence as evidence_service

from .support import emit, handle_errors, json_option, tx


def _upload_dir(value: str | None) -> str:
    return value or load_settings().upload_dir


@click.group(name="evidence")
def evidence() -> None:
    """Evidence files: verify them against their SHA-256, sweep files no row refers to."""


@evidence.command()
@click.option("--upload-dir", help="Default: REGFLOW_UPLOAD_DIR.")
@json_option
@handle_errors
def verify(upload_dir: str | None, as_json: bool) -> None:
    """Re-hash every stored evidence file; exit 1 if one is missing or does not match its recorded SHA-256."""
    with tx() as s:
        doc = evidence_service.verify_files(s, _upload_dir(upload_dir))

    def human(d):
        lines = [f"{'OK' if d['ok'] else 'PROBLEMS'}: {d['checked']} evidence file(s) checked"]
        lines += [f"  missing: evidence {p['evidence_id']} ({p['filename']}, instance {p['instance_id']}) "
                  f"sha256 {p['sha256']}" for p in d["missing"]]
        lines += [f"  altered: evidence {p['evidence_id']} ({p['filename']}, instance {p['instance_id']}) "
                  f"recorded {p['sha256']}, file hashes to {p['found']}" for p in d["mismatched"]]
        return "\n".join(lines)

    emit(doc, as_json, human)
    if not doc["ok"]:
        sys.exit(1)


@evidence.command()
@click.option("--upload-dir", help="Default: REGFLOW_UPLOAD_DIR.")
@click.option("--older-than-hours", type=float, default=24.0, show_default=True,
              help="Only files last written before this many hours ago (running uploads are younger).")
@click.option("--dry-run", is_flag=True, help="List what would be removed, remove nothing.")
@json_option
@handle_errors
def sweep(upload_dir: str | None, older_than_hours: float, dry_run: bool, as_json: bool) -> None:
    """Remove stored files that no evidence row refers to, and interrupted uploads."""
    if older_than_hours < 0:
        raise InvalidInput("--older-than-hours must not be negative")
    with tx() as s:
        doc = evidence_service.sweep(s, _upload_dir(upload_dir), older_than=timedelta(hours=older_than_hours),
                                     now=clock.now(), dry_run=dry_run)
    emit(doc, as_json, lambda d: f"{'would remove' if d['dry_run'] else 'removed'} {len(d['removed'])} file(s), "
                                  f"{d['bytes_freed']} bytes; {d['kept_recent']} recent file(s) kept"
                                  + "".join(f"\n  {p}" for p in d["removed"]))
