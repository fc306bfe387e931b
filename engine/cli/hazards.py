"""``regflow hazards``: the hazard registry from the command line — what ``/supervise/hazards`` shows.

``list`` pages through the registry (still listed by default), ``overdue`` lists open rectification orders past
their deadline, ``stranded`` the unsettled orders and cases whose process an administrator terminated;
``close-order`` and ``terminate-case`` settle those with a reason as ``--user``, a supervisor of the entity's
jurisdiction (the command the page's buttons call: :func:`engine.commands.hazards.settle_stranded`).
"""
from __future__ import annotations

import click

from engine.commands import hazards as hazard_commands
from engine.runtime import clock
from engine.supervision import dashboard
from engine.supervision.loop_models import HAZARD_GRADES, HAZARD_STATUSES

from .support import CliState, emit, handle_errors, json_option, pass_state, tx


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


@click.group(name="hazards")
def hazards() -> None:
    """The hazard registry: hazards, overdue rectification orders, orders and cases without a process."""


@hazards.command(name="list")
@click.option("--status", type=click.Choice(["listed", "all", *HAZARD_STATUSES]), default="listed", show_default=True,
              help="listed = still in the registry (open or rectification verified).")
@click.option("--grade", type=click.Choice(HAZARD_GRADES))
@click.option("--uscc", help="One entity's hazards.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@json_option
@handle_errors
def list_(status: str, grade: str | None, uscc: str | None, limit: int, offset: int, as_json: bool) -> None:
    """Hazards, newest first, with the entity's name."""
    with tx() as s:
        page = dashboard.list_hazards(s, status=None if status == "all" else status, grade=grade, uscc=uscc,
                                      limit=limit, offset=offset)
        doc = {"total": page.total, "limit": page.limit, "offset": page.offset, "hazards": [
            {"id": h.id, "uscc": h.uscc, "entity_name": name, "item_code": h.item_code, "clause": h.clause,
             "grade": h.grade, "status": h.status, "found_at": _iso(h.found_at), "source_instance_id":
             h.source_instance_id, "needs_case": h.needs_case, "closed_reason": h.closed_reason}
            for h, name in page.rows]}

    def human(d):
        lines = [f"{d['total']} hazard(s); showing {len(d['hazards'])} from {d['offset']}"]
        lines += [f"  #{h['id']:<6} {h['grade']:<6} {h['status']:<22} {h['uscc']} {h['entity_name'] or ''}  "
                  f"{h['item_code']}/{h['clause']}  found {h['found_at'][:10]}" for h in d["hazards"]]
        return "\n".join(lines)

    emit(doc, as_json, human)


@hazards.command()
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@handle_errors
def overdue(limit: int, as_json: bool) -> None:
    """Open rectification orders past their deadline, the most overdue first."""
    now = clock.now()
    with tx() as s:
        n, rows = dashboard.overdue_orders(s, now, limit=limit)
        doc = {"total": n, "orders": [
            {"id": o.id, "uscc": o.uscc, "status": o.status, "deadline": _iso(o.deadline),
             "days_overdue": (now - o.deadline).days, "provisional": o.provisional,
             "extension_used": o.extension_used, "hazard_ids": list(o.hazard_ids or []), "instance_id": o.instance_id}
            for o in rows]}
    emit(doc, as_json, lambda d: "\n".join(
        [f"{d['total']} overdue rectification order(s)"]
        + [f"  order #{o['id']:<6} {o['uscc']} {o['status']:<9} due {o['deadline'][:10]}  "
           f"{o['days_overdue']} day(s) overdue  instance {o['instance_id']}" for o in d["orders"]]))


@hazards.command()
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@handle_errors
def stranded(limit: int, as_json: bool) -> None:
    """Unsettled rectification orders and enforcement cases whose process an administrator terminated."""
    with tx() as s:
        n, rows = dashboard.stranded(s, limit=limit)
        doc = {"total": n, "items": [
            {"kind": r.kind, "id": r.id, "uscc": r.uscc, "status": r.status, "hazard_ids": r.hazard_ids,
             "instance_id": r.instance_id, "terminated_at": _iso(r.terminated_at), "reason": r.reason}
            for r in rows]}
    emit(doc, as_json, lambda d: "\n".join(
        [f"{d['total']} order(s) and case(s) without a running process"]
        + [f"  {r['kind']} #{r['id']:<6} {r['uscc']} {r['status']:<9} hazards {r['hazard_ids']}  "
           f"instance {r['instance_id']} terminated {(r['terminated_at'] or '')[:16]}: {r['reason'] or ''}"
           for r in d["items"]]))


def _settle(state: CliState, kind: str, item_id: int, reason: str, user: str, as_json: bool, human) -> None:
    """Settle the stranded order or case as ``user`` in one transaction and print what was done."""
    with state.tx() as s:
        doc = hazard_commands.settle_stranded(s, state.actor(s, user), kind, item_id, reason)
    emit(doc, as_json, human)


_REASON = click.option("--reason", required=True,
                       help="Why it is settled without its process (at most 200 characters).")
_USER = click.option("--user", required=True,
                     help="Who settles it: a supervisor of the entity's jurisdiction (audited).")


@hazards.command(name="close-order")
@click.argument("order_id", type=int)
@_REASON
@_USER
@json_option
@pass_state
@handle_errors
def close_order(state: CliState, order_id: int, reason: str, user: str, as_json: bool) -> None:
    """Close a stranded rectification order (its process was terminated) with its hazards that nothing else covers."""
    _settle(state, "order", order_id, reason, user, as_json,
            lambda d: f"order #{d['order_id']} {d['status']}: hazards closed {d['hazards_closed']}, "
                      f"still listed {d['hazards_kept']}")


@hazards.command(name="terminate-case")
@click.argument("case_id", type=int)
@_REASON
@_USER
@json_option
@pass_state
@handle_errors
def terminate_case(state: CliState, case_id: int, reason: str, user: str, as_json: bool) -> None:
    """Terminate a stranded enforcement case (its process was terminated)."""
    _settle(state, "case", case_id, reason, user, as_json,
            lambda d: f"case #{d['case_id']} {d['status']}: {d['reason']}")
