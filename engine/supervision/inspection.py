"""Inspections: the campaign's plan -> campaign row, the joint check with its merged checklist, result
codes and their branches, launching one ``entity_inspection`` instance per drawn entity and counting
their completion through the database (the campaign and inspection steps of the supervision loop: plan,
approval, draw, publication of the plan, launch, joint check, visit, result).

Launching: ``campaign.launch_inspections`` starts the children from inside the campaign's service task
with :meth:`Runtime.start_many` (one separate instance per drawn entity, ``parent_instance_id`` = the
campaign's instance) in the campaign step's transaction, through the runtime running that step
(``ServiceContext.runtime``: its settings, e.g. ``parallel_start_from``, apply); a direct call passes its
runtime. The campaign then waits for its children with a daily timer loop over :func:`campaign_progress` —
never by holding thousands of children in its own state.

Result codes are the real system's codes prefixed ``result_`` (``result_1``, ``result_A``, ``result_6``)
so they cannot be read as credit risk classes.
"""
from __future__ import annotations

import json
import logging
import math
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import txcache
from engine.db import chunks
from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import clock
from engine.runtime.models import ProcessInstance
from forms.checklist import merge_checklist
from scoring.errors import ScoringError
from scoring.models import Entity

from . import draw as drawing
from . import hazards, lists, teams
from .calendar import SHANGHAI
from .campaign_models import Campaign
from .draw import drawn_entities, joint_check_for, prefetch_joint_checks
from .loop_models import Publication
from .registries import items_for, required_skills
from .registry_models import CheckItem, Inspector
from .transfer_models import TRANSFER_KINDS

log = logging.getLogger(__name__)

#: result code -> outcome branch of entity_inspection (the branch its process takes after the visit; the process
#: branches on the result's ``consequence``, which differs from the outcome for a suspended entity's result_6 and for
#: result_12, closed for us but notified to the new jurisdiction by a transfer)
RESULT_OUTCOMES: dict[str, str] = {
    "result_1": "no_problem",
    "result_A": "problem", "result_E": "problem", "result_3": "problem", "result_4": "problem",
    # a violation another authority handles: transferred (移送) with a receipt instead of our own rectification
    "result_5": "transfer", "result_G": "transfer",
    "result_B": "order_to_publicise",   # info not publicised: order to publicise (missed -> abnormal list)
    "result_C": "abnormal_list",        # false information: abnormal list directly
    "result_6": "registered_letter",    # unreachable at the address: registered letter, unsigned -> abnormal list
    "result_8": "uncooperative",        # publicise non-cooperation, case lead
    "result_7": "close", "result_9": "close", "result_10": "close", "result_11": "close",
    "result_12": "close", "result_F": "close",
}
#: result code prefix of a listing reason -> the list registry's reason code (:data:`engine.supervision.lists.REASONS`)
LISTING_REASONS = {"result_B": "info_not_publicised", "result_6": "unreachable", "result_C": "false_information"}
#: codes whose inspection found a problem (the hit rate's numerator): the ones we rectify, and the violations
#: transferred to the authority whose they are (result_5: another department; result_G: the police)
PROBLEM_CODES = tuple(c for c, o in RESULT_OUTCOMES.items() if o in ("problem", "transfer"))
#: result code -> the transfer (移送) it leads to: its kind (:data:`transfer_models.TRANSFER_KINDS`, which names the
#: receiving authority and the code) — result_12 (moved out) notifies the new jurisdiction
TRANSFER_OF_RESULT: dict[str, str] = {f"result_{code}": kind for kind, (_, code) in TRANSFER_KINDS.items() if code}
#: codes recording a violation of the inspected items: the problems, and the publicity violations "B"
#: (information not publicised) and "C" (false information), which take their own branches
VIOLATION_CODES = PROBLEM_CODES + ("result_B", "result_C")
#: the reason an entity ceased to exist (message ``entity_deregistered``) -> its result code
GONE_CODES: dict[str, str] = {"status_deregistered": "result_9", "status_revoked": "result_10",
                              "status_cancelled": "result_11", "status_moved_out": "result_12"}
