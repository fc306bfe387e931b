"""``regflow transfers``: matters transferred out (移送) and their receipts.

``list`` pages through the transfers (by status or entity), ``show`` prints one. A receipt arrives as the message
``transfer_receipt`` (``regflow message transfer_receipt --correlation '{"transfer_id": 7}' --payload '{…}'``) or
is entered by the officer from paper in the transfer's chase task.
"""
from __future__ import annotations

import click

from engine.supervision import transfers
from engine.supervision.transfer_models import TRANSFER_STATUSES

from .support import emit, handle_errors, json_option, table, tx


@click.group(name="transfers")
def transfers_group() -> None:
    """Transfers (移送) to another department, the police, the judiciary or the new jurisdiction."""


@transfers_group.command(name="list")
@click.option("--status", type=click.Choice(TRANSFER_STATUSES))
@click.option("--uscc", help="Only this entity's transfers.")
@click.option("--limit", type=click.IntRange(0, 10_000), default=200, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@json_option
@handle_errors
def list_(status: str | None, uscc: str | None, limit: int, offset: int, as_json: bool) -> None:
    """Transfers, oldest first, with their receipts."""
    with tx() as s:
        total, rows = transfers.list_transfers(s, status=status, uscc=uscc, limit=limit, offset=offset)
        doc = {"total": total, "limit": limit, "offset": offset, "transfers": [transfers.transfer_doc(r) for r in rows]}

    def human(d):
        rows = [{"id": r["transfer_id"], "kind": r["kind"], "status": r["status"], "uscc": r["uscc"],
                 "receiving": r["receiving"], "sent": (r["sent_at"] or "")[:10],
                 "receipt": (r["received_at"] or "")[:10], "outcome": r["outcome"] or ""} for r in d["transfers"]]
        return (f"{d['total']} transfer(s); showing {len(rows)} from {d['offset']}\n"
                + table(rows, ["id", "kind", "status", "uscc", "receiving", "sent", "receipt", "outcome"]))

    emit(doc, as_json, human)


@transfers_group.command()
@click.argument("transfer_id", type=click.IntRange(1, 2**31 - 1))
@json_option
@handle_errors
def show(transfer_id: int, as_json: bool) -> None:
    """One transfer: what was sent, to whom, and its receipt."""
    with tx() as s:
        doc = transfers.transfer_doc(transfers.get_transfer(s, transfer_id))

    def human(d):
        lines = [f"transfer {d['transfer_id']}  {d['kind_name']} ({d['kind']})  {d['status']}",
                 f"  entity     {d['uscc']}",
                 f"  to         {d['receiving']}",
                 f"  reason     {d['reason']}",
                 f"  instance   {d['instance_id'] or '—'} (from {d['source_instance_id'] or '—'})",
                 f"  sent       {(d['sent_at'] or '—')[:19]}  letter {d['letter_number'] or '—'}",
                 f"  materials  {'; '.join(d['materials']) or '—'}"]
        if d["received_at"]:
            verdict = "accepted" if d["accepted"] else f"refused: {d['refusal_reason']}"
            lines.append(f"  receipt    {d['received_at'][:10]} by {d['received_by']} ({d['receipt_via']}) "
                         f"ref {d['receipt_reference'] or '—'}: {verdict}")
        if d["outcome"]:
            lines.append(f"  outcome    {d['outcome']}{(': ' + d['note']) if d['note'] else ''}")
        return "\n".join(lines)

    emit(doc, as_json, human)
