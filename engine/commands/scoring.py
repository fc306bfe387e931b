"""Scoring commands: an entity's score now, and a what-if score of a set of factors (see :mod:`engine.commands`).
Nothing is stored. The risk model (scikit-learn) is imported when a score is first asked for, so that the
edges start without it (about 3 s)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import policy
from engine.errors import FormValidationError, InvalidInput, NotFound
from engine.policy import Actor
from scoring.factors import MODEL_INPUTS
from scoring.models import Entity

#: the factors a what-if score accepts: the model's inputs and the two list flags
WHAT_IF_FACTORS = frozenset(MODEL_INPUTS) | {"serious_list", "abnormal_list"}


@dataclass(frozen=True)
class EntityScore:
    entity: Entity
    score: float
    risk_class: str
    reasons: list
    model_version: str


def entity_score(session: Session, actor: Actor, uscc: str) -> EntityScore:
    """Score the registered entity ``uscc`` with the active model, for a reader of its district."""
    from scoring.service import score_entity  # noqa: PLC0415  (scikit-learn: see the module's docstring)

    key = policy.normalise_key(uscc[:40])
    entity = session.scalar(select(Entity).where(Entity.uscc == key))
    if entity is None:
        raise NotFound.fmt("No entity with the USCC {uscc} is registered.", uscc=key)
    policy.check_entity(actor, entity.uscc, entity.district, policy.SCORE_READERS)
    res = score_entity(session, entity.id, record=False)
    return EntityScore(entity, res.score, res.risk_class, res.reasons, res.model_version)


def what_if(session: Session, actor: Actor, factors: Any) -> dict:
    """Score a set of factors with the active model: ``{"score", "risk_class", "reasons", "model_version"}``.
    The factors must be exactly the model's inputs (the list flags optional)."""
    from scoring.registry import load_active  # noqa: PLC0415  (scikit-learn: see the module's docstring)
    from scoring.service import class_config  # noqa: PLC0415  (scikit-learn: see the module's docstring)

    policy.check_roles(actor, policy.WHAT_IF_SCORERS)
    if not isinstance(factors, dict):
        raise InvalidInput.fmt("“factors” is required: an object of the factor values.", details={"field": "factors"})
    unknown = sorted(set(factors) - WHAT_IF_FACTORS)
    missing = sorted(set(MODEL_INPUTS) - set(factors))
    if unknown or missing:
        errors = {k: "unknown factor" for k in unknown} | {k: "required" for k in missing}
        raise FormValidationError.fmt("The factors are not complete or not known: {names}.",
                                      names=", ".join(unknown + missing), details={"field_errors": errors})
    version, model = load_active(session)
    score, klass, reasons = model.score_one(dict(factors), entity_id="request", config=class_config())
    return {"score": round(score, 6), "risk_class": klass, "reasons": reasons, "model_version": version}
