"""``case.*``: enforcement cases as BPMN service tasks (the ``enforcement`` process).

``case.open`` is keyed by (instance, task); the others are idempotent state changes. The safeguards before a
decision (``case.record_review``, ``case.hold_evidence``/``decide_hold``/``hold_overdue``) and the summary
procedure (``case.decide_summary``) are in :mod:`engine.supervision.case_safeguards`. Refusals are BPMN
errors: ``invalid_case_request``, ``case_not_found``, ``case_conflict`` (e.g. deciding an unfiled case).
"""
from __future__ import annotations

from datetime import timedelta

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime.services import Param, ServiceContext, registry
from engine.runtime.timers import move_waiting_timers
from engine.supervision import case_clock, case_safeguards, enforcement
from engine.supervision.publication import penalty_is_published

from .hazards import parse_when

ERRORS = {InvalidInput: "invalid_case_request", NotFound: "case_not_found", Conflict: "case_conflict"}


def _out(ctx: ServiceContext, c) -> dict:
    return enforcement.case_dict(ctx.session, c)


@registry.register(
    "case.open",
    params=[Param("uscc", "str"),
            Param("lead_source", "str",
                  description="inspection | reinspection | report | complaint | transfer | monitoring"),
            Param("hazard_ids", "list", required=False, description="hazards the case is about (they wait for it)"),
            Param("entity_id", "int", required=False), Param("summary", "str", required=False)],
    description="Open a case lead for an entity, linked to its hazards.", errors=ERRORS)
def case_open(ctx: ServiceContext, uscc: str, lead_source: str, hazard_ids: list | None = None,
              entity_id: int | None = None, summary: str | None = None) -> dict:
    c = enforcement.open_case(ctx.session, uscc=uscc, lead_source=lead_source, hazard_ids=hazard_ids or [],
                              entity_id=entity_id, summary=summary, instance_id=ctx.instance_id,
                              task_key=ctx.task_guid, now=ctx.now)
    return _out(ctx, c)


@registry.register(
    "case.file",
    params=[Param("case_id", "int"), Param("case_number", "str", required=False),
            Param("filing_date", "str", required=False, description="YYYY-MM-DD (default today)"),
            Param("reminder_days", "int", required=False,
                  description="reminder this many days before the due date (10)")],
    description="File the case: decision due 90 days after filing, reminder before it.", errors=ERRORS)
def case_file(ctx: ServiceContext, case_id: int, case_number: str | None = None, filing_date: str | None = None,
              reminder_days: int | None = None) -> dict:
    c = enforcement.file_case(ctx.session, case_id, ctx.now, case_number=case_number or None,
                              filed_at=parse_when(filing_date, ctx.now, "filing_date"),
                              reminder_days=(enforcement.DEFAULT_REMINDER_DAYS if reminder_days is None
                                             else reminder_days))
    return _out(ctx, c)


@registry.register("case.remind", params=[Param("case_id", "int")],
                   description="Record that the decision deadline reminder went out.", errors=ERRORS)
def case_remind(ctx: ServiceContext, case_id: int) -> dict:
    return _out(ctx, enforcement.record_reminder(ctx.session, case_id, ctx.now))


@registry.register("case.escalate", params=[Param("case_id", "int")],
                   description="Record that the 90-day decision deadline passed and a supervisor was called.",
                   errors=ERRORS)
def case_escalate(ctx: ServiceContext, case_id: int) -> dict:
    return _out(ctx, enforcement.record_escalation(ctx.session, case_id, ctx.now))


@registry.register(
    "case.decide",
    params=[Param("case_id", "int"), Param("decision_type", "str"), Param("penalties", "list", required=False),
            Param("fine", "number", required=False), Param("decision_date", "str", required=False)],
    description="Record the decision; says whether it must be published (warnings alone are not).",
    errors=ERRORS)
def case_decide(ctx: ServiceContext, case_id: int, decision_type: str, penalties: list | None = None,
                fine: float | None = None, decision_date: str | None = None) -> dict:
    c = enforcement.decide_case(ctx.session, case_id, decision_type, ctx.now, penalties=penalties, fine=fine,
                                decided_at=parse_when(decision_date, ctx.now, "decision_date"))
    return {**_out(ctx, c), "publish": penalty_is_published(c.decision_type, c.penalties)}


