"""``risk.score``: the scoring service as a BPMN service task (entity id -> score, class, reasons, version)."""
from __future__ import annotations

from engine.runtime.services import Param, ServiceContext, registry
from scoring.errors import EntityNotFound, InvalidFactors


@registry.register(
    "risk.score",
    params=[Param("entity_id", "int", description="entity registry id (entity.id)")],
    description="Score an entity with the active risk model: score, class A-D, reasons, model version.",
    # business errors an error boundary may catch; anything else (no active model, broken model file)
    # is a technical failure: retried, then an incident
    errors={EntityNotFound: "entity_not_found", InvalidFactors: "invalid_factors"},
    instance_row=False,  # writes the entity row only
)
def risk_score(ctx: ServiceContext, entity_id: int) -> dict:
    from scoring.service import score_entity  # noqa: PLC0415  (scikit-learn loads on first use, not at start-up)

    result = score_entity(ctx.session, entity_id)
    return {"entity_id": result.entity_id, "score": result.score, "risk_class": result.risk_class,
            "reasons": result.reasons, "model_version": result.model_version}
