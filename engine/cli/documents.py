"""``regflow documents``: the register of official documents and the agencies that number them.

``list`` pages through the register (filtered by agency code, kind, year), ``show`` prints one document by its
number, ``verify`` checks every register (exit 1 naming each problem: a gap, a duplicate, a number that does
not match its parts), ``void`` voids a document with a reason as ``--user`` — a supervisor or an administrator
(:func:`engine.commands.documents.void_document`) — and ``agencies`` lists the bureau and its stations (with
``--district``: which one issues for that district).

``verify`` also recomputes every stored PDF's SHA-256 and checks its signature against the keys folder's root;
``pdf`` writes a document's signed PDF to a file; ``serve`` records its service (送达回证) as ``--user``
(:func:`engine.commands.documents.serve_document`; a second service is refused, exit 4); ``keys --demo``
creates the demo root CA and a signing key per agency in ``REGFLOW_KEYS_DIR`` (idempotent).
"""
from __future__ import annotations

import sys

import click
from sqlalchemy import select

from engine.commands import documents as document_commands
from engine.config import load_settings
from engine.supervision import agencies as agency_registry
from engine.supervision import document_files, signing
from engine.supervision import documents as register
from engine.supervision.document_file_models import SERVICE_METHODS
from engine.supervision.document_models import DOCUMENT_KINDS, Agency

from .support import CliState, emit, handle_errors, json_option, pass_state, table, tx


def _human_doc(d: dict) -> str:
    lines = [f"{d['number']}  {d['kind_name']} ({d['kind']})  {d['status']}",
             f"  agency     {d['agency']} {d['agency_name']}",
             f"  register   {d['year']} no. {d['seq']}",
             f"  issued     {str(d['issued_at'])[:19]} by {d['issued_by']}",
             f"  entity     {d['uscc'] or '—'}",
             f"  instance   {d['instance_id'] if d['instance_id'] is not None else '—'}  ref {d['ref'] or '—'}"]
    if d["status"] == "void":
        lines.append(f"  voided     {str(d['voided_at'])[:19]} by {d['voided_by']}: {d['void_reason']}")
    if d.get("sha256"):
        lines.append(f"  pdf        {d['size']} bytes, sha256 {d['sha256']}")
        lines.append(f"  signed by  {d['signer_subject']} ({d['signer_fingerprint'][:16]}…)")
    if d.get("service"):
        sv = d["service"]
        lines.append(f"  served     {str(sv['served_at'])[:19]} {sv['method_name']} ({sv['method']}) to "
                     f"{sv['served_to']}, recorded by {sv['recorded_by']}")
    return "\n".join(lines)


@click.group(name="documents")
def documents() -> None:
    """Official documents: the number register per agency, kind and year."""


