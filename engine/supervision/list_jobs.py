"""Removal applications and the lists' periodic work: the 3-year escalation, the serious list's end of term and
the annual-report default job.

**Applications** (移出申请 / 信用修复): :func:`apply_for_removal` records an entity's request to leave a list — its
statement and evidence references — for an open entry (one pending application per entry); an officer reviews
it (``list_removal.bpmn``, or ``regflow lists review``): :func:`review_application` approves (the entry is
removed, kind ``application``, the reviewer's note as the public removal reason) or rejects (a note is required:
it is the applicant's notice). Both are audited. An application for early removal from the serious list (信用修复)
is refused before the entry has been public for a year (:func:`engine.supervision.lists.check_early_removal`),
and so is its approval.

**Annual reports** (年度报告): due 1 January – 30 June for the previous year (《企业信息公示暂行条例》).
:func:`annual_report_defaults` — the job run on 1 July (China time) — lists as abnormal (reason
``annual_report_missing``) every active or suspended entity registered before the end of the reported year
with no report on record for it; one already listed for that reason is not listed twice. The registration
date is read from ``factors_as_of − years_in_business`` where both are known (else the entity is taken as
registered long before). **Safety**: a year with no report on record at all means the reports were never loaded
— listing the whole registry would be the result — so the job lists nobody and says why (``skipped``).
:func:`record_annual_report` records a filed report and removes an open ``annual_report_missing`` entry as
corrected (补报).

:func:`escalation_job`, :func:`expiry_job` (serious entries whose 3-year term is over are removed, ``expiry``) and
:func:`annual_report_job` are the periodic jobs ``engine.bootstrap`` registers (:mod:`engine.runtime.periodic`).
Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound
from scoring.models import Entity

from . import lists
from .list_models import AnnualReport, ListEntry, RemovalApplication

MAX_STATEMENT = 4000
MAX_EVIDENCE = 20
MAX_EVIDENCE_REF = 200
#: annual reports are due by 30 June; the default job runs from 1 July (China time)
REPORT_DUE = (6, 30)
JOB_DAY = (7, 1)
OWING_STATUSES = ("active", "suspended")


# ------------------------------------------------------------------------------------------ applications
def evidence_refs(value) -> list[str]:
    """Evidence references as a clean list of strings (≤ 20, each ≤ 200 characters)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or len(value) > MAX_EVIDENCE:
        raise InvalidInput.fmt("The evidence must be a list of at most {limit} references.", limit=MAX_EVIDENCE)
    out = []
    for v in value:
        if not isinstance(v, (str, int)) or isinstance(v, bool) or not str(v).strip() \
                or len(str(v)) > MAX_EVIDENCE_REF:
            raise InvalidInput.fmt("Each evidence reference must be a text of 1-{limit} characters.",
                                   limit=MAX_EVIDENCE_REF)
        out.append(str(v).strip())
    return out


def _app_audit(session: Session, kind: str, actor: str, now: datetime, app: RemovalApplication,
               instance_id: int | None, events: list | None, **detail) -> None:
    lists.audit_event(session, kind, actor, now, instance_id, events,
                      {"application_id": app.id, "entry_id": app.entry_id, "uscc": app.uscc, **detail})


def apply_for_removal(session: Session, *, entry_id: int, statement: str, evidence: list[str], actor: str,
                      now: datetime, instance_id: int | None = None, events: list | None = None) -> RemovalApplication:
    entry = lists.get_entry(session, entry_id)
    statement = _statement(statement)
    if entry.status != "listed":
        raise Conflict.fmt("List entry {id} is no longer listed; there is nothing to apply for.", id=entry.id)
    lists.check_early_removal(entry, now)
    pending = session.scalars(select(RemovalApplication).where(RemovalApplication.entry_id == entry.id,
                                                               RemovalApplication.status == "pending")).first()
    if pending is not None:
        raise Conflict.fmt("List entry {id} already has a pending application ({app}).", id=entry.id, app=pending.id)
    app = RemovalApplication(entry_id=entry.id, uscc=entry.uscc, statement=statement, evidence=list(evidence),
                             status="pending", applied_at=now, applied_by=str(actor)[:120], instance_id=instance_id)
    session.add(app)
    session.flush()
    _app_audit(session, "list_removal_applied", actor, now, app, instance_id, events, evidence=len(app.evidence))
    return app


def _statement(value) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput.fmt("The {name} must not be empty.", name="statement")
    if len(text) > MAX_STATEMENT:
        raise InvalidInput.fmt("The {name} is longer than {limit} characters.", name="statement", limit=MAX_STATEMENT)
    return text


def get_application(session: Session, application_id) -> RemovalApplication:
    app = session.get(RemovalApplication, application_id) \
        if isinstance(application_id, int) and not isinstance(application_id, bool) else None
    if app is None:
        raise NotFound.fmt("Removal application {id} does not exist.", id=str(application_id)[:40])
    return app


def review_application(session: Session, application_id: int, *, approve: bool, note: str | None, actor: str,
                       now: datetime, instance_id: int | None = None,
                       events: list | None = None) -> RemovalApplication:
    """Approve (remove the entry) or reject (a note required) a pending application."""
    app = get_application(session, application_id)
    if app.status != "pending":
        raise Conflict.fmt("Removal application {id} was already {status}.", id=app.id, status=app.status)
    note = note.strip() if isinstance(note, str) else ""
    if len(note) > lists.MAX_REASON:
        raise InvalidInput.fmt("The {name} is longer than {limit} characters.", name="note", limit=lists.MAX_REASON)
    if not approve and not note:
        raise InvalidInput.fmt("A rejection needs a note telling the applicant why.")
    entry = lists.get_entry(session, app.entry_id)
    if approve:
        if entry.status == "listed":
            lists.remove_entry(session, entry, removal_kind="application", reason=note or "申请移出，经审核同意",
                               now=now, actor=actor, instance_id=instance_id, events=events)
    app.status = "approved" if approve else "rejected"
    app.reviewed_at, app.reviewed_by, app.review_note = now, str(actor)[:120], note or None
    session.flush()
    _app_audit(session, "list_removal_reviewed", actor, now, app, instance_id, events, decision=app.status)
    return app


