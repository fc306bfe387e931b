"""``document.issue``: a BPMN step issues an official document — numbered, rendered, signed, stored.

Parameters: ``kind`` (one of the eight kinds of :data:`~engine.supervision.document_models.DOCUMENT_KINDS`),
``ref`` (what the document is about in the instance, e.g. ``order:12``; default the service task's own run,
so a loop issues one per round) and ``fields`` (the template's fields, :mod:`engine.supervision.document_templates`).
Result: ``{"number", "document_id", "kind", "sha256"}``.

The issuing agency is the active agency covering the district of the instance's entity (its ``entity_id``,
else its ``uscc``, else its business key — a station before its bureau,
:func:`~engine.supervision.agencies.responsible_agency`); its key (``REGFLOW_KEYS_DIR``) signs. A party not
(yet) in the entity registry is placed by its USCC: characters 3–8 are the administrative division code of the
authority that registered it (GB 32100), and its name comes from ``fields["entity_name"]`` if given. Everything
happens in the step's savepoint: a failing or rolled-back step issues nothing. The ``document_issued`` event,
with the PDF's SHA-256, goes to the step (``ctx.events``), which writes it into the instance's chain with its
own events. Refusals are BPMN errors: ``invalid_document_request`` (fields), ``no_issuing_agency`` (no entity,
no agency for its district, no signing key).
"""
from __future__ import annotations

import re

from sqlalchemy import select

from engine.config import load_settings
from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime.services import Param, ServiceContext, registry
from engine.supervision import agencies, document_files, signing
from scoring.models import Entity

ERRORS = {InvalidInput: "invalid_document_request", NotFound: "no_issuing_agency", Conflict: "no_issuing_agency"}


USCC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}(\d{6})[0-9A-HJ-NPQRTUWXY]{10}$")


def instance_party(ctx: ServiceContext, fields: dict) -> tuple[str, str, str | None]:
    """(district, USCC, name) of the party the instance is about: its registered entity (``entity_id``, else
    ``uscc``, else the business key), else the division code its USCC carries."""
    entity_id = ctx.data.get("entity_id")
    if isinstance(entity_id, int) and not isinstance(entity_id, bool):
        entity = ctx.session.get(Entity, entity_id)
        if entity is not None:
            return entity.district, entity.uscc, entity.name
    uscc = ctx.data.get("uscc") or ctx.business_key
    uscc = uscc.strip().upper() if isinstance(uscc, str) else ""
    if uscc:
        entity = ctx.session.scalar(select(Entity).where(Entity.uscc == uscc))
        if entity is not None:
            return entity.district, entity.uscc, entity.name
        m = USCC_RE.match(uscc)
        if m:
            name = fields.get("entity_name")
            return m.group(1), uscc, name if isinstance(name, str) else None
    raise NotFound(f"instance {ctx.instance_id} names no entity (entity_id {entity_id!r}, uscc {uscc!r}): no "
                   f"agency can be found to issue its document")


def settings_of(ctx: ServiceContext):
    return getattr(ctx.runtime, "settings", None) or load_settings()


def keys_dir(ctx: ServiceContext) -> str:
    return settings_of(ctx).keys_dir


@registry.register(
    "document.issue",
    params=[Param("kind", "str", description="inspection_record | rectification_notice | filing_approval | "
                                             "penalty_notice | hearing_notice | penalty_decision | "
                                             "service_receipt | transfer_letter"),
            Param("ref", "str", required=False, description="what it is about in the instance (default: this run)"),
            Param("fields", "dict", required=False, description="the template's fields")],
    description="Issue an official document: numbered by the entity's agency, rendered to PDF and signed.",
    errors=ERRORS)
def document_issue(ctx: ServiceContext, kind: str, ref: str | None = None, fields: dict | None = None) -> dict:
    district, uscc, name = instance_party(ctx, fields or {})
    agency = agencies.responsible_agency(ctx.session, district)
    signer = signing.load_signer(keys_dir(ctx), agency.code)
    doc, file = document_files.issue_signed(
        ctx.session, agency=agency, kind=kind, signer=signer, instance_id=ctx.instance_id,
        ref=ref or f"{ctx.bpmn_id}:{ctx.task_guid}", uscc=uscc, entity_name=name,
        fields=fields or {}, issued_by=ctx.actor, now=ctx.now, events=ctx.events,
        portal_code_days=settings_of(ctx).portal_code_days)
    return {"number": doc.number, "document_id": doc.id, "kind": doc.kind, "sha256": file.sha256}
