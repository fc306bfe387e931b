"""``hazard.*``: the hazard registry and rectification orders as BPMN service tasks (the ``rectification`` process).

Writes are keyed by (``ctx.instance_id``, ``ctx.task_guid``) or are idempotent state changes, so a
retried task never records twice. Business refusals are BPMN errors an error boundary may catch:
``removal_blocked`` (rectification not verified or a case still open), ``extension_used`` (one extension
per order), ``invalid_hazard_request``, ``hazard_not_found``.
"""
from __future__ import annotations

from datetime import date, datetime, time

from engine.errors import InvalidInput, NotFound
from engine.runtime.services import Param, ServiceContext, registry
from engine.supervision import calendar, hazards

ERRORS = {hazards.RemovalBlocked: "removal_blocked", hazards.ExtensionUsed: "extension_used",
          InvalidInput: "invalid_hazard_request", NotFound: "hazard_not_found"}


def parse_when(value, default: datetime, name: str = "date") -> datetime:
    """A form's date (``YYYY-MM-DD``: that day at the current time of day in China) or datetime (ISO)."""
    if value in (None, ""):
        return default
    text = str(value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            local = default.astimezone(calendar.SHANGHAI)
            return datetime.combine(day, time(local.hour, local.minute, local.second), tzinfo=calendar.SHANGHAI)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} {value!r} is not an ISO date or datetime") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=calendar.SHANGHAI)


def _ids(values) -> list[int]:
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidInput(f"hazard ids must be integers, got {values!r}") from None


@registry.register("hazard.stats", params=[Param("uscc", "str")],
                   description="The entity's registry history: recurrence_count, hazards_total, open_hazards.",
                   writes=False)
def hazard_stats(ctx: ServiceContext, uscc: str) -> dict:
    return hazards.entity_stats(ctx.session, uscc)


@registry.register(
    "hazard.record",
    params=[Param("uscc", "str"), Param("findings", "list", description="[{item_code, clause, description, ...}]"),
            Param("grade", "str", description="low | medium | high (from the hazard_grade DMN)"),
            Param("entity_id", "int", required=False),
            Param("source_kind", "str", required=False, description="inspection (default) | reinspection"),
            Param("case_lead", "bool", required=False, description="a case lead is owed at once")],
    description="Enter findings into the hazard registry; the entity's recurrence count goes up by one.",
    errors=ERRORS)
def hazard_record(ctx: ServiceContext, uscc: str, findings: list, grade: str, entity_id: int | None = None,
                  source_kind: str | None = None, case_lead: bool | None = None) -> dict:
    rows = hazards.record_hazards(ctx.session, uscc=uscc, findings=findings, grade=grade, entity_id=entity_id,
                                  source_kind=source_kind or "inspection", case_lead=bool(case_lead),
                                  instance_id=ctx.instance_id, task_key=ctx.task_guid, now=ctx.now)
    stats = hazards.entity_stats(ctx.session, uscc)
    return {"hazard_ids": [h.id for h in rows], "grade": grade, "recurrence_count": stats["recurrence_count"]}


@registry.register("hazard.assess",
                   params=[Param("hazard_ids", "list", required=False,
                                 description="default: every hazard this instance recorded")],
                   description="Where hazards stand: open/verified ids, needs_case_ids, open cases, removable.",
                   errors=ERRORS)
def hazard_assess(ctx: ServiceContext, hazard_ids: list | None = None) -> dict:
    ids = _ids(hazard_ids) if hazard_ids is not None else hazards.instance_hazard_ids(ctx.session, ctx.instance_id)
    return hazards.assess(ctx.session, ids)


@registry.register(
    "hazard.issue_order",
    params=[Param("uscc", "str"), Param("hazard_ids", "list"), Param("days", "int"),
            Param("kind", "str", required=False, description="workdays (default) | days (calendar, rolled)")],
    description="A rectification order for hazards, deadline in working days (holidays roll).", errors=ERRORS)
