"""``publication.*``: publication records ("one public") as BPMN service tasks (plans, results, penalties).

``publication.record`` is keyed by (instance, task). Payloads are masked (personal data) before storage.
"""
from __future__ import annotations

from engine.errors import InvalidInput, NotFound
from engine.runtime.services import Param, ServiceContext, registry
from engine.supervision import publication

from .hazards import parse_when

ERRORS = {InvalidInput: "invalid_publication", NotFound: "publication_not_found"}


def _out(p) -> dict:
    return {"publication_id": p.id, "kind": p.kind, "uscc": p.uscc, "due_by": p.due_by.isoformat(),
            "due_provisional": p.due_provisional,
            "published_at": p.published_at.isoformat() if p.published_at else None,
            "withdrawn_at": p.withdrawn_at.isoformat() if p.withdrawn_at else None}


@registry.register(
    "publication.record",
    params=[Param("kind", "str", description="plan | result | penalty"), Param("title", "str"),
            Param("payload", "dict", description="what is published; personal data is masked"),
            Param("uscc", "str", required=False), Param("ref", "str", required=False),
            Param("event_date", "str", required=False, description="the event the 20 working days run from"),
            Param("publish", "bool", required=False, description="publish at once (default false)"),
            Param("within_workdays", "int", required=False, description="deadline in working days (20)")],
    description="A publication record due within 20 working days of its event.", errors=ERRORS)
def publication_record(ctx: ServiceContext, kind: str, title: str, payload: dict, uscc: str | None = None,
                       ref: str | None = None, event_date: str | None = None, publish: bool | None = None,
                       within_workdays: int | None = None) -> dict:
    p = publication.record(ctx.session, kind=kind, title=title, payload=payload, uscc=uscc, ref=ref,
                           event_at=parse_when(event_date, ctx.now, "event_date"), publish=bool(publish),
                           within_workdays=publication.PUBLISH_WITHIN_WORKDAYS if within_workdays is None
                           else within_workdays, instance_id=ctx.instance_id, task_key=ctx.task_guid, now=ctx.now)
    return _out(p)


@registry.register("publication.publish", params=[Param("publication_id", "int")],
                   description="Publish a recorded publication now.", errors=ERRORS)
def publication_publish(ctx: ServiceContext, publication_id: int) -> dict:
    return _out(publication.publish(ctx.session, publication_id, ctx.now))


@registry.register("publication.withdraw",
                   params=[Param("publication_id", "int"), Param("note", "str"),
                           Param("revoked_on", "str", required=False)],
                   description="Withdraw a publication (e.g. penalty revoked on appeal) with a note.", errors=ERRORS)
def publication_withdraw(ctx: ServiceContext, publication_id: int, note: str, revoked_on: str | None = None) -> dict:
    return _out(publication.withdraw(ctx.session, publication_id, note, ctx.now,
                                     parse_when(revoked_on, ctx.now, "revoked_on")))