#: clauses per item on the "core" checklist depth (the "full" depth takes every clause)
CORE_CLAUSES_PER_ITEM = 2


# ------------------------------------------------------------------------------------------- the campaign
def _percent(value, what: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} {value!r} is not a number") from None
    if not 0 <= v <= 100:
        raise InvalidInput(f"{what} {value!r} is not a percentage")
    return f"{v / 100:.6f}".rstrip("0").rstrip(".") or "0"


def _jurisdiction_prefix(code: str | None) -> list[str] | None:
    """A 6-digit division code as a district prefix: 410100 (a city) -> 4101, 410000 -> 41."""
    if not code:
        return None
    code = str(code)
    while code.endswith("00") and len(code) > 2:
        code = code[:-2]
    return [code]


def create_campaign_from_plan(session: Session, plan: dict, *, instance_id: int, approver: str,
                              public_value: str, now: datetime):
    """The approved plan (campaign_plan + plan_approval forms) as an approved campaign row. Idempotent per
    instance: the campaign's code is derived from the instance."""
    code = f"CAMP-{plan.get('year') or now.year}-{instance_id:06d}"
    existing = session.scalars(select(Campaign).where(Campaign.code == code)).first()
    if existing is not None:
        return existing
    items = [str(r["item_code"]) for r in plan.get("items") or []]
    departments = [plan.get("lead_department") or ""]
    if plan.get("joint_check"):
        departments += [d.strip() for d in str(plan.get("joint_departments") or "").splitlines() if d.strip()]
    departments += [str(r["department"]) for r in plan.get("items") or [] if r.get("department")]
    departments = list(dict.fromkeys(d for d in departments if d))
    ratios = {c: _percent(plan.get(f"ratio_{c.lower()}"), f"ratio of class {c}") for c in "ABCD"}
    c = drawing.create_campaign(
        session, code=code, name=str(plan.get("name") or code), departments=departments, items=items,
        window_start=date.fromisoformat(str(plan["window_start"])[:10]),
        window_end=date.fromisoformat(str(plan["window_end"])[:10]), created_by=approver, now=now,
        ratios=ratios, control_share=_percent(plan.get("control_share", 10), "control share"),
        capacity=plan.get("capacity"), jurisdiction=_jurisdiction_prefix(plan.get("jurisdiction")),
        lookback_months=int(plan.get("lookback_months") or 0))
    drawing.approve_campaign(session, c.id, approver=approver, now=now, public_value=public_value)
    session.flush()
    return c


def campaign_doc(c) -> dict:
    return {"campaign_id": c.id, "code": c.code, "name": c.name, "status": c.status, "items": list(c.items),
            "departments": list(c.departments), "window_start": c.window_start.isoformat(),
            "window_end": c.window_end.isoformat(), "public_value": c.public_value}


def workload_cap_for(session: Session, drawn: int, team_size: int = 3) -> int:
    """Open assignments an officer may carry in this campaign: enough for the drawn entities to be staffed
    by the active pool when every inspection starts at once (at least the registry default of 5)."""
    officers = session.scalar(select(func.count()).select_from(Inspector).where(Inspector.active.is_(True))) or 1
    leaders = session.scalar(select(func.count()).select_from(Inspector).where(
        Inspector.active.is_(True), Inspector.leader_eligible.is_(True))) or 1
    return max(5, math.ceil(team_size * drawn / officers) + 2, math.ceil(1.3 * drawn / leaders) + 2)