def hazard_issue_order(ctx: ServiceContext, uscc: str, hazard_ids: list, days: int, kind: str | None = None) -> dict:
    o = hazards.issue_order(ctx.session, uscc=uscc, hazard_ids=_ids(hazard_ids), days=days, kind=kind or "workdays",
                            instance_id=ctx.instance_id, task_key=ctx.task_guid, now=ctx.now)
    return hazards.OrderView.of(o).to_dict()


@registry.register("hazard.serve_order",
                   params=[Param("order_id", "int"), Param("served_at", "str", required=False)],
                   description="The order was served: the deadline runs from the day of service.", errors=ERRORS)
def hazard_serve_order(ctx: ServiceContext, order_id: int, served_at: str | None = None) -> dict:
    o = hazards.serve_order(ctx.session, order_id, ctx.now, parse_when(served_at, ctx.now, "served_at"))
    return hazards.OrderView.of(o).to_dict()


@registry.register("hazard.report_rectified",
                   params=[Param("order_id", "int"), Param("note", "str", required=False)],
                   description="The party reports the fix (flagged when before the order was served).", errors=ERRORS)
def hazard_report_rectified(ctx: ServiceContext, order_id: int, note: str | None = None) -> dict:
    return hazards.OrderView.of(hazards.report_rectified(ctx.session, order_id, ctx.now, note)).to_dict()


@registry.register("hazard.record_reinspection",
                   params=[Param("order_id", "int"), Param("outcome", "str"),
                           Param("officers", "list", required=False, description="the two re-inspecting officers")],
                   description="Record a re-inspection outcome (two different officers).", errors=ERRORS)
def hazard_record_reinspection(ctx: ServiceContext, order_id: int, outcome: str, officers: list | None = None) -> dict:
    o = hazards.record_reinspection(ctx.session, order_id, outcome, ctx.now, officers)
    return hazards.OrderView.of(o).to_dict()


@registry.register("hazard.extend_order", params=[Param("order_id", "int"), Param("days", "int")],
                   description="The one extension of an order (more days from the current deadline).", errors=ERRORS)
def hazard_extend_order(ctx: ServiceContext, order_id: int, days: int) -> dict:
    return hazards.OrderView.of(hazards.extend_order(ctx.session, order_id, days, ctx.now)).to_dict()


@registry.register("hazard.escalate_order",
                   params=[Param("order_id", "int"), Param("reason", "str", required=False)],
                   description="Not fixed: escalate; the order's open hazards owe a case lead.", errors=ERRORS)
def hazard_escalate_order(ctx: ServiceContext, order_id: int, reason: str | None = None) -> dict:
    return hazards.OrderView.of(hazards.escalate_order(ctx.session, order_id, ctx.now, reason or "not_fixed")).to_dict()


@registry.register("hazard.verify_rectification",
                   params=[Param("hazard_ids", "list"), Param("order_id", "int", required=False),
                           Param("source", "str", required=False)],
                   description="Mark hazards rectification_verified.", errors=ERRORS)
def hazard_verify(ctx: ServiceContext, hazard_ids: list, order_id: int | None = None,
                  source: str | None = None) -> dict:
    rows = hazards.verify_rectification(ctx.session, _ids(hazard_ids), ctx.now, source=source or "reinspection",
                                        order_id=order_id)
    return {"hazard_ids": [h.id for h in rows], "statuses": [h.status for h in rows]}


@registry.register("hazard.remove", params=[Param("hazard_ids", "list")],
                   description="Remove hazards: only when rectification is verified AND every case is closed.",
                   errors=ERRORS)
def hazard_remove(ctx: ServiceContext, hazard_ids: list) -> dict:
    rows = hazards.remove_hazards(ctx.session, _ids(hazard_ids), ctx.now)
    return {"hazard_ids": [h.id for h in rows], "statuses": [h.status for h in rows]}


@registry.register("hazard.close_for_entity",
                   params=[Param("uscc", "str"),
                           Param("reason", "str",
                                 description="e.g. status_deregistered, status_revoked, status_moved_out")],
                   description="The entity ceased to exist: close its hazards (closed_other), orders and cases.",
                   errors=ERRORS)
def hazard_close_for_entity(ctx: ServiceContext, uscc: str, reason: str) -> dict:
    return hazards.close_for_entity(ctx.session, uscc, reason, ctx.now)
