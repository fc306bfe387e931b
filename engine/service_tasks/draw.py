"""Campaign service operators: eligible population, stratified verifiable draw, joint check.

Each is idempotent per campaign (the population is frozen once and a draw written once), so a retried
service task returns the stored result instead of drawing again.
"""
from __future__ import annotations

from engine.runtime.services import Param, ServiceContext, registry
from engine.supervision import draw as drawing

_CAMPAIGN = Param("campaign_id", "int", description="campaign.id")


@registry.register(
    "campaign.eligible_population",
    params=[_CAMPAIGN],
    description="Freeze the campaign's eligible population (logged exclusions): counts by stratum, exclusions, "
                "population hash.",
)
def eligible_population(ctx: ServiceContext, campaign_id: int) -> dict:
    return drawing.freeze_population(ctx.session, campaign_id, ctx.now).to_dict()


@registry.register(
    "campaign.draw",
    params=[_CAMPAIGN],
    description="Stratified verifiable draw (once per campaign): counts by stratum, control count, seed, "
                "population hash.",
)
def draw(ctx: ServiceContext, campaign_id: int) -> dict:
    return drawing.draw_campaign(ctx.session, campaign_id, ctx.now).to_dict()


@registry.register(
    "campaign.joint_check",
    params=[_CAMPAIGN, Param("entity_id", "int", description="entity.id drawn by the campaign")],
    description="The one visit covering an entity drawn by this and other campaigns with overlapping windows: "
                "campaigns, lead campaign, departments, union of items, common window.",
    writes=False,
)
def joint_check(ctx: ServiceContext, campaign_id: int, entity_id: int) -> dict:
    doc = drawing.joint_check_for(ctx.session, campaign_id, entity_id).to_dict()
    doc["window_start"] = doc["window_start"].isoformat()
    doc["window_end"] = doc["window_end"].isoformat()
    doc["is_lead"] = doc["lead_campaign_id"] == campaign_id
    return doc