def launch_inspections(session: Session, campaign_id: int, *, parent_instance_id: int, now: datetime,
                       runtime) -> dict:
    """Start one ``entity_inspection`` per drawn entity (business key = USCC), linked to the campaign's
    instance, with ``runtime`` (the one running the campaign's step). Idempotent: entities that already have
    a child instance are skipped."""
    c = session.get(Campaign, campaign_id)
    if c is None:
        raise NotFound(f"campaign {campaign_id} not found")
    if c.status not in ("drawn", "published"):
        raise Conflict(f"campaign {c.code} is {c.status}; only a drawn campaign launches inspections")
    rows = drawn_entities(session, campaign_id)
    started = set(session.scalars(select(ProcessInstance.business_key).where(
        ProcessInstance.parent_instance_id == parent_instance_id)))
    cap = workload_cap_for(session, len(rows))
    items = [{"business_key": r.uscc,
              "data": {"uscc": r.uscc, "entity_id": r.entity_id, "campaign_id": campaign_id,
                       "items": list(c.items), "stratum": r.stratum, "campaign_seed": c.seed or "",
                       "workload_cap": cap}}
             for r in rows if r.uscc not in started]
    if items:
        entity_ids = [it["data"]["entity_id"] for it in items]
        _prefetch_for_launch(session, entity_ids)
        _prefetch_checklists(session, campaign_id, list(c.items), entity_ids)
    outcomes = runtime.start_many(session, "entity_inspection", items, parent_instance_id=parent_instance_id) \
        if items else []
    c.status = "published"
    session.flush()
    return {"campaign_id": campaign_id, "launched": len(outcomes), "already_started": len(started),
            "total": len(rows), "workload_cap": cap}


def _prefetch_for_launch(session: Session, entity_ids: list[int]) -> None:
    """Every child reads its entity (risk.score, team.form), scores it and forms a team: read those rows in
    batches now, score them in one matrix, and keep all of it for the transaction, instead of one query and
    one model call per child and step."""
    # deferred: scoring.service loads numpy and scikit-learn; the runtime imports this module when it is built
    # and loads them only when a campaign launches or an instance scores (as risk.score does)
    from scoring.service import prefetch_scores  # noqa: PLC0415  (scikit-learn: see above)

    entities = []
    for chunk in chunks(entity_ids):
        entities.extend(session.scalars(select(Entity).where(Entity.id.in_(chunk))))
    txcache.hold(session, entities)
    teams.prefetch(session, entities)
    prefetch_joint_checks(session, entity_ids)
    try:
        prefetch_scores(session, entities)
    except ScoringError as exc:  # no active model, say: each child's risk.score reports it (incident) itself
        log.warning("batch scoring before the launch: %s; every instance scores on its own", exc)


def campaign_progress(session: Session, parent_instance_id: int) -> dict:
    """How the campaign's child inspections stand, read from the database."""
    counts = dict(session.execute(select(ProcessInstance.status, func.count())
                                  .where(ProcessInstance.parent_instance_id == parent_instance_id)
                                  .group_by(ProcessInstance.status)).all())
    started = sum(counts.values())
    completed = counts.get("completed", 0)
    ended = completed + counts.get("terminated", 0)
    return {"started": started, "completed": completed, "terminated": counts.get("terminated", 0),
            "open": started - ended, "all_ended": started > 0 and started == ended}


def close_campaign(session: Session, campaign_id: int) -> dict:
    c = session.get(Campaign, campaign_id)
    if c is None:
        raise NotFound(f"campaign {campaign_id} not found")
    c.status = "closed"
    session.flush()
    return campaign_doc(c)