@documents.command(name="list")
@click.option("--agency", help="An agency's code (郑市监).")
@click.option("--kind", type=click.Choice(list(DOCUMENT_KINDS)))
@click.option("--year", type=click.IntRange(2000, 2999))
@click.option("--limit", type=click.IntRange(0, 10_000), default=200, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@json_option
@handle_errors
def list_(agency: str | None, kind: str | None, year: int | None, limit: int, offset: int, as_json: bool) -> None:
    """Documents in register order: agency, kind, year, number."""
    with tx() as s:
        total, rows = register.list_documents(s, agency=agency, kind=kind, year=year, limit=limit, offset=offset)
        agencies = {a.id: a for a in s.scalars(select(Agency))}
        doc = {"total": total, "limit": limit, "offset": offset,
               "documents": [register.document_doc(d, agencies[d.agency_id]) for d in rows]}

    def human(d):
        rows = [{**r, "issued_at": str(r["issued_at"])[:10], "uscc": r["uscc"] or "",
                 "instance": r["instance_id"] if r["instance_id"] is not None else ""} for r in d["documents"]]
        return (f"{d['total']} document(s); showing {len(rows)} from {d['offset']}\n"
                + table(rows, ["number", "kind", "status", "issued_at", "issued_by", "uscc", "instance"]))

    emit(doc, as_json, human)


@documents.command()
@click.argument("number")
@json_option
@handle_errors
def show(number: str, as_json: bool) -> None:
    """One document by its number (e.g. 郑市监责改〔2026〕15号)."""
    with tx() as s:
        d = register.get_document(s, number)
        doc = {**register.document_doc(d, s.get(Agency, d.agency_id)), **document_files.file_doc(s, d)}
    emit(doc, as_json, _human_doc)


@documents.command()
@json_option
@handle_errors
def verify(as_json: bool) -> None:
    """Check every register: seqs exactly 1..counter (no gap, no duplicate), each number matching its parts;
    and every stored PDF: its SHA-256 as recorded, its signature valid against the keys folder's root. Exit 1
    naming each problem."""
    with tx() as s:
        report = register.verify_register(s)
        files = document_files.verify_files(s, load_settings().keys_dir)
    doc = {**report.to_dict(), "files_checked": files["files_checked"], "without_pdf": files["without_pdf"],
           "problems": report.problems + files["problems"], "ok": report.ok and not files["problems"]}
    emit(doc, as_json, lambda d: ("OK" if d["ok"] else "BROKEN")
         + f": {d['registers']} register(s), {d['documents']} document(s), {d['files_checked']} signed PDF(s)"
         + (f", {d['without_pdf']} without a PDF" if d["without_pdf"] else "")
         + "".join(f"\n  {p.get('register') or p.get('number')}: {p['problem']}" for p in d["problems"]))
    if not doc["ok"]:
        sys.exit(1)


@documents.command()
@click.argument("number")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The file to write the signed PDF to ('-': standard output).")
@click.option("--user", required=True, help="Who reads it: someone who may read the instance that issued it.")
@pass_state
@handle_errors
def pdf(state: CliState, number: str, output: str, user: str) -> None:
    """Write the signed PDF of a document to a file."""
    with state.tx() as s:  # the read is recorded (read log, via cli) with the transaction, before the file is written
        _doc, _name, data = document_commands.document_pdf(s, state.actor(s, user), number, record_via="cli")
    if output == "-":
        sys.stdout.buffer.write(data)
        return
    with open(output, "wb") as f:
        f.write(data)
    click.echo(f"{output}: {len(data)} bytes")


@documents.command()
@click.argument("number")
@click.option("--method", required=True, type=click.Choice(list(SERVICE_METHODS)),
              help="in_person 直接送达, left_at_address 留置送达, registered_mail 邮寄送达, electronic 电子送达, "
                   "entrusted 委托送达, public_notice 公告送达.")
@click.option("--to", "served_to", required=True, help="Who received it (at most 120 characters).")
@click.option("--at", "served_at", help="When: ISO date or date-time (China time unless a zone is given); "
                                         "default now.")
@click.option("--note", help="A note (refusal, witnesses; at most 500 characters).")
@click.option("--user", required=True, help="Who records it: an officer or supervisor (audited).")
@json_option
@pass_state
@handle_errors
def serve(state: CliState, number: str, method: str, served_to: str, served_at: str | None, note: str | None,
          user: str, as_json: bool) -> None:
    """Record that a document was served (送达回证); its legal clocks start then. Once per document."""
    with state.tx() as s:
        doc = document_commands.serve_document(s, state.actor(s, user), number, method=method,
                                               served_to=served_to, served_at=served_at, note=note)
    emit(doc, as_json, _human_doc)


@documents.command()
@click.option("--demo", is_flag=True, required=True, help="Create the demo PKI (the only kind this command makes).")
@json_option
@handle_errors
def keys(demo: bool, as_json: bool) -> None:
    """The demo root CA and a signing key per agency in REGFLOW_KEYS_DIR, each created only if missing."""
    with tx() as s:
        pairs = [(a.code, a.name) for a in s.scalars(select(Agency).order_by(Agency.id))]
    doc = signing.ensure_demo_keys(load_settings().keys_dir, pairs)
    emit(doc, as_json, lambda d: f"{d['keys_dir']}: root {'created' if d['root_created'] else 'kept'} "
                                 f"(sha256 {d['root_fingerprint'][:16]}…); created {len(d['created'])}, "
                                 f"kept {len(d['existing'])}")


@documents.command(name="void")
@click.argument("number")
@click.option("--reason", required=True, help="Why it is void (at most 200 characters; audited).")
@click.option("--user", required=True, help="Who voids it: a supervisor or an administrator (audited).")
@json_option
@pass_state
@handle_errors
def void_(state: CliState, number: str, reason: str, user: str, as_json: bool) -> None:
    """Void an issued document: it keeps its number, marked void (a second void is refused, exit 4)."""
    with state.tx() as s:
        doc = document_commands.void_document(s, state.actor(s, user), number, reason)
    emit(doc, as_json, lambda d: f"{d['number']} void: {d['void_reason']} (by {d['voided_by']})")


@documents.command(name="agencies")
@click.option("--district", help="Also name the agency that issues for this 6-digit district.")
@json_option
@handle_errors
def agencies_(district: str | None, as_json: bool) -> None:
    """The agencies (a bureau and its stations): code, name, parent, districts, members."""
    with tx() as s:
        doc = {"agencies": agency_registry.list_agencies(s)}
        if district:
            a = agency_registry.responsible_agency(s, district)
            doc["responsible"] = {"district": district.strip(), "code": a.code, "name": a.name}

    def human(d):
        rows = [{**r, "districts": ",".join(r["districts"]), "parent": r["parent"] or ""} for r in d["agencies"]]
        out = table(rows, ["code", "name", "parent", "districts", "active", "members"])
        if "responsible" in d:
            r = d["responsible"]
            out += f"\ndistrict {r['district']}: {r['code']} {r['name']}"
        return out

    emit(doc, as_json, human)
