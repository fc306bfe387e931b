"""Services over the registries: inspectors (certificate, leave, conflicts, workload) and check items.

Every function takes a ``Session`` and never commits. Lookups raise :class:`~engine.errors.NotFound`,
bad arguments :class:`~engine.errors.InvalidInput`.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound
from scoring.models import Entity
from scoring.uscc import is_valid_uscc

from .registry_models import CheckItem, Inspector, InspectorConflict, InspectorLeave, TeamAssignment

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
#: a certificate expiring within this many days is reported as ``expiring``
CERT_WARNING_DAYS = 30


def local_date(moment: datetime) -> date:
    """The calendar day of ``moment`` in China (dates of leave and certificates are local days)."""
    return moment.astimezone(LOCAL_TZ).date()


def region_covers(region: str, district: str) -> bool:
    """Does a jurisdiction (GB/T 2260) cover a district? ``410105`` covers itself, ``410100`` the city's
    districts, ``410000`` the province's."""
    if region == district:
        return True
    if region.endswith("0000"):
        return district.startswith(region[:2])
    if region.endswith("00"):
        return district.startswith(region[:4])
    return False


def cert_status(inspector: Inspector, on: date) -> str:
    """``valid``, ``expiring`` (within :data:`CERT_WARNING_DAYS`), ``expired`` or ``none``."""
    if not inspector.cert_no or inspector.cert_expires is None:
        return "none"
    if inspector.cert_expires < on:
        return "expired"
    if inspector.cert_expires <= on + timedelta(days=CERT_WARNING_DAYS):
        return "expiring"
    return "valid"


def is_certified(inspector: Inspector, start: date, end: date) -> bool:
    """Holds a certificate valid on every day of the window."""
    return bool(inspector.cert_no) and inspector.cert_expires is not None and inspector.cert_expires >= end \
        and start <= end


def get_inspector(session: Session, code: str) -> Inspector:
    inspector = session.scalar(select(Inspector).where(Inspector.code == code))
    if inspector is None:
        raise NotFound(f"inspector {code!r} not found")
    return inspector


def get_entity(session: Session, entity_id: int) -> Entity:
    entity = session.get(Entity, entity_id)
    if entity is None:
        raise NotFound(f"entity {entity_id} not found")
    return entity


def leaves_overlapping(session: Session, start: date, end: date) -> dict[int, list[InspectorLeave]]:
    """Leave periods overlapping ``[start, end]`` by inspector id."""
    rows = session.scalars(select(InspectorLeave).where(InspectorLeave.start_date <= end,
                                                        InspectorLeave.end_date >= start))
    out: dict[int, list[InspectorLeave]] = {}
    for r in rows:
        out.setdefault(r.inspector_id, []).append(r)
    return out


def conflicts_with(session: Session, uscc: str) -> dict[int, str]:
    """Inspectors with a declared conflict with the entity ``uscc``: id → reason."""
    return dict(session.execute(select(InspectorConflict.inspector_id, InspectorConflict.reason)
                                .where(InspectorConflict.entity_uscc == uscc)).all())


def open_assignment_counts(session: Session) -> dict[int, int]:
    """Open (unreleased) team assignments per inspector: the workload."""
    return dict(session.execute(select(TeamAssignment.inspector_id, func.count())
                                .where(TeamAssignment.released_at.is_(None))
                                .group_by(TeamAssignment.inspector_id)).all())


def add_leave(session: Session, code: str, start: date, end: date, reason: str = "") -> InspectorLeave:
    if end < start:
        raise InvalidInput(f"leave of {code}: end {end} is before start {start}")
    inspector = get_inspector(session, code)
    existing = session.scalar(select(InspectorLeave).where(
        InspectorLeave.inspector_id == inspector.id, InspectorLeave.start_date == start,
        InspectorLeave.end_date == end))
    if existing is not None:
        existing.reason = reason or existing.reason
        session.flush()
        return existing
    leave = InspectorLeave(inspector_id=inspector.id, start_date=start, end_date=end, reason=reason)
    session.add(leave)
    session.flush()
    return leave


def declare_conflict(session: Session, code: str, uscc: str, reason: str, *, now: datetime) -> InspectorConflict:
    """Record a conflict of interest (idempotent per inspector and entity; the latest reason wins)."""
    if not is_valid_uscc(uscc):
        raise InvalidInput(f"{uscc!r} is not a valid unified social credit code (check digit)")
    if not reason.strip():
        raise InvalidInput("a conflict needs a reason")
    inspector = get_inspector(session, code)
    row = session.scalar(select(InspectorConflict).where(InspectorConflict.inspector_id == inspector.id,
                                                         InspectorConflict.entity_uscc == uscc))
    if row is None:
        row = InspectorConflict(inspector_id=inspector.id, entity_uscc=uscc, reason=reason, declared_at=now)
        session.add(row)
    else:
        row.reason = reason
    session.flush()
    return row


def inspector_doc(inspector: Inspector, on: date, workload: int = 0) -> dict:
    return {"code": inspector.code, "name": inspector.name, "username": inspector.username,
            "department": inspector.department, "cert_no": inspector.cert_no,
            "cert_expires": inspector.cert_expires.isoformat() if inspector.cert_expires else None,
            "cert_status": cert_status(inspector, on), "skills": list(inspector.skills),
            "region": inspector.region, "is_expert": inspector.is_expert,
            "leader_eligible": inspector.leader_eligible, "seniority": inspector.seniority,
            "active": inspector.active, "open_assignments": workload}


def list_inspectors(session: Session, *, on: date, department: str | None = None, skill: str | None = None,
                    region: str | None = None, include_inactive: bool = False) -> list[dict]:
    """The inspector pool as documents (certificate status as of ``on``, current workload)."""
    q = select(Inspector).order_by(Inspector.code)
    if department:
        q = q.where(Inspector.department == department)
    if not include_inactive:
        q = q.where(Inspector.active.is_(True))
    load = open_assignment_counts(session)
    out = []
    for i in session.scalars(q):
        if skill and skill not in i.skills:
            continue
        if region and not region_covers(i.region, region):
            continue
        out.append(inspector_doc(i, on, load.get(i.id, 0)))
    return out


def check_item_doc(item: CheckItem) -> dict:
    """The shape ``forms.checklist.merge_checklist`` reads, plus the item's other columns."""
    return {"code": item.code, "name": item.name, "sub_item": item.sub_item, "legal_basis": item.legal_basis,
            "department": item.department, "industries": list(item.industries),
            "required_skill": item.required_skill, "clauses": [dict(c) for c in item.clauses],
            "ratio": item.ratio, "frequency": item.frequency, "method": item.method}


def items_for(session: Session, codes: list[str]) -> list[CheckItem]:
    """Check items by code, in the given order; an unknown code raises :class:`NotFound`."""
    rows = {i.code: i for i in session.scalars(select(CheckItem).where(CheckItem.code.in_(codes)))}
    missing = [c for c in codes if c not in rows]
    if missing:
        raise NotFound(f"unknown check item(s): {', '.join(missing)}")
    return [rows[c] for c in codes]


def items_for_industry(session: Session, section: str) -> list[CheckItem]:
    """Check items targeting an industry section (items with no industries target every section)."""
    return [i for i in session.scalars(select(CheckItem).order_by(CheckItem.code))
            if not i.industries or section in i.industries]


def required_skills(items: list[CheckItem]) -> list[str]:
    """The union of the items' required skills, sorted."""
    return sorted({i.required_skill for i in items if i.required_skill})