# ------------------------------------------------------------------------------------ the joint check
def prepare_joint_check(session: Session, *, entity_id: int, campaign_id: int | None, items: list[str],
                        depth: str = "full") -> dict:
    """The one visit for the entity: every campaign's items whose windows overlap (joint check), the
    union of their skills and departments, and the merged checklist (``merge_checklist(...).field``)."""
    if depth not in CHECKLIST_DEPTHS:
        raise InvalidInput(f"checklist depth must be core or full, not {depth!r}")
    codes, campaigns, window = _visit(session, entity_id, campaign_id, items)
    if not codes:
        raise InvalidInput("an inspection needs at least one check item")
    merged = _merged(session, codes, depth)
    return {"items": list(merged["items"]), "skills": list(merged["skills"]),
            "departments": list(merged["departments"]), "campaign_ids": campaigns,
            "joint": len(campaigns) > 1, "is_lead": not campaigns or campaigns[0] == campaign_id,
            "window_start": window[0], "window_end": window[1], "depth": depth,
            "merged_checklist": json.loads(merged["merged_checklist"]),
            "clauses_before": merged["clauses_before"], "clauses_after": merged["clauses_after"]}


CHECKLIST_DEPTHS = ("core", "full")


def _visit(session: Session, entity_id: int, campaign_id: int | None,
           items: list[str]) -> tuple[list[str], list[int], tuple[str | None, str | None]]:
    """The visit's item codes, its campaigns and its window."""
    window = (None, None)
    campaigns = [campaign_id] if campaign_id is not None else []
    codes = [str(i) for i in items or []]
    if campaign_id is not None:
        try:
            jc = joint_check_for(session, campaign_id, entity_id)
            codes = list(dict.fromkeys(codes + jc.items))
            campaigns = jc.campaign_ids
            window = (jc.window_start.isoformat(), jc.window_end.isoformat())
        except NotFound:
            pass
    return codes, campaigns, window


def _merged(session: Session, codes: list[str], depth: str) -> dict:
    """The merged checklist of ``codes`` at ``depth``, with the items' skills and departments."""
    def merge():
        rows = items_for(session, codes)
        limit = None if depth == "full" else CORE_CLAUSES_PER_ITEM
        merged = merge_checklist([{"code": i.code, "name": i.name, "department": i.department,
                                   "clauses": list(i.clauses)[:limit]} for i in rows])
        # kept as JSON text: each caller gets its own copy by decoding it (a deep copy costs several times that)
        return {"items": [i.code for i in rows], "skills": required_skills(rows),
                "departments": sorted({i.department for i in rows}),
                "merged_checklist": json.dumps(merged.field, ensure_ascii=False),
                "clauses_before": merged.clauses_before, "clauses_after": merged.clauses_after}

    # the same items give the same merged checklist: built once per transaction (a launch builds thousands)
    return txcache.get(session, ("inspection.merged", tuple(codes), depth), (CheckItem.__tablename__,), merge)


def _prefetch_checklists(session: Session, campaign_id: int, items: list[str], entity_ids: list[int]) -> None:
    """Every merged checklist the launched children will ask for, at both depths (a few distinct ones: the
    campaign's items plus those of the campaigns each entity's visit joins). One that cannot be built (an
    unknown item) is left to the child that asks for it, which reports it."""
    seen: set[tuple[str, ...]] = set()
    for entity_id in entity_ids:
        codes, _campaigns, _window = _visit(session, entity_id, campaign_id, items)
        if codes and tuple(codes) not in seen:
            seen.add(tuple(codes))
            for depth in CHECKLIST_DEPTHS:
                try:
                    _merged(session, codes, depth)
                except NotFound as exc:
                    log.warning("merged checklist of %s before the launch: %s", ", ".join(codes), exc)


