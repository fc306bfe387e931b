"""``regflow cases``: a case's file (案卷) as one signed ZIP, and its offline check.

``bundle INSTANCE_ID -o FILE --user U`` writes the case file of an instance (an enforcement case, or the
inspection that ran one) as whoever may read it (:func:`engine.commands.case_files.export`; recorded in the read
log); ``verify FILE`` checks a bundle against the keys folder's root (``REGFLOW_KEYS_DIR``): the index's
signature, the manifest's digest printed in it, every file's SHA-256 and the history's hash chains — exit 0 when
all hold, 1 naming each file and its problem, 2 for a file refused before unpacking (too big, a ZIP bomb).
"""
from __future__ import annotations

import sys

import click

from engine.commands import case_files as case_file_commands
from engine.supervision.case_file_verify import MAX_BUNDLE_BYTES

from .support import CliState, emit, handle_errors, json_option, pass_state

_MB = 1024 * 1024


@click.group(name="cases")
def cases() -> None:
    """Case files (案卷): export a case as one signed, verifiable ZIP; check one."""


@cases.command()
@click.argument("instance_id", type=click.IntRange(1, 2**63 - 1))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The ZIP file to write ('-': standard output).")
@click.option("--user", required=True, help="Who exports it: someone who may read the instance (recorded).")
@json_option
@pass_state
@handle_errors
def bundle(state: CliState, instance_id: int, output: str, user: str, as_json: bool) -> None:
    """Write the case file of an instance: its documents' signed PDFs, evidence, history.json, manifest.json and
    the signed index (卷内目录)."""
    settings = state.settings
    with state.tx() as s:
        made = case_file_commands.export(s, state.actor(s, user), instance_id, keys_dir=settings.keys_dir,
                                         upload_dir=settings.upload_dir)
    if output == "-":
        sys.stdout.buffer.write(made.data)
        return
    with open(output, "wb") as f:
        f.write(made.data)
    m = made.manifest
    doc = {"file": output, "size": len(made.data), "instance_id": m["instance_id"], "case_number": m["case_number"],
           "items": len(m["items"]), "files": sum(1 for i in m["items"] if i.get("path")) + 2,
           "manifest_sha256": made.manifest_sha256, "head": m["head"], "notes": m["notes"]}
    emit(doc, as_json, lambda d: f"{d['file']}: {d['size']} bytes, case {d['case_number'] or '—'} (instance "
                                 f"{d['instance_id']}), {d['items']} item(s) in {d['files']} file(s), manifest sha256 "
                                 f"{d['manifest_sha256']}" + "".join(f"\n  note: {n}" for n in d["notes"]))


@cases.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--max-mb", type=click.IntRange(1, 4096), default=MAX_BUNDLE_BYTES // _MB, show_default=True,
              help="Refuse a bundle bigger than this (packed or unpacked).")
@json_option
@pass_state
@handle_errors
def verify(state: CliState, file: str, max_mb: int, as_json: bool) -> None:
    """Check a case file against the keys folder's root; exit 1 naming each problem."""
    limit = max_mb * _MB
    with open(file, "rb") as f:
        data = f.read(limit + 1)
    report = case_file_commands.verify(data, state.settings.keys_dir, max_bytes=limit).to_dict()

    def human(d):
        head = (f"{'OK' if d['ok'] else 'BROKEN'}: case {d['case_number'] or '—'} (instance {d['instance_id']}), "
                f"{d['files_checked']} file(s) and {d['events_checked']} audit event(s) checked, index signed by "
                f"{d['signer_subject'] or '—'}")
        return head + "".join(f"\n  {p['file']}: {p['problem']}" for p in d["problems"])

    emit(report, as_json, human)
    if not report["ok"]:
        sys.exit(1)
