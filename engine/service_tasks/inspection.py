"""``campaign.*`` (plan, launch, progress, close) and ``inspection.*`` (joint check with merged checklist,
result code) as BPMN service tasks. Domain logic: engine.supervision.inspection."""
from __future__ import annotations

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime.services import Param, ServiceContext, registry
from engine.supervision import inspection

ERRORS = {InvalidInput: "invalid_inspection_request", NotFound: "inspection_not_found",
          Conflict: "inspection_conflict"}


@registry.register(
    "campaign.create",
    params=[Param("plan", "dict", description="the campaign_plan form's data"),
            Param("public_value", "str", description="the public randomness value recorded at approval")],
    description="The approved plan as an approved campaign (idempotent per instance).", errors=ERRORS)
def campaign_create(ctx: ServiceContext, plan: dict, public_value: str) -> dict:
    c = inspection.create_campaign_from_plan(ctx.session, plan, instance_id=ctx.instance_id, approver=ctx.actor,
                                             public_value=public_value, now=ctx.now)
    return inspection.campaign_doc(c)


@registry.register(
    "campaign.launch_inspections", params=[Param("campaign_id", "int")],
    description="Start one entity_inspection instance per drawn entity (parent = this instance).", errors=ERRORS)
def campaign_launch(ctx: ServiceContext, campaign_id: int) -> dict:
    return inspection.launch_inspections(ctx.session, campaign_id, parent_instance_id=ctx.instance_id,
                                         now=ctx.now, runtime=ctx.runtime)


@registry.register(
    "campaign.progress", params=[],
    description="This campaign's child inspections: started, completed, open, all_ended (from the database).",
    writes=False)
def campaign_progress(ctx: ServiceContext) -> dict:
    return inspection.campaign_progress(ctx.session, ctx.instance_id)


@registry.register("campaign.close", params=[Param("campaign_id", "int")],
                   description="Close the campaign.", errors=ERRORS)
def campaign_close(ctx: ServiceContext, campaign_id: int) -> dict:
    return inspection.close_campaign(ctx.session, campaign_id)


@registry.register(
    "inspection.prepare",
    params=[Param("entity_id", "int"), Param("campaign_id", "int", required=False),
            Param("items", "list", required=False, description="check item codes"),
            Param("depth", "str", required=False, description="core | full (from route_by_risk)")],
    description="The joint check: items of every overlapping campaign, skills, merged checklist field.",
    errors=ERRORS, writes=False, instance_row=False)
def inspection_prepare(ctx: ServiceContext, entity_id: int, campaign_id: int | None = None,
                       items: list | None = None, depth: str | None = None) -> dict:
    return inspection.prepare_joint_check(ctx.session, entity_id=entity_id, campaign_id=campaign_id,
                                          items=list(items or []), depth=depth or "full")


@registry.register(
    "inspection.record_result",
    params=[Param("uscc", "str"), Param("result_code", "str", description="result_1, result_A, result_6 …"),
            Param("entity_id", "int", required=False), Param("findings", "list", required=False)],
    description="Classify the result code into its branch (no_problem, problem, abnormal_list, …).",
    errors=ERRORS)
def inspection_record_result(ctx: ServiceContext, uscc: str, result_code: str, entity_id: int | None = None,
                             findings: list | None = None) -> dict:
    return inspection.record_result(ctx.session, uscc=uscc, entity_id=entity_id, result_code=result_code,
                                    findings=findings, now=ctx.now, actor=ctx.actor, instance_id=ctx.instance_id,
                                    events=ctx.events)


@registry.register(
    "inspection.list_abnormal",
    params=[Param("entity_id", "int"), Param("reason", "str", description="why (recorded in the audit log)")],
    description="Put the entity on the abnormal operations list (result B: order to publicise not complied "
                "with; result 6: registered letters unsigned).",
    errors=ERRORS)
def inspection_list_abnormal(ctx: ServiceContext, entity_id: int, reason: str) -> dict:
    return inspection.list_abnormal(ctx.session, entity_id=entity_id, reason=reason, now=ctx.now, actor=ctx.actor,
                                    instance_id=ctx.instance_id, events=ctx.events)


@registry.register(
    "inspection.entity_gone",
    params=[Param("uscc", "str"),
            Param("reason", "str",
                  description="status_deregistered | status_revoked | status_cancelled | status_moved_out")],
    description="The entity ceased to exist mid-inspection: close its hazards, orders and cases with the reason; "
                "the result code for the reason (result_9-12) and today's date.", errors=ERRORS)
def inspection_entity_gone(ctx: ServiceContext, uscc: str, reason: str) -> dict:
    return inspection.entity_gone(ctx.session, uscc=uscc, reason=reason, now=ctx.now)


@registry.register(
    "inspection.joint_visit",
    params=[Param("uscc", "str"), Param("lead_campaign_id", "int")],
    description="Whether the lead campaign of a joint check has published this entity's result (done, result_code).",
    errors=ERRORS)
def inspection_joint_visit(ctx: ServiceContext, uscc: str, lead_campaign_id: int) -> dict:
    return inspection.joint_visit_status(ctx.session, uscc=uscc, lead_campaign_id=lead_campaign_id)
