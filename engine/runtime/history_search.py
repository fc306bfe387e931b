"""Finding instances and reading what the history is made of: :func:`search_instances` (the auditors'
search, one page at a time), an instance (:func:`get_instance`) and its audit events in chain order
(:func:`events_of`). Part of the history service, :mod:`engine.runtime.history`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound

from . import audit
from .models import AuditEvent, HumanTask, ProcessDefinition, ProcessInstance

__all__ = ["COUNT_CAP", "MAX_PAGE", "STATUSES", "InstancePage", "InstanceQuery", "events_of", "get_instance",
           "process_ids", "search_instances"]

STATUSES = ("running", "suspended", "completed", "terminated")
#: the search stops counting here ("1000+")
COUNT_CAP = 1000
MAX_PAGE = 200


@dataclass
class InstanceQuery:
    #: business keys to keep (``None``: no entity filter; an empty list matches nothing)
    business_keys: Sequence[str] | None = None
    process_id: str | None = None
    status: str | None = None
    #: a user who started the instance, holds or held one of its tasks
    officer: str | None = None
    started_from: datetime | None = None
    started_before: datetime | None = None
    #: business keys the viewer may not see (entities outside their jurisdiction); ``None``: no limit
    hidden_keys: Any = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.status and self.status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, not {self.status!r}")
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInput(f"page size must be between 1 and {MAX_PAGE}, not {self.limit}")
        if self.offset < 0:
            raise InvalidInput("page offset must not be negative")
        for name in ("started_from", "started_before"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"{name} must be timezone-aware")
        if self.started_from and self.started_before and self.started_from >= self.started_before:
            raise InvalidInput("the date range is empty: its start is not before its end")
        self.officer = (self.officer or "").strip() or None
        self.process_id = (self.process_id or "").strip() or None


@dataclass
class InstancePage:
    rows: list[ProcessInstance]
    total: int
    capped: bool
    query: InstanceQuery

    @property
    def has_next(self) -> bool:
        return self.capped or self.query.offset + len(self.rows) < self.total


def _conditions(q: InstanceQuery) -> list:
    pi = ProcessInstance
    where = []
    if q.business_keys is not None:
        where.append(pi.business_key.in_(list(q.business_keys)))
    if q.process_id:
        where.append(pi.process_id == q.process_id)
    if q.status:
        where.append(pi.status == q.status)
    if q.started_from:
        where.append(pi.started_at >= q.started_from)
    if q.started_before:
        where.append(pi.started_at < q.started_before)
    if q.officer:
        # completed tasks keep their assignee (the completer); the status prefix lets the index serve it
        worked = select(HumanTask.instance_id).where(
            HumanTask.status.in_(("open", "completed", "cancelled")),
            or_(HumanTask.assignee == q.officer, HumanTask.completed_by == q.officer))
        where.append(or_(pi.started_by == q.officer, pi.id.in_(worked)))
    if q.hidden_keys is not None:
        where.append(or_(pi.business_key.is_(None), pi.business_key.not_in(q.hidden_keys)))
    return where


def search_instances(session: Session, q: InstanceQuery) -> InstancePage:
    """Instances matching every filter, newest first, one page; the count stops at :data:`COUNT_CAP`."""
    where = _conditions(q)
    stmt = select(ProcessInstance).where(*where).order_by(ProcessInstance.id.desc())
    rows = list(session.scalars(stmt.limit(q.limit).offset(q.offset)))
    counted = select(ProcessInstance.id).where(*where).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(counted)) or 0
    return InstancePage(rows, min(total, COUNT_CAP), total > COUNT_CAP, q)


def process_ids(session: Session) -> list[str]:
    return list(session.scalars(select(ProcessDefinition.process_id).distinct().order_by(ProcessDefinition.process_id)))


def get_instance(session: Session, instance_id: int) -> ProcessInstance:
    inst = session.get(ProcessInstance, instance_id)
    if inst is None:
        raise NotFound(f"instance {instance_id} does not exist")
    return inst


def events_of(session: Session, instance_id: int, upto_seq: int | None = None) -> list[AuditEvent]:
    """The instance's events in chain order (the ``(chain, seq)`` unique index)."""
    q = select(AuditEvent).where(AuditEvent.chain == audit.instance_chain(instance_id))
    if upto_seq is not None:
        q = q.where(AuditEvent.seq <= upto_seq)
    return list(session.scalars(q.order_by(AuditEvent.seq)))
