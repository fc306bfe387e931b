"""Hazard-registry commands: settle a stranded rectification order or enforcement case — one whose process an
administrator terminated — with a reason (see :mod:`engine.commands`). Supervisors, within their jurisdiction
(:func:`engine.policy.check_stranded`); the change and its audit event are the registry's
(:func:`engine.supervision.hazards.close_stranded_order`,
:func:`engine.supervision.enforcement.terminate_stranded_case`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine import policy
from engine.errors import InvalidInput, NotFound
from engine.policy import Actor
from engine.runtime import clock
from engine.supervision import enforcement
from engine.supervision import hazards as hazard_registry
from engine.supervision.loop_models import EnforcementCase, RectificationOrder

_MODELS = {"order": RectificationOrder, "case": EnforcementCase}
_SETTLE = {"order": hazard_registry.close_stranded_order, "case": enforcement.terminate_stranded_case}


def settle_stranded(session: Session, actor: Actor, kind: str, item_id: int, reason: Any,
                    now: datetime | None = None) -> dict:
    """Close the stranded order ``item_id`` (``kind="order"``: it ends ``closed_other`` with its hazards that no
    other open order or case covers) or terminate the stranded case (``kind="case"``), with the reason. What it
    did, as the registry reports it. 404, 403 (role, jurisdiction), 400 (reason), 409 (settled, process runs)."""
    if kind not in policy.STRANDED_KINDS:
        raise InvalidInput.fmt("The kind must be one of {values}, not {value}.",
                               values=", ".join(policy.STRANDED_KINDS), value=repr(kind)[:40])
    item = session.get(_MODELS[kind], item_id)
    if item is None:
        if kind == "order":
            raise NotFound.fmt("Rectification order {id} does not exist.", id=item_id)
        raise NotFound.fmt("Enforcement case {id} does not exist.", id=item_id)
    policy.check_stranded(session, actor, kind, item_id, item.uscc)
    return _SETTLE[kind](session, item_id, reason=reason if isinstance(reason, str) else "", actor=actor.username,
                         now=now or clock.now())