# ------------------------------------------------------------------------------------------ the result
def record_result(session: Session, *, uscc: str, entity_id: int | None, result_code: str, findings: list | None,
                  now: datetime, actor: str = "system", instance_id: int | None = None,
                  events: list | None = None) -> dict:
    """Classify a result code into its branch and apply its immediate registry consequence: result_C (false
    information) puts the entity on the abnormal operations list at once. result_6 (unreachable at the
    registered address) lists nobody here: its consequence is ``registered_letter`` — the process waits for
    the letter to be signed and lists the entity only if it is not (``list_abnormal``) — except for a
    ``suspended`` entity, which has a service address: consequence ``none (suspended, service address)``.
    Listings go through the list registry (:func:`engine.supervision.lists.enter`: reason, legal basis, audit)."""
    if result_code not in RESULT_OUTCOMES:
        raise InvalidInput(f"unknown result code {result_code!r} (expected one of {', '.join(RESULT_OUTCOMES)})")
    outcome = RESULT_OUTCOMES[result_code]
    findings = list(findings or [])
    if outcome in ("problem", "transfer") and not findings:
        raise InvalidInput(f"{result_code} found a problem but no findings were entered")
    consequence = {"no_problem": "none", "problem": "rectification", "order_to_publicise": "order_to_publicise",
                   "abnormal_list": "abnormal_list", "registered_letter": "registered_letter",
                   "uncooperative": "case_lead", "close": "close", "transfer": "transfer"}[outcome]
    transfer = None
    if result_code in TRANSFER_OF_RESULT:
        consequence, transfer = "transfer", transfer_matter(result_code, findings)
    if outcome in ("abnormal_list", "registered_letter") and entity_id is not None:
        e = session.get(Entity, entity_id)
        if e is not None and outcome == "abnormal_list":
            lists.enter(session, list_kind="abnormal", entity_id=e.id, reason_code="false_information",
                        reason=lists.REASONS["false_information"], legal_basis=lists.ABNORMAL_BASIS, now=now,
                        actor=actor, instance_id=instance_id, events=events)
        elif e is not None and e.status == "suspended":
            consequence = "none (suspended, service address)"
    return {"result_code": result_code, "outcome": outcome, "consequence": consequence,
            "problem_found": result_code in PROBLEM_CODES, "findings_count": len(findings), "transfer": transfer}


def transfer_matter(result_code: str, findings: list) -> dict:
    """What the ``transfer`` call activity of a result_5 / result_G / result_12 inspection starts with: its kind,
    the receiving authority as the result names it (the officer names the exact one in the letter), the reason
    (at most 500 characters) and the facts the letter starts from: the inspection's findings."""
    kind = TRANSFER_OF_RESULT[result_code]
    receiving = TRANSFER_KINDS[kind][0]
    lines = [f"{f.get('item_code') or ''} {f.get('clause') or ''}：{f.get('description') or ''}".strip()
             for f in findings if isinstance(f, dict)]
    why = {"other_department": "检查发现涉嫌属其他行政部门管辖的违法行为",
           "police": "检查发现涉嫌犯罪",
           "new_jurisdiction": "市场主体已迁出本辖区，通知迁入地市场监管部门"}[kind]
    reason = f"{why}（{result_code}）" + (f"：{'；'.join(lines)}" if lines else "")
    if len(reason) > 500:
        reason = reason[:499] + "…"
    facts = "\n".join(lines) if lines else why
    return {"kind": kind, "receiving": receiving, "reason": reason, "facts": facts[:5000]}


