"""What the hazard registry's rows share (hazards, rectification orders and enforcement cases): the
entries appended to their ``history``, and the ways a row ends without the process that followed it — the
process was terminated (:func:`process_terminated`), a supervisor closes it by hand (:func:`supervisor_reason`,
:func:`require_terminated_process`) or the entity ceased to exist (:func:`terminate_for_entity` for cases).

Both :mod:`engine.supervision.hazards` and :mod:`engine.supervision.enforcement` import this module; it
imports neither.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput
from engine.runtime.models import ProcessInstance

from .loop_models import CASE_DONE, EnforcementCase


def append_history(row, now: datetime, event: str, **detail: Any) -> None:
    """Append ``{"at", "event", **detail}`` (details that are ``None`` left out) to the row's history."""
    row.history = [*(row.history or []), {"at": now.isoformat(), "event": event,
                                          **{k: v for k, v in detail.items() if v is not None}}]


def process_terminated(row, now: datetime, instance_id: int, reason: str, **detail: Any) -> None:
    """The ``process_terminated`` history entry of an order, case or hazard whose process was terminated."""
    append_history(row, now, "process_terminated", instance_id=instance_id, **detail, reason=reason.strip()[:200])


def supervisor_reason(reason: str | None) -> str:
    """The reason a supervisor gives for closing a row by hand: required, at most 200 characters, trimmed."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("a reason is required: why is it closed without its process?")
    if len(reason) > 200:
        raise InvalidInput(f"the reason is too long ({len(reason)} characters, at most 200)")
    return reason


def require_terminated_process(session: Session, what: str, instance_id: int | None) -> None:
    """Conflict unless the process that followed ``what`` was terminated (a stranded order or case)."""
    inst = session.get(ProcessInstance, instance_id) if instance_id is not None else None
    if inst is not None and inst.status != "terminated":
        raise Conflict(f"{what} is followed by instance {inst.id} ({inst.status}); only an order or case whose "
                       "process was terminated is closed by hand")


def terminate_for_entity(session: Session, uscc: str, reason: str, now: datetime) -> list[EnforcementCase]:
    """The entity ceased to exist: its open cases end as ``terminated`` with the reason."""
    cases = session.scalars(select(EnforcementCase).where(EnforcementCase.uscc == uscc,
                                                          EnforcementCase.status.not_in(CASE_DONE))
                            .order_by(EnforcementCase.id)).all()
    for c in cases:
        c.status, c.closed_at, c.close_reason = "terminated", now, reason
        append_history(c, now, "terminated", reason=reason)
    session.flush()
    return list(cases)