@registry.register(
    "case.close",
    params=[Param("case_id", "int"), Param("reason", "str"),
            Param("rectification_verified", "bool", required=False,
                  description="the closing report verifies the rectification of the case's hazards")],
    description="Close the case (not_filed if never filed); hazards may then be removed.", errors=ERRORS)
def case_close(ctx: ServiceContext, case_id: int, reason: str, rectification_verified: bool | None = None) -> dict:
    c = enforcement.close_case(ctx.session, case_id, reason, ctx.now, bool(rectification_verified))
    return _out(ctx, c)


# ------------------------------------------------------------------------------------------- the clock
#: the timers of the enforcement process that follow the decision clock
CLOCK_TIMERS = ("decision_reminder", "decision_overdue")
#: while the clock stands still its timers wait this long (they are set again when it resumes)
PAUSED_HORIZON = timedelta(days=3650)


def _clock_out(ctx: ServiceContext, c) -> dict:
    """The case after a change of its clock, with the clock's timers moved to follow it."""
    state = case_clock.clock_state(c, ctx.now)
    if state["paused"]:
        times = {name: c.decision_due + PAUSED_HORIZON for name in CLOCK_TIMERS}
    else:
        times = {"decision_reminder": c.decision_reminder_at, "decision_overdue": c.decision_due}
    moved = move_waiting_timers(ctx.task, times) if ctx.task is not None else []
    return {**_out(ctx, c), "timers_moved": [m["bpmn_id"] for m in moved]}


@registry.register(
    "case.clock_pause",
    params=[Param("case_id", "int"),
            Param("reason", "str", description="hearing | testing | expert_assessment | public_notice"),
            Param("on", "str", required=False, description="YYYY-MM-DD the pause begins (default today)")],
    description="Stop the 90-day decision clock (time that does not count); the reminder and the escalation wait.",
    errors=ERRORS)
def case_clock_pause(ctx: ServiceContext, case_id: int, reason: str, on: str | None = None) -> dict:
    c = enforcement.get_case(ctx.session, case_id)
    case_clock.pause(ctx.session, c, reason, parse_when(on, ctx.now, "on"), ctx.now)
    return _clock_out(ctx, c)


@registry.register(
    "case.clock_resume",
    params=[Param("case_id", "int"),
            Param("on", "str", required=False, description="YYYY-MM-DD the clock runs again (default today)")],
    description="Let the decision clock run again: the paused days move the due date, the reminder and the "
                "escalation follow.", errors=ERRORS)
def case_clock_resume(ctx: ServiceContext, case_id: int, on: str | None = None) -> dict:
    c = enforcement.get_case(ctx.session, case_id)
    case_clock.resume(ctx.session, c, parse_when(on, ctx.now, "on"), ctx.now)
    return _clock_out(ctx, c)


@registry.register(
    "case.extend_decision",
    params=[Param("case_id", "int"), Param("approval", "str", description="head (the first) | collective"),
            Param("approved_by", "str"), Param("days", "int", required=False, description="30 by default")],
    description="Extend the time for the decision: 30 days approved by the head, further ones by a collective "
                "decision.", errors=ERRORS)
def case_extend_decision(ctx: ServiceContext, case_id: int, approval: str, approved_by: str,
                         days: int | None = None) -> dict:
    c = enforcement.get_case(ctx.session, case_id)
    case_clock.extend(ctx.session, c, approval, approved_by, ctx.now,
                      days=case_clock.EXTENSION_DAYS if days is None else days)
    return _clock_out(ctx, c)


@registry.register(
    "case.record_execution",
    params=[Param("case_id", "int"), Param("status", "str", description="the execution form's status"),
            Param("amount_paid", "number", required=False),
            Param("served_at", "str", required=False, description="when the decision was served (ISO)"),
            Param("paid_on", "str", required=False, description="YYYY-MM-DD the fine was paid")],
    description="Record the execution of the decision; a fine paid after its 15 days owes 3 % of it a day, at "
                "most the fine (computed here, not typed in).", errors=ERRORS)