def list_abnormal(session: Session, *, entity_id: int, reason: str, now: datetime | None = None,
                  actor: str = "system", instance_id: int | None = None, events: list | None = None) -> dict:
    """Put the entity on the abnormal operations list (result B: the order to publicise was not complied
    with in time; result 6: the registered letters to its address went unsigned) through the list registry
    (:func:`engine.supervision.lists.enter`): a reason starting with the result code gets that reason's code
    (``info_not_publicised``, ``unreachable``) and its Chinese text, the given reason in brackets; an entity
    already listed for that reason keeps its entry (``already_listed``)."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("listing an entity as abnormal needs a reason")
    reason = reason.strip()
    e = session.get(Entity, entity_id)
    if e is None:
        raise NotFound(f"entity {entity_id} not found")
    code = next((c for prefix, c in LISTING_REASONS.items() if reason.startswith(prefix)), None)
    text = f"{lists.REASONS[code]}（{reason}）" if code else reason
    entry, created = lists.enter(session, list_kind="abnormal", entity_id=e.id, reason_code=code,
                                 reason=text[:lists.MAX_REASON], legal_basis=lists.ABNORMAL_BASIS,
                                 now=now or clock.now(), actor=actor, instance_id=instance_id, events=events)
    return {"entity_id": entity_id, "uscc": e.uscc, "abnormal_list": True, "already_listed": not created,
            "reason": reason, "entry_id": entry.id}


def entity_gone(session: Session, *, uscc: str, reason: str, now: datetime) -> dict:
    """The entity ceased to exist while its inspection was open: close its hazards, orders and cases with the
    reason (``hazards.close_for_entity``) and give the result code for the reason (``GONE_CODES``), dated
    today in China, for the inspection to record and publish."""
    if reason not in GONE_CODES:
        raise InvalidInput(f"unknown reason {reason!r} (expected one of {', '.join(GONE_CODES)})")
    closed = hazards.close_for_entity(session, uscc, reason, now)
    return {"reason": reason, "result_code": GONE_CODES[reason],
            "date": now.astimezone(SHANGHAI).date().isoformat(), **closed}


def joint_visit_status(session: Session, *, uscc: str, lead_campaign_id: int) -> dict:
    """Whether the lead campaign's inspection of a joint check has published its result (the joining
    campaigns' instances wait for it instead of visiting the entity again), and, while it has not, whether
    it still can: ``lead_ended`` is true when the lead's inspection of this entity ended without a result
    (an administrator terminated it) or the lead campaign ended before it inspected the entity — for a
    campaign run outside the process, when the campaign is closed. The joining instance then visits the
    entity itself; nobody else will."""
    ref = f"campaign:{lead_campaign_id}"
    pub = session.scalars(select(Publication).where(
        Publication.kind == "result", Publication.uscc == uscc,
        Publication.ref == ref).order_by(Publication.id.desc())).first()
    if pub is not None:
        return {"done": True, "lead_ended": False, "lead_campaign_id": lead_campaign_id, "publication_id": pub.id,
                "result_code": pub.payload.get("result_code"), "outcome": pub.payload.get("outcome")}
    waiting = {"done": False, "lead_ended": False, "lead_campaign_id": lead_campaign_id}
    # the lead campaign's process instance published its plan; its inspections are that instance's children
    campaign_instance = session.scalars(select(Publication.source_instance_id).where(
        Publication.kind == "plan", Publication.ref == ref).order_by(Publication.id)).first()
    if campaign_instance is None:
        # a campaign run outside the process (CLI, API): its inspections cannot be told apart, but a closed
        # campaign inspects nobody any more
        if session.scalar(select(Campaign.status).where(Campaign.id == lead_campaign_id)) == "closed":
            return {**waiting, "lead_ended": True, "lead_instance_id": None, "lead_status": "closed",
                    "reason": f"the lead campaign {lead_campaign_id} is closed without a published result"}
        return waiting
    visit = session.execute(select(ProcessInstance.id, ProcessInstance.status).where(
        ProcessInstance.parent_instance_id == campaign_instance, ProcessInstance.business_key == uscc,
        ProcessInstance.process_id == "entity_inspection").order_by(ProcessInstance.id.desc())).first()
    if visit is not None:
        if visit.status in ("running", "suspended"):
            return waiting
        return {**waiting, "lead_ended": True, "lead_instance_id": visit.id, "lead_status": visit.status,
                "reason": f"the lead campaign's inspection (instance {visit.id}) is {visit.status} "
                          "without a published result"}
    campaign_status = session.scalar(select(ProcessInstance.status).where(ProcessInstance.id == campaign_instance))
    if campaign_status in ("running", "suspended"):
        return waiting
    return {**waiting, "lead_ended": True, "lead_instance_id": None, "lead_status": campaign_status,
            "reason": f"the lead campaign (instance {campaign_instance}) is {campaign_status} and never "
                      "inspected the entity"}
