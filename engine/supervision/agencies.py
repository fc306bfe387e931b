"""Agencies as data: a bureau and its stations, the districts each covers, the users of each.

:func:`save_agency` creates or updates one agency by its code (validated: the code's characters, 6-digit
district codes, a station's districts inside its bureau's, no cycle of parents, no two active agencies at the
same level covering the same code); :func:`responsible_agency` names the agency that issues for a district —
the most specific active agency covering it: one naming the district itself before one covering the whole
city, and at the same coverage a station before its bureau. Users belong to one agency
(:func:`assign_member`, :func:`agency_of_user`). :func:`load_agencies` reads a CSV file of agencies
(``code,name,parent,districts,active``; districts separated by ``;``), as the demo does.
Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import clock
from engine.runtime.models import AppUser

from .document_models import Agency, AgencyMember
from .registries import region_covers

#: a document-number prefix: no spaces, no brackets (the year is written 〔2026〕), no digits at its end
CODE_RE = re.compile(r"^[^\s\d〔〕\[\]()（）]{1,20}$")
DISTRICT_RE = re.compile(r"^\d{6}$")
_TRUE = {"true", "1", "yes", "y", "是", ""}
_FALSE = {"false", "0", "no", "n", "否"}


def specificity(code: str) -> int:
    """How narrow a coverage code is: a district 3, a city (``4101 00``) 2, a province (``41 0000``) 1."""
    if code.endswith("0000"):
        return 1
    return 2 if code.endswith("00") else 3


def get_agency(session: Session, code: str) -> Agency:
    agency = session.scalar(select(Agency).where(Agency.code == (code or "").strip()))
    if agency is None:
        raise NotFound(f"no agency with the code {code!r}")
    return agency


def _depth(agency: Agency, by_id: dict[int, Agency]) -> int:
    depth, seen = 0, {agency.id}
    while agency.parent_id is not None:
        agency = by_id[agency.parent_id]
        if agency.id in seen:  # refused by save_agency; a database edited by hand is not looped over forever
            raise Conflict(f"the agencies {sorted(seen)} are each other's parents")
        seen.add(agency.id)
        depth += 1
    return depth


def _rank(agency: Agency, district: str, by_id: dict[int, Agency]) -> tuple[int, int] | None:
    """(how narrowly ``agency`` covers ``district``, its depth below its bureau), or None: it does not."""
    covering = [specificity(c) for c in agency.districts or [] if region_covers(c, district)]
    return (max(covering), _depth(agency, by_id)) if covering else None


def responsible_agency(session: Session, district: str) -> Agency:
    """The most specific active agency covering ``district`` (a station before its bureau). NotFound if none
    does; Conflict if two cover it equally (the register could not say which one numbers its documents)."""
    district = (district or "").strip()
    if not DISTRICT_RE.match(district):
        raise InvalidInput(f"district {district!r} is not a 6-digit GB/T 2260 code")
    active = list(session.scalars(select(Agency).where(Agency.active.is_(True)).order_by(Agency.id)))
    by_id = {a.id: a for a in session.scalars(select(Agency))}
    ranked = sorted(((rank, a) for a in active if (rank := _rank(a, district, by_id)) is not None),
                    key=lambda ra: ra[0], reverse=True)
    if not ranked:
        raise NotFound(f"no active agency covers district {district}")
    if len(ranked) > 1 and ranked[0][0] == ranked[1][0]:
        raise Conflict(f"district {district} is covered equally by the agencies {ranked[0][1].code} and "
                       f"{ranked[1][1].code}: deactivate one or narrow its districts")
    return ranked[0][1]


def _clean_districts(code: str, districts) -> list[str]:
    if isinstance(districts, str):
        districts = [d for d in re.split(r"[;；,，\s]+", districts) if d]
    cleaned = []
    for d in districts or []:
        d = str(d).strip()
        if not DISTRICT_RE.match(d):
            raise InvalidInput(f"agency {code}: district {d!r} is not a 6-digit GB/T 2260 code")
        if d not in cleaned:
            cleaned.append(d)
    if not cleaned:
        raise InvalidInput(f"agency {code}: it must cover at least one district")
    return cleaned


def _check_parent(agency_id: int | None, code: str, districts: list[str], parent: Agency,
                  by_id: dict[int, Agency]) -> None:
    walk: Agency | None = parent
    while walk is not None:
        if walk.id == agency_id:
            raise InvalidInput(f"agency {code}: {parent.code} cannot be its parent (a cycle of parents)")
        walk = by_id.get(walk.parent_id) if walk.parent_id is not None else None
    outside = [d for d in districts if not any(region_covers(p, d) for p in parent.districts or [])]
    if outside:
        raise InvalidInput(f"agency {code}: districts {', '.join(outside)} lie outside its bureau "
                           f"{parent.code}'s ({', '.join(parent.districts or [])})")


def _check_overlap(session: Session, agency_id: int | None, code: str, districts: list[str], depth: int,
                   by_id: dict[int, Agency]) -> None:
    """No two active agencies at the same depth name the same coverage code (the register would be ambiguous)."""
    for other in session.scalars(select(Agency).where(Agency.active.is_(True)).order_by(Agency.id)):
        shared = sorted(set(other.districts or []) & set(districts))
        if other.id != agency_id and shared and _depth(other, by_id) == depth:
            raise Conflict(f"agency {code}: {', '.join(shared)} already covered by {other.code} "
                           f"({other.name}) at the same level")


def save_agency(session: Session, *, code: str, name: str, districts, parent: str | None = None,
                active: bool = True) -> tuple[Agency, str]:
    """Create or update the agency ``code``; returns it and ``created``, ``updated`` or ``unchanged``. Everything
    is checked before anything is written."""
    code, name = (code or "").strip(), (name or "").strip()
    if not CODE_RE.match(code):
        raise InvalidInput(f"agency code {code!r} must be 1–20 characters without spaces, brackets or a digit")
    if not name or len(name) > 200:
        raise InvalidInput(f"agency {code}: a name of 1–200 characters is required")
    cleaned = _clean_districts(code, districts)
    parent_row = get_agency(session, parent) if parent else None
    agency = session.scalar(select(Agency).where(Agency.code == code))
    values = {"name": name, "districts": cleaned, "parent_id": parent_row.id if parent_row else None,
              "active": bool(active)}
    if agency is not None and all(getattr(agency, k) == v for k, v in values.items()):
        return agency, "unchanged"
    named = session.scalar(select(Agency).where(Agency.name == name, Agency.code != code))
    if named is not None:
        raise Conflict(f"agency {code}: the name {name!r} belongs to agency {named.code}")
    by_id = {a.id: a for a in session.scalars(select(Agency))}
    agency_id = agency.id if agency is not None else None
    if parent_row is not None:
        _check_parent(agency_id, code, cleaned, parent_row, by_id)
    if active:
        depth = _depth(parent_row, by_id) + 1 if parent_row is not None else 0
        _check_overlap(session, agency_id, code, cleaned, depth, by_id)
    outcome = "updated" if agency is not None else "created"
    if agency is None:
        agency = Agency(code=code)
        session.add(agency)
    for k, v in values.items():
        setattr(agency, k, v)
    agency.updated_at = clock.now()
    session.flush()
    return agency, outcome


def _flag(value: str, where: str) -> bool:
    v = (value or "").strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InvalidInput(f"{where}: active {value!r} is not true or false")


def load_agencies(session: Session, path: str | Path) -> dict:
    """Save every agency of a CSV file (``code,name,parent,districts,active``), parents before stations;
    counts of created, updated and unchanged. Idempotent: loading the same file twice changes nothing."""
    path = Path(path)
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"code", "name", "parent", "districts"} - set(rows[0] if rows else {})
    if missing:
        raise InvalidInput(f"{path.name}: columns {', '.join(sorted(missing))} are missing")
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for n, row in sorted(enumerate(rows, start=2), key=lambda nr: bool((nr[1]["parent"] or "").strip())):
        where = f"{path.name} row {n}"
        try:
            _agency, outcome = save_agency(session, code=row["code"], name=row["name"], districts=row["districts"],
                                           parent=(row["parent"] or "").strip() or None,
                                           active=_flag(row.get("active", ""), where))
        except (InvalidInput, NotFound, Conflict) as exc:
            raise type(exc)(f"{where}: {exc.message}") from exc
        counts[outcome] += 1
    return counts


def _user(session: Session, username: str) -> AppUser:
    user = session.scalar(select(AppUser).where(AppUser.username == (username or "").strip()))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def assign_member(session: Session, username: str, code: str) -> AgencyMember:
    """Put ``username`` in the agency ``code`` (moving them from the one they were in)."""
    user, agency = _user(session, username), get_agency(session, code)
    member = session.get(AgencyMember, user.id)
    if member is None:
        member = AgencyMember(user_id=user.id, agency_id=agency.id, since=clock.now())
        session.add(member)
    elif member.agency_id != agency.id:
        member.agency_id, member.since = agency.id, clock.now()
    session.flush()
    return member


def agency_of_user(session: Session, username: str) -> Agency | None:
    """The agency ``username`` belongs to (None: none yet)."""
    return session.scalar(select(Agency).join(AgencyMember, AgencyMember.agency_id == Agency.id)
                          .join(AppUser, AppUser.id == AgencyMember.user_id)
                          .where(AppUser.username == (username or "").strip()))


def load_agency_folder(session: Session, folder: str | Path) -> dict:
    """``agencies.csv`` of ``folder`` (:func:`load_agencies`), then its ``agency_members.csv``
    (``username,agency``): each existing user without an agency is put in theirs; a user already in one stays
    there, a user who does not exist is skipped. Idempotent (the demo loads it at every ``regflow demo``)."""
    folder = Path(folder)
    out = {"agencies": load_agencies(session, folder / "agencies.csv"), "members_added": 0}
    members = folder / "agency_members.csv"
    if members.is_file():
        with members.open(encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f):
                user = session.scalar(select(AppUser).where(AppUser.username == (row["username"] or "").strip()))
                if user is not None and session.get(AgencyMember, user.id) is None:
                    assign_member(session, user.username, row["agency"])
                    out["members_added"] += 1
    return out


def list_agencies(session: Session) -> list[dict]:
    """Every agency with its parent's code and member count, bureaus first."""
    by_id = {a.id: a for a in session.scalars(select(Agency).order_by(Agency.id))}
    members: dict[int, int] = {}
    for agency_id in session.scalars(select(AgencyMember.agency_id)):
        members[agency_id] = members.get(agency_id, 0) + 1
    rows = [{"code": a.code, "name": a.name, "parent": by_id[a.parent_id].code if a.parent_id else None,
             "districts": list(a.districts or []), "active": a.active, "members": members.get(a.id, 0),
             "depth": _depth(a, by_id)} for a in by_id.values()]
    return sorted(rows, key=lambda r: (r["depth"], r["code"]))