def case_record_execution(ctx: ServiceContext, case_id: int, status: str, amount_paid: float | None = None,
                          served_at: str | None = None, paid_on: str | None = None) -> dict:
    c = enforcement.get_case(ctx.session, case_id)
    served = parse_when(served_at, ctx.now, "served_at") if served_at else None
    paid = parse_when(paid_on, ctx.now, "paid_on") if paid_on else None
    return case_clock.record_payment(ctx.session, c, status=status, amount_paid=amount_paid, served_at=served,
                                     paid_at=paid, now=ctx.now)


# ------------------------------------------------------------------------------- safeguards before a decision
@registry.register(
    "case.record_review",
    params=[Param("case_id", "int"),
            Param("kind", "str", description="legal_review | collective_deliberation"),
            Param("outcome", "str", description="agree | supplement | disagree"),
            Param("opinion", "str", description="the reviewer's opinion and reasons"),
            Param("basis", "str", required=False, description="why the rule required the review")],
    description="Record a legal review or a collective deliberation in the case's history (who: the person who "
                "completed the review task).", errors=ERRORS)
def case_record_review(ctx: ServiceContext, case_id: int, kind: str, outcome: str, opinion: str,
                       basis: str | None = None) -> dict:
    return case_safeguards.record_review(ctx.session, case_id, kind, outcome, opinion=opinion, reviewer=ctx.actor,
                                         now=ctx.now, basis=basis)


@registry.register(
    "case.hold_evidence",
    params=[Param("case_id", "int"), Param("items", "str", description="what is held"),
            Param("held_on", "str", required=False, description="YYYY-MM-DD (default today)")],
    description="Record evidence registered and held (先行登记保存): decided within 7 working days (decide_by).",
    errors=ERRORS)
def case_hold_evidence(ctx: ServiceContext, case_id: int, items: str, held_on: str | None = None) -> dict:
    return case_safeguards.hold_evidence(ctx.session, case_id, items=items,
                                         held_on=parse_when(held_on, ctx.now, "held_on"), now=ctx.now)


@registry.register(
    "case.decide_hold",
    params=[Param("case_id", "int"),
            Param("decision", "str",
                  description="preserve_record | send_for_testing | seize | confiscate | release"),
            Param("decided_on", "str", required=False, description="YYYY-MM-DD (default today)"),
            Param("note", "str", required=False)],
    description="Record the decision on the evidence held and whether it came within the 7 working days.",
    errors=ERRORS)
def case_decide_hold(ctx: ServiceContext, case_id: int, decision: str, decided_on: str | None = None,
                     note: str | None = None) -> dict:
    return case_safeguards.decide_hold(ctx.session, case_id, decision,
                                       decided_on=parse_when(decided_on, ctx.now, "decided_on"), note=note or "",
                                       now=ctx.now)


@registry.register("case.hold_overdue", params=[Param("case_id", "int")],
                   description="Record that the 7 working days for the evidence held passed without a decision.",
                   errors=ERRORS)
def case_hold_overdue(ctx: ServiceContext, case_id: int) -> dict:
    return case_safeguards.record_hold_overdue(ctx.session, case_id, ctx.now)


@registry.register(
    "case.decide_summary",
    params=[Param("case_id", "int"), Param("penalties", "list", description="warning and/or fine"),
            Param("fine", "number", required=False), Param("decision_number", "str"),
            Param("decided_at", "str", required=False, description="when it was handed over (ISO; default now)")],
    description="Record a penalty decided on the spot (summary procedure): no filing, no decision clock.",
    errors=ERRORS)
def case_decide_summary(ctx: ServiceContext, case_id: int, penalties: list, decision_number: str,
                        fine: float | None = None, decided_at: str | None = None) -> dict:
    c = case_safeguards.decide_summary(ctx.session, case_id, penalties=list(penalties), fine=fine,
                                       decision_number=decision_number,
                                       decided_at=parse_when(decided_at, ctx.now, "decided_at"), now=ctx.now)
    return _out(ctx, c)
