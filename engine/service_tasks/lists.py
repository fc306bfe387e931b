"""``list.*``: the abnormal-operations and serious-violation lists as BPMN service tasks.

``list.enter`` lists an entity (``list`` abnormal | serious, ``entity_id``, ``reason``, ``legal_basis``, optional
``reason_code``): an entity already listed for the same reason keeps its entry (``created`` false), so a step run
again lists nothing twice. ``list.remove`` ends the entity's open entries of a list (or the one of
``reason_code``). ``list.apply`` and ``list.review`` carry a removal application through ``list_removal.bpmn``.
Domain logic: :mod:`engine.supervision.lists` and :mod:`engine.supervision.list_jobs`; each call's audit events
are handed to the step (``ctx.events``), which writes them to this instance's chain.
"""
from __future__ import annotations

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime.services import Param, ServiceContext, registry
from engine.supervision import list_jobs, lists

ERRORS = {InvalidInput: "invalid_list_request", NotFound: "list_not_found", Conflict: "list_conflict"}


@registry.register(
    "list.enter",
    params=[Param("list", "str", description="abnormal | serious"), Param("entity_id", "int"),
            Param("reason", "str", description="why, in words (public, masked)"),
            Param("legal_basis", "str", description="the provision it rests on"),
            Param("reason_code", "str", required=False,
                  description="e.g. false_information, heavy_penalty; default: the reason's text decides")],
    description="Put the entity on the abnormal or serious list (once per reason).", errors=ERRORS)
def list_enter(ctx: ServiceContext, list: str, entity_id: int, reason: str, legal_basis: str,  # noqa: A002
               reason_code: str | None = None) -> dict:
    entry, created = lists.enter(ctx.session, list_kind=list, entity_id=entity_id, reason=reason,
                                 legal_basis=legal_basis, reason_code=reason_code, now=ctx.now, actor=ctx.actor,
                                 instance_id=ctx.instance_id, events=ctx.events)
    return {"entry_id": entry.id, "list": entry.list_kind, "uscc": entry.uscc, "reason_code": entry.reason_code,
            "created": created, "entered_at": entry.entered_at.isoformat(),
            "escalates_on": entry.escalates_on.isoformat() if entry.escalates_on else None}


@registry.register(
    "list.remove",
    params=[Param("list", "str", description="abnormal | serious"), Param("entity_id", "int"),
            Param("reason", "str", description="why (public, masked)"),
            Param("removal_kind", "str", required=False, description="correction (default) | application | expiry"),
            Param("reason_code", "str", required=False, description="only the entry listed for this reason")],
    description="Take the entity off the list (its open entries, or the one of reason_code).", errors=ERRORS)
def list_remove(ctx: ServiceContext, list: str, entity_id: int, reason: str,  # noqa: A002
                removal_kind: str | None = None, reason_code: str | None = None) -> dict:
    removed = lists.remove(ctx.session, list_kind=list, entity_id=entity_id, reason=reason,
                           removal_kind=removal_kind or "correction", reason_code=reason_code, now=ctx.now,
                           actor=ctx.actor, instance_id=ctx.instance_id, events=ctx.events)
    return {"removed": [e.id for e in removed], "list": list, "entity_id": entity_id}


@registry.register(
    "list.apply",
    params=[Param("entry_id", "int"), Param("statement", "str", description="the entity's statement"),
            Param("evidence", "list", required=False, description="evidence references (ids, document numbers)"),
            Param("applicant", "str", required=False, description="who applied (default: the starter)")],
    description="Record an application for removal from a list (one pending per entry).", errors=ERRORS)
def list_apply(ctx: ServiceContext, entry_id: int, statement: str, evidence: list | None = None,
               applicant: str | None = None) -> dict:
    app = list_jobs.apply_for_removal(ctx.session, entry_id=entry_id, statement=statement,
                                      evidence=list_jobs.evidence_refs(evidence), actor=applicant or ctx.actor,
                                      now=ctx.now, instance_id=ctx.instance_id, events=ctx.events)
    return list_jobs.application_doc(app, ctx.session)


@registry.register(
    "list.review",
    params=[Param("application_id", "int"), Param("approve", "bool"),
            Param("note", "str", required=False, description="the reviewer's note (required to reject)"),
            Param("reviewer", "str", required=False, description="who reviewed (default: the step's actor)")],
    description="Approve (remove from the list) or reject a removal application; the applicant's notice.",
    errors=ERRORS)
def list_review(ctx: ServiceContext, application_id: int, approve: bool, note: str | None = None,
                reviewer: str | None = None) -> dict:
    app = list_jobs.review_application(ctx.session, application_id, approve=approve, note=note,
                                       actor=reviewer or ctx.actor, now=ctx.now, instance_id=ctx.instance_id,
                                       events=ctx.events)
    return list_jobs.application_doc(app, ctx.session)
