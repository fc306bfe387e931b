"""The entity dossier an officer opens from a task: registry data, the current risk score with its class,
reasons and model version, hazards (grade, status, recurrence), rectification orders, inspections
(``entity_inspection`` instances keyed by the USCC, with their recorded results) and enforcement cases.

Every list is read by the entity's USCC through an index; nothing loads workflow states. Inspection
results come from the audit trail (the ``task_completed`` event of the inspection task carries the
submitted result code and date).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.runtime.audit import instance_chain
from engine.runtime.models import AuditEvent, HumanTask, ProcessInstance
from scoring.models import Entity, ModelVersion

from .loop_models import EnforcementCase, EntityHazardStats, Hazard, RectificationOrder

INSPECTION_PROCESS = "entity_inspection"
#: the user task of entity_inspection whose completion holds the result
INSPECTION_TASK = "inspect"
MAX_ROWS = 200


@dataclass
class InspectionView:
    instance_id: int
    status: str
    started_at: datetime
    ended_at: datetime | None
    campaign_instance_id: int | None
    result_code: str | None = None
    inspection_date: str | None = None
    inspected_by: str | None = None
    open_tasks: list[dict] = field(default_factory=list)


@dataclass
class Dossier:
    entity: Any
    hazard_stats: Any
    hazards: list
    orders: list
    inspections: list[InspectionView]
    cases: list
    model: Any = None

    @property
    def district(self) -> str:
        return self.entity.district


def _new(event: AuditEvent, key: str):
    change = (event.data_diff or {}).get(key)
    return change.get("new") if isinstance(change, dict) else None


def inspections_of(session: Session, uscc: str) -> list[InspectionView]:
    rows = session.scalars(select(ProcessInstance).where(ProcessInstance.business_key == uscc,
                                                         ProcessInstance.process_id == INSPECTION_PROCESS)
                           .order_by(ProcessInstance.id.desc()).limit(MAX_ROWS)).all()
    views = {r.id: InspectionView(r.id, r.status, r.started_at, r.ended_at, r.parent_instance_id) for r in rows}
    if not views:
        return []
    ids = list(views)
    # an instance's events are its chain: read through the (chain, seq) index
    for ev in session.scalars(select(AuditEvent).where(AuditEvent.chain.in_([instance_chain(i) for i in ids]),
                                                       AuditEvent.kind == "task_completed",
                                                       AuditEvent.bpmn_id == INSPECTION_TASK)
                              .order_by(AuditEvent.instance_id, AuditEvent.seq)):
        v = views[ev.instance_id]
        v.result_code = _new(ev, "result_code") or v.result_code
        v.inspection_date = _new(ev, "inspection_date") or v.inspection_date
        v.inspected_by = ev.actor
    for t in session.scalars(select(HumanTask).where(HumanTask.instance_id.in_(ids), HumanTask.status == "open")
                             .order_by(HumanTask.id)):
        views[t.instance_id].open_tasks.append({"id": t.id, "name": t.name or t.bpmn_id, "assignee": t.assignee,
                                                "process_id": t.process_id, "bpmn_id": t.bpmn_id, "form_id": t.form_id,
                                                "due_at": t.due_at})
    return list(views.values())


def load_dossier(session: Session, uscc: str) -> Dossier:
    """Everything known about one entity; :class:`NotFound` if the USCC is not registered."""
    uscc = (uscc or "").strip().upper()
    entity = session.scalars(select(Entity).where(Entity.uscc == uscc)).first()
    if entity is None:
        raise NotFound(f"no registered entity with USCC {uscc!r}")
    hazards = session.scalars(select(Hazard).where(Hazard.uscc == uscc)
                              .order_by(Hazard.found_at.desc(), Hazard.id.desc()).limit(MAX_ROWS)).all()
    orders = session.scalars(select(RectificationOrder).where(RectificationOrder.uscc == uscc)
                             .order_by(RectificationOrder.issued_at.desc()).limit(MAX_ROWS)).all()
    cases = session.scalars(select(EnforcementCase).where(EnforcementCase.uscc == uscc)
                            .order_by(EnforcementCase.lead_at.desc()).limit(MAX_ROWS)).all()
    model = None
    if entity.model_version:
        model = session.scalars(select(ModelVersion).where(ModelVersion.version == entity.model_version)).first()
    return Dossier(entity, session.get(EntityHazardStats, uscc), list(hazards), list(orders),
                   inspections_of(session, uscc), list(cases), model)


def entity_district(session: Session, uscc: str) -> str | None:
    return session.scalar(select(Entity.district).where(Entity.uscc == (uscc or "").strip().upper()))