def application_doc(app: RemovalApplication, session: Session | None = None) -> dict:
    doc = {"application_id": app.id, "entry_id": app.entry_id, "uscc": app.uscc, "statement": app.statement,
           "evidence": list(app.evidence or []), "status": app.status, "applied_at": app.applied_at.isoformat(),
           "applied_by": app.applied_by, "instance_id": app.instance_id,
           "reviewed_at": app.reviewed_at.isoformat() if app.reviewed_at else None, "reviewed_by": app.reviewed_by,
           "review_note": app.review_note}
    if session is not None:
        entry = session.get(ListEntry, app.entry_id)
        doc.update(list=entry.list_kind, entry_status=entry.status, reason=entry.reason)
    return doc


def find_applications(session: Session, *, status: str | None = None, uscc: str | None = None,
                      limit: int = 50, offset: int = 0) -> list[RemovalApplication]:
    q = select(RemovalApplication)
    if status:
        q = q.where(RemovalApplication.status == status)
    if uscc:
        q = q.where(RemovalApplication.uscc == uscc)
    return list(session.scalars(q.order_by(RemovalApplication.applied_at.desc(), RemovalApplication.id.desc())
                                .limit(limit).offset(offset)))


# ------------------------------------------------------------------------------------------ annual reports
def record_annual_report(session: Session, *, entity_id: int, year: int, filed_on: date, now: datetime,
                         actor: str) -> dict:
    """A filed annual report; an open ``annual_report_missing`` entry of the entity is removed as corrected."""
    e = session.get(Entity, entity_id)
    if e is None:
        raise NotFound.fmt("Entity {id} does not exist.", id=entity_id)
    if session.get(AnnualReport, (entity_id, year)) is None:
        session.add(AnnualReport(entity_id=entity_id, year=year, filed_on=filed_on))
        session.flush()
    removed = lists.remove(session, list_kind="abnormal", entity_id=entity_id, reason_code="annual_report_missing",
                           reason=f"已补报{year}年度报告", now=now, actor=actor)
    return {"entity_id": entity_id, "year": year, "removed": [x.id for x in removed]}


def report_year_due(now: datetime) -> int:
    """The year whose reports are overdue at ``now``: last year's from 1 July (China), else InvalidInput."""
    local = now.astimezone(lists.SHANGHAI)
    if (local.month, local.day) < JOB_DAY:
        raise InvalidInput.fmt("Annual reports for {year} are due by 30 June {next}; the default job runs from "
                               "1 July.", year=local.year - 1, next=local.year)
    return local.year - 1


def _registered_by(e_years: float | None, as_of: datetime | None, year_end: date) -> bool:
    if e_years is None or as_of is None:
        return True
    registered = as_of.astimezone(lists.SHANGHAI).date() - timedelta(days=round(float(e_years) * 365.25))
    return registered <= year_end


def annual_report_defaults(session: Session, now: datetime, *, actor: str = "system",
                           year: int | None = None) -> dict:
    """List as abnormal the entities without an annual report for ``year`` (default: the year due at ``now``)."""
    year = report_year_due(now) if year is None else int(year)
    if year >= now.astimezone(lists.SHANGHAI).year:
        raise InvalidInput.fmt("Annual reports for {year} are not due yet.", year=year)
    session.flush()  # reports recorded in this transaction count (the sessions do not autoflush)
    if not session.scalar(select(exists().where(AnnualReport.year == year))):
        return {"year": year, "listed": 0, "skipped": f"no annual report for {year} is on record (not loaded?)"}
    filed = exists().where(and_(AnnualReport.entity_id == Entity.id, AnnualReport.year == year))
    rows = session.execute(select(Entity.id, Entity.years_in_business, Entity.factors_as_of)
                           .where(Entity.status.in_(OWING_STATUSES), ~filed).order_by(Entity.id)).all()
    year_end, listed, already = date(year, 12, 31), 0, 0
    for entity_id, years, as_of in rows:
        if not _registered_by(years, as_of, year_end):
            continue
        _, created = lists.enter(session, list_kind="abnormal", entity_id=entity_id,
                                 reason_code="annual_report_missing",
                                 reason=f"{lists.REASONS['annual_report_missing']}（{year}年度）",
                                 legal_basis=lists.ABNORMAL_BASIS, now=now, actor=actor)
        listed += created
        already += not created
    return {"year": year, "listed": listed, "already_listed": already}


# ------------------------------------------------------------------------------------------ periodic jobs
def escalation_job(session: Session, now: datetime) -> dict:
    """The daily 3-year escalation (``engine.bootstrap`` registers it)."""
    return lists.escalate_due(session, now)


def expiry_job(session: Session, now: datetime) -> dict:
    """The daily end of the serious list's 3-year term (``engine.bootstrap`` registers it)."""
    return lists.expire_due(session, now)


def annual_report_job(session: Session, now: datetime) -> dict:
    """The 1 July annual-report default job (``engine.bootstrap`` registers it, once a year from 1 July)."""
    return annual_report_defaults(session, now)
