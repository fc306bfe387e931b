"""Instance commands: start a process, read an instance and its history, suspend / resume / terminate it, retry
its incident (see :mod:`engine.commands`)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import policy
from engine.errors import InvalidInput, NotFound
from engine.policy import Actor
from engine.runtime.models import AuditEvent, Incident, ProcessDefinition, ProcessInstance
from engine.runtime.runtime import InstanceRow, Runtime, StepOutcome

#: the longest business key (usually an entity's 18-character USCC)
KEY_MAX = 120
PROCESS_ID_MAX = 200


def _latest_xml(session: Session, process_id: str) -> str:
    xml = session.scalar(select(ProcessDefinition.bpmn_xml).where(ProcessDefinition.process_id == process_id)
                         .order_by(ProcessDefinition.version.desc()).limit(1))
    if xml is None:
        raise NotFound.fmt("Process {process} is not deployed.", process=process_id)
    return xml


def start(rt: Runtime, session: Session, actor: Actor, process_id: Any, business_key: Any = None,
          data: Any = None) -> StepOutcome:
    """A person starts the latest version of ``process_id``: the process must name one of their groups in its
    ``startableBy``, and every entity the business key and the start data name must lie in their jurisdiction
    (:func:`engine.policy.check_start`). The business key and the data's ``uscc`` are normalised first."""
    if not isinstance(process_id, str) or not process_id.strip() or len(process_id) > PROCESS_ID_MAX:
        raise InvalidInput.fmt("“process_id” is required: the id of a deployed process.",
                               details={"field": "process_id"})
    if business_key is not None and (not isinstance(business_key, str) or len(business_key) > KEY_MAX):
        raise InvalidInput.fmt("“business_key” must be a text of at most 120 characters (usually the entity's USCC).",
                               details={"field": "business_key"})
    if data is not None and not isinstance(data, dict):
        raise InvalidInput.fmt("“data” must be a JSON object.", details={"field": "data"})
    process_id = process_id.strip()
    key = policy.normalise_key(business_key) or None
    data = dict(data or {})
    if isinstance(data.get("uscc"), str):
        data["uscc"] = policy.normalise_key(data["uscc"])
    starters = policy.starter_groups(_latest_xml(session, process_id), process_id)
    policy.check_start(session, actor, process_id, starters, key, data)
    return rt.start(session, process_id, business_key=key, data=data, actor=actor.username)


def read(session: Session, actor: Actor, instance_id: int) -> ProcessInstance:
    """The instance, if ``actor`` may read it (:func:`engine.policy.check_read_instance`)."""
    inst = session.get(ProcessInstance, instance_id)
    if inst is None:
        raise NotFound.fmt("Instance {id} does not exist.", id=instance_id)
    policy.check_read_instance(session, actor, inst)
    return inst


def history(session: Session, actor: Actor, instance_id: int) -> tuple[ProcessInstance, list[AuditEvent]]:
    """The instance and its audit events in order, if ``actor`` may read it."""
    inst = read(session, actor, instance_id)
    events = session.scalars(select(AuditEvent).where(AuditEvent.chain == f"instance:{instance_id}")
                             .order_by(AuditEvent.seq)).all()
    return inst, list(events)


#: the lifecycle changes a supervisor or an administrator may make
LIFECYCLE = ("suspend", "resume", "terminate")
REASON_MAX = 500


def change_status(rt: Runtime, session: Session, actor: Actor, instance_id: int, action: str,
                  reason: Any) -> InstanceRow:
    """Suspend, resume or terminate an instance, with a reason (audited), if the actor may
    (:func:`engine.policy.check_instance_admin`)."""
    if action not in LIFECYCLE:
        raise InvalidInput.fmt("The action must be one of {values}, not {value}.", values=", ".join(LIFECYCLE),
                               value=repr(action)[:40])
    inst = session.get(ProcessInstance, instance_id)
    if inst is None:
        raise NotFound.fmt("Instance {id} does not exist.", id=instance_id)
    policy.check_instance_admin(session, actor, inst)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_MAX:
        raise InvalidInput.fmt("Give a reason of at most 500 characters.", details={"field": "reason"})
    return getattr(rt, action)(session, instance_id, actor.username, reason.strip())


def retry_incident(rt: Runtime, session: Session, actor: Actor, incident_id: int) -> StepOutcome:
    """Retry the failed task behind an open incident, if the actor may act on its instance."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound.fmt("Incident {id} does not exist.", id=incident_id)
    policy.check_instance_admin(session, actor, session.get(ProcessInstance, incident.instance_id))
    return rt.retry_incident(session, incident_id, actor.username)
