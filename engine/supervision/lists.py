"""The abnormal-operations list (经营异常名录) and the serious-violation list (严重违法失信名单) as registries.

:func:`enter` lists an entity with a reason (a code and its text) and a legal basis; an entity already on the
list for the same reason code keeps its entry (no double listing: the partial unique index of
``list_entry`` enforces it even between concurrent steps). Without a code, the reason's text is the reason:
its digest becomes the code (``other:…``), so the same text twice lists once and two different reasons twice.
:func:`remove` ends an entry — on correction, an approved application, expiry of its term or escalation — and
keeps the row. Abnormal entries carry ``escalates_on``, the China date three years after entry:
:func:`escalate_due` moves every abnormal entry still open on that day to the serious list
(《市场监督管理严重违法失信名单管理办法》), closing the abnormal entry as ``escalated``. Serious entries carry
``expires_on``, the China date three years after the decision to list (列入决定): :func:`expire_due` removes every
serious entry still open on that day (``expiry``, 期满移出; the row and its history stay). Early removal on
application (信用修复, ``application``) is refused before :data:`EARLY_REMOVAL_AFTER_YEARS` year of publicity
(:func:`early_removal_from`), and removal as ``expiry`` before the term's end.

The flags ``entity.abnormal_list`` / ``entity.serious_list`` are a projection: :func:`enter` and :func:`remove`
set each to whether an open entry of its list exists (a flag set by an import, with no entry behind it, is first
adopted as an ``imported`` entry: :func:`adopt`), and re-score the entity with the active model when it
has a class, so the class override (abnormal → at least C, serious → D; ``scoring/config/classes.yaml``) and
the draw's strata follow the listing and end with it. Entering the abnormal list also sets the risk factor
``abnormal_list_ever``.

Every entry, removal, application and review is an audit event. Made by a process step, it goes to that
instance's chain: the step keeps its chain's head in memory until it saves, so the service task hands the event
to the step (``events`` = ``ServiceContext.events``) instead of writing it (which would collide with the step's
own events, see :mod:`engine.supervision.documents`); made by a job, a command or a step of *another* kind, it
goes to the **system** chain with the causing instance's id in its detail. The public sees the lists through
:func:`public_entries` — whitelisted fields, free text masked (:mod:`engine.supervision.publication`).

Removal applications (移出申请, credit repair) and the periodic jobs are in :mod:`.list_jobs`. Functions take a
``Session`` and never commit.
"""
from __future__ import annotations

import hashlib
import logging
import re
from datetime import date, datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from engine import txcache
from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import audit
from scoring.errors import ScoringError
from scoring.models import Entity

from . import publication
from .calendar import SHANGHAI
from .list_models import LIST_KINDS, REMOVAL_KINDS, ListEntry

log = logging.getLogger(__name__)

MAX_REASON = 500
MAX_BASIS = 200
ESCALATE_AFTER_YEARS = 3
#: the serious list's publication term, and the publicity an application for early removal (credit repair) needs
#: (《市场监督管理严重违法失信名单管理办法》, 2021: removed after 3 years; early removal after 1 year) [DOMAIN: keep
#: revisable; the 2014 text said 5 years]
SERIOUS_TERM_YEARS = 3
EARLY_REMOVAL_AFTER_YEARS = 1
EXPIRY_REASON = "列入严重违法失信名单满3年，期满移出"
#: the legal basis of the two lists' own rules
ABNORMAL_BASIS = "《企业信息公示暂行条例》"
SERIOUS_BASIS = "《市场监督管理严重违法失信名单管理办法》"
#: reason codes the engine itself uses, with their Chinese text (a process may use any code of the same shape)
REASONS = {
    "annual_report_missing": "未按规定期限公示年度报告",
    "info_not_publicised": "未按责令的期限公示有关企业信息",
    "false_information": "公示企业信息隐瞒真实情况、弄虚作假",
    "unreachable": "通过登记的住所或者经营场所无法联系",
    "abnormal_3_years": "列入经营异常名录届满3年仍未履行相关义务",
    "heavy_penalty": "受到较重行政处罚",
}
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_FLAG = {"abnormal": "abnormal_list", "serious": "serious_list"}


def local_date(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def years_after(day: date, years: int) -> date:
    """The same calendar day ``years`` later (29 February → 1 March when the year has none)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def _text(value, name: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput.fmt("The {name} must not be empty.", name=name)
    if len(text) > limit:
        raise InvalidInput.fmt("The {name} is longer than {limit} characters.", name=name, limit=limit)
    return text


def check_kind(list_kind) -> str:
    if list_kind not in LIST_KINDS:
        raise InvalidInput.fmt("The list must be one of {values}, not {value}.", values=", ".join(LIST_KINDS),
                               value=repr(list_kind)[:40])
    return list_kind


def reason_code_for(reason: str, reason_code: str | None) -> str:
    """The given code (checked), or ``other:`` and the first 16 hex digits of the reason text's SHA-256."""
    if reason_code is None or reason_code == "":
        return "other:" + hashlib.sha256(reason.encode("utf-8")).hexdigest()[:16]
    if not isinstance(reason_code, str) or not _CODE.match(reason_code):
        raise InvalidInput.fmt("The reason code must be lower-case letters, digits and _ (at most 40), not "
                               "{value}.", value=repr(reason_code)[:60])
    return reason_code


def _entity(session: Session, entity_id) -> Entity:
    e = session.get(Entity, entity_id) if isinstance(entity_id, int) and not isinstance(entity_id, bool) else None
    if e is None:
        raise NotFound.fmt("Entity {id} does not exist.", id=str(entity_id)[:40])
    return e


def open_entries(session: Session, entity_id: int, list_kind: str | None = None) -> list[ListEntry]:
    q = select(ListEntry).where(ListEntry.entity_id == entity_id, ListEntry.status == "listed")
    if list_kind:
        q = q.where(ListEntry.list_kind == list_kind)
    return list(session.scalars(q.order_by(ListEntry.id)))


def get_entry(session: Session, entry_id) -> ListEntry:
    e = session.get(ListEntry, entry_id) if isinstance(entry_id, int) and not isinstance(entry_id, bool) else None
    if e is None:
        raise NotFound.fmt("List entry {id} does not exist.", id=str(entry_id)[:40])
    return e


def audit_event(session: Session, kind: str, actor: str, now: datetime, instance_id: int | None,
                events: list | None, detail: dict) -> None:
    """An event of the lists: handed to the running step in ``events`` (``ServiceContext.events``: the step writes
    it to its instance's chain), else written to the system chain with the causing instance in its detail."""
    if events is not None:
        events.append(audit.Event(kind, actor, instance_id, at=now, detail={**detail, "instance_id": instance_id}))
    else:
        audit.append(session, audit.SYSTEM_CHAIN, [audit.Event(kind, actor, at=now,
                                                               detail={**detail, "instance_id": instance_id})])


def _audit(session: Session, kind: str, actor: str, now: datetime, entry: ListEntry, instance_id: int | None,
           events: list | None = None, **detail) -> None:
    audit_event(session, kind, actor, now, instance_id, events, {
        "entry_id": entry.id, "list": entry.list_kind, "uscc": entry.uscc, "reason_code": entry.reason_code,
        **detail})


def project(session: Session, entity: Entity) -> None:
    """Set the entity's two flags to whether an open entry of each list exists, and re-score it when it has a
    class (the overrides follow the flags); an entity that cannot be scored keeps its class (logged)."""
    kinds = set(session.scalars(select(ListEntry.list_kind).where(ListEntry.entity_id == entity.id,
                                                                  ListEntry.status == "listed")))
    before = (bool(entity.abnormal_list), bool(entity.serious_list))
    entity.abnormal_list, entity.serious_list = "abnormal" in kinds, "serious" in kinds
    if entity.abnormal_list:
        entity.abnormal_list_ever = True
    session.flush()
    txcache.invalidate(session, (Entity.__tablename__,))
    if before != (entity.abnormal_list, entity.serious_list) and entity.risk_class is not None:
        from scoring.service import score_entity  # noqa: PLC0415  (scikit-learn loads on first use, not at start-up)

        try:
            score_entity(session, entity.id)
        except ScoringError as exc:
            log.warning("entity %s keeps class %s after a listing change: %s", entity.uscc, entity.risk_class, exc)


def adopt(session: Session, entity: Entity, list_kind: str, now: datetime, actor: str) -> ListEntry | None:
    """An entity flagged on a list by an import (``regflow import entities``, a synthetic registry) and never in
    the registry gets an open ``imported`` entry the first time the registry touches it, so that the flag stays
    the registry's projection: a later entry's removal leaves it listed until the imported entry is removed too.
    Its entry date is unknown: it never escalates by itself."""
    if not getattr(entity, _FLAG[list_kind]):
        return None
    if session.scalar(select(exists().where(ListEntry.entity_id == entity.id, ListEntry.list_kind == list_kind))):
        return None
    entry = ListEntry(list_kind=list_kind, entity_id=entity.id, uscc=entity.uscc, reason_code="imported",
                      reason="导入时已列入", legal_basis="（导入数据）", entered_at=now, entered_by=str(actor)[:120],
                      status="listed")
    session.add(entry)
    session.flush()
    _audit(session, "list_entered", actor, now, entry, None, imported=True)
    return entry


def enter(session: Session, *, list_kind: str, entity_id: int, reason: str, legal_basis: str, now: datetime,
          actor: str, reason_code: str | None = None, instance_id: int | None = None,
          events: list | None = None) -> tuple[ListEntry, bool]:
    """List the entity (``(entry, True)``), or give back its open entry for the same reason (``(entry, False)``).
    ``events``: a running step's list for the audit events (``ServiceContext.events``), else the system chain."""
    check_kind(list_kind)
    reason = _text(reason, "reason", MAX_REASON)
    legal_basis = _text(legal_basis, "legal basis", MAX_BASIS)
    code = reason_code_for(reason, reason_code)
    e = _entity(session, entity_id)
    adopt(session, e, list_kind, now, actor)
    existing = session.scalars(select(ListEntry).where(
        ListEntry.list_kind == list_kind, ListEntry.entity_id == e.id, ListEntry.reason_code == code,
        ListEntry.status == "listed")).first()
    if existing is not None:
        return existing, False
    entry = ListEntry(list_kind=list_kind, entity_id=e.id, uscc=e.uscc, reason_code=code, reason=reason,
                      legal_basis=legal_basis, entered_at=now, entered_by=str(actor)[:120], instance_id=instance_id,
                      status="listed",
                      escalates_on=years_after(local_date(now), ESCALATE_AFTER_YEARS) if list_kind == "abnormal"
                      else None,
                      expires_on=years_after(local_date(now), SERIOUS_TERM_YEARS) if list_kind == "serious"
                      else None)
    session.add(entry)
    session.flush()
    _audit(session, "list_entered", actor, now, entry, instance_id, events, legal_basis=legal_basis,
           escalates_on=entry.escalates_on.isoformat() if entry.escalates_on else None,
           expires_on=entry.expires_on.isoformat() if entry.expires_on else None)
    project(session, e)
    return entry, True


def remove_entry(session: Session, entry: ListEntry, *, removal_kind: str, reason: str, now: datetime, actor: str,
                 instance_id: int | None = None, escalated_to: ListEntry | None = None,
                 events: list | None = None) -> ListEntry:
    """End one open entry; :class:`Conflict` when it is already removed."""
    if removal_kind not in REMOVAL_KINDS:
        raise InvalidInput.fmt("The removal kind must be one of {values}, not {value}.",
                               values=", ".join(REMOVAL_KINDS), value=repr(removal_kind)[:40])
    reason = _text(reason, "removal reason", MAX_REASON)
    if entry.status != "listed":
        raise Conflict.fmt("List entry {id} was already removed on {date}.", id=entry.id,
                           date=local_date(entry.removed_at).isoformat() if entry.removed_at else "?")
    if removal_kind == "application":
        check_early_removal(entry, now)
    if removal_kind == "expiry" and entry.expires_on is not None and local_date(now) < entry.expires_on:
        raise Conflict.fmt("List entry {id} is listed until {date}; it cannot be removed as expired before.",
                           id=entry.id, date=entry.expires_on.isoformat())
    entry.status, entry.removal_kind, entry.removal_reason = "removed", removal_kind, reason
    entry.removed_at, entry.removed_by = now, str(actor)[:120]
    entry.escalated_to_id = escalated_to.id if escalated_to is not None else None
    session.flush()
    _audit(session, "list_removed", actor, now, entry, instance_id, events, removal_kind=removal_kind,
           escalated_to=entry.escalated_to_id)
    project(session, session.get(Entity, entry.entity_id))
    return entry


def early_removal_from(entry: ListEntry) -> date | None:
    """The China date from which a serious entry may be removed on application (one year of publicity), or None
    (an abnormal entry: no waiting period; an imported one: its date of entry is unknown, the reviewer decides)."""
    if entry.list_kind != "serious" or entry.reason_code == "imported":
        return None
    return years_after(local_date(entry.entered_at), EARLY_REMOVAL_AFTER_YEARS)


def check_early_removal(entry: ListEntry, now: datetime) -> None:
    """:class:`Conflict` when the entry is on the serious list for less than a year at ``now`` (China date)."""
    start = early_removal_from(entry)
    if start is not None and local_date(now) < start:
        raise Conflict.fmt("List entry {id} has been on the serious violation list since {entered}: early removal "
                           "through credit repair is possible only after one year of publicity, from {date}.",
                           id=entry.id, entered=local_date(entry.entered_at).isoformat(), date=start.isoformat())


def remove(session: Session, *, list_kind: str, entity_id: int, reason: str, now: datetime, actor: str,
           removal_kind: str = "correction", reason_code: str | None = None,
           instance_id: int | None = None, events: list | None = None) -> list[ListEntry]:
    """End the entity's open entries of the list (only the one for ``reason_code`` when given); the entries
    removed ([] when there was none: removing what is not listed changes nothing)."""
    check_kind(list_kind)
    adopt(session, _entity(session, entity_id), list_kind, now, actor)
    entries = [x for x in open_entries(session, entity_id, list_kind)
               if reason_code is None or x.reason_code == reason_code]
    return [remove_entry(session, x, removal_kind=removal_kind, reason=reason, now=now, actor=actor,
                         instance_id=instance_id, events=events) for x in entries]


def escalate_due(session: Session, now: datetime, *, actor: str = "system", limit: int | None = None) -> dict:
    """Abnormal entries still open on their ``escalates_on`` day (China time) → the serious list."""
    today = local_date(now)
    q = (select(ListEntry).where(ListEntry.list_kind == "abnormal", ListEntry.status == "listed",
                                 ListEntry.escalates_on <= today).order_by(ListEntry.escalates_on, ListEntry.id))
    due = list(session.scalars(q.limit(limit) if limit else q))
    escalated = []
    for a in due:
        serious, _ = enter(session, list_kind="serious", entity_id=a.entity_id, reason_code="abnormal_3_years",
                           reason=f"{REASONS['abnormal_3_years']}（{a.reason}，列入日期 "
                                  f"{local_date(a.entered_at).isoformat()}）"[:MAX_REASON],
                           legal_basis=SERIOUS_BASIS, now=now, actor=actor)
        remove_entry(session, a, removal_kind="escalated", reason="届满3年，列入严重违法失信名单", now=now, actor=actor,
                     escalated_to=serious)
        escalated.append({"entry_id": a.id, "uscc": a.uscc, "serious_entry_id": serious.id})
    return {"date": today.isoformat(), "escalated": len(escalated), "entries": escalated[:100]}


def expire_due(session: Session, now: datetime, *, actor: str = "system", limit: int | None = None) -> dict:
    """Serious entries still open on their ``expires_on`` day (China time) are removed as ``expiry`` (期满移出):
    audited on the system chain, the entity's flag and class following (:func:`project`)."""
    today = local_date(now)
    q = (select(ListEntry).where(ListEntry.list_kind == "serious", ListEntry.status == "listed",
                                 ListEntry.expires_on <= today).order_by(ListEntry.expires_on, ListEntry.id))
    expired = []
    for entry in list(session.scalars(q.limit(limit) if limit else q)):
        remove_entry(session, entry, removal_kind="expiry", reason=EXPIRY_REASON, now=now, actor=actor)
        expired.append({"entry_id": entry.id, "uscc": entry.uscc, "expires_on": entry.expires_on.isoformat()})
    return {"date": today.isoformat(), "expired": len(expired), "entries": expired[:100]}


# ------------------------------------------------------------------------------------------ reading
def entry_doc(e: ListEntry) -> dict:
    """Everything about an entry (for officers: the CLI, the commands)."""
    early = early_removal_from(e)
    return {"id": e.id, "list": e.list_kind, "entity_id": e.entity_id, "uscc": e.uscc, "reason_code": e.reason_code,
            "reason": e.reason, "legal_basis": e.legal_basis, "entered_at": e.entered_at.isoformat(),
            "entered_by": e.entered_by, "instance_id": e.instance_id, "status": e.status,
            "removal_kind": e.removal_kind, "removed_at": e.removed_at.isoformat() if e.removed_at else None,
            "removed_by": e.removed_by, "removal_reason": e.removal_reason,
            "escalates_on": e.escalates_on.isoformat() if e.escalates_on else None,
            "expires_on": e.expires_on.isoformat() if e.expires_on else None,
            "early_removal_from": early.isoformat() if early else None,
            "escalated_to_id": e.escalated_to_id}


def find_entries(session: Session, *, list_kind: str | None = None, uscc: str | None = None,
                 status: str | None = None, limit: int = 50, offset: int = 0) -> list[ListEntry]:
    q = select(ListEntry)
    if list_kind:
        q = q.where(ListEntry.list_kind == check_kind(list_kind))
    if uscc:
        q = q.where(ListEntry.uscc == uscc)
    if status:
        q = q.where(ListEntry.status == status)
    q = q.order_by(ListEntry.entered_at.desc(), ListEntry.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(q))


def public_entries(session: Session, *, list_kind: str | None = None, uscc: str | None = None,
                   limit: int = 50, offset: int = 0) -> list[dict]:
    """The lists as the public sees them: current and past entries, newest first, with the entry's and the
    removal's China dates and a serious entry's end of term, only the fields
    :data:`engine.supervision.publication.LIST_PUBLIC_FIELDS` allows."""
    return [publication.public_list_entry({
        "id": e.id, "list": e.list_kind, "uscc": e.uscc, "reason": e.reason, "legal_basis": e.legal_basis,
        "entered_on": local_date(e.entered_at).isoformat(), "status": e.status, "removal_kind": e.removal_kind,
        "expires_on": e.expires_on.isoformat() if e.expires_on else None,
        "removed_on": local_date(e.removed_at).isoformat() if e.removed_at else None,
        "removal_reason": e.removal_reason, "entered_by": e.entered_by, "instance_id": e.instance_id})
        for e in find_entries(session, list_kind=list_kind, uscc=uscc, limit=limit, offset=offset)]


def counts(session: Session) -> dict:
    """Per list: entered (all rows), removed, open."""
    out = {k: {"entered": 0, "removed": 0, "open": 0} for k in LIST_KINDS}
    for kind, status, n in session.execute(select(ListEntry.list_kind, ListEntry.status, func.count())
                                           .group_by(ListEntry.list_kind, ListEntry.status)):
        out[kind]["entered"] += n
        out[kind]["removed" if status == "removed" else "open"] += n
    return out
