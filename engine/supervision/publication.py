"""Publication records and the public feed (inspection plans and results, penalties; "one public").

A record names what is published (``plan`` | ``result`` | ``penalty``), the entity, a payload with personal
data masked *before* it is stored, the event its deadline runs from and ``due_by`` = 20 working days after
it (configurable). ``published_at`` is set when it goes out (at once with ``publish=True``, or later by
:func:`publish`); a revoked penalty is withdrawn (``withdrawn_at`` + note; due within 3 working days of
the revocation). The public feed lists published, not withdrawn records. Warnings alone are not
published (:func:`penalty_is_published`). Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound
from scoring.uscc import is_valid_uscc

from . import calendar
from .loop_models import PUBLICATION_KINDS, Publication

PUBLISH_WITHIN_WORKDAYS = 20
WITHDRAW_WITHIN_WORKDAYS = 3

#: Keys whose values are personal data of natural persons (masked wherever they appear in a payload).
PERSONAL_KEYS = frozenset({
    "legal_representative", "legal_rep", "person_name", "contact", "contact_name", "recipient", "name_of_person",
    "phone", "mobile", "telephone", "id_number", "id_card", "identity_number", "home_address", "email",
    "reporter", "complainant", "handlers", "investigators", "presiding_officer",
    # added for the public pages (web/public): more spellings of the same personal data
    "person", "persons", "natural_person", "operator_name", "owner_name", "principal", "person_in_charge",
    "legal_person", "agent", "applicant", "party_name", "mobile_phone", "phone_number", "cellphone", "tel",
    "id_no", "id_card_number", "identity_card", "citizen_id", "address_of_person",
})
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_EMAIL_RE = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+)")
#: a mobile number written in groups: 138-1234-5678, 138 1234 5678, +86 138 1234 5678
_MOBILE_GROUPED_RE = re.compile(r"(?<![\d+])((?:\+?86[\s-]?)?1[3-9]\d)[\s-]\d{4}[\s-](\d{4})(?!\d)")
#: a personal name (2-4 Chinese characters, not followed by more) after a label that names a natural
#: person: 法定代表人：张三丰, 负责人为李四, 投诉人王五
_PERSON_LABELS = ("法定代表人", "负责人", "经营者", "联系人", "投诉人", "举报人", "申请人", "委托代理人", "代理人",
                  "当事人", "姓名", "户主", "业主")
_LABELLED_NAME_RE = re.compile(r"(" + "|".join(_PERSON_LABELS) + r")(\s*(?:[:：]|为|是)?\s*)"
                               r"([\u4e00-\u9fff][\u4e00-\u9fff·]{1,3})(?![\u4e00-\u9fff*])")
#: numbers masked by an earlier pass (masking twice must change nothing)
_ALREADY_MASKED_RE = re.compile(r"(?<!\d)(?:\d{6}\*{8}\d{3}[\dXx]|1[3-9]\d(?:\*{4}|-\*{4}-)\d{4})(?!\d)")
_BIRTH_DATE_RE = re.compile(r"^\d{6}(?:18|19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")


def _is_entity_code(text: str) -> bool:
    """A valid USCC (entity code, public) that cannot be an ID-card number (no plausible birth date);
    many USCCs are 17 digits plus a digit or X, the same shape as an ID-card number."""
    return is_valid_uscc(text) and not _BIRTH_DATE_RE.match(text)


def _mask_id(m: re.Match) -> str:
    return m.group(0) if _is_entity_code(m.group(0)) else m.group(1) + "********" + m.group(2)


def _mask_name(name: str) -> str:
    return name[0] + "*" if len(name) == 2 else name[0] + "*" * (len(name) - 2) + name[-1]


def _mask_text(value: str) -> str:
    """Keep first and last character: 张三丰 → 张*丰, 张三 → 张*; numbers keep their ends."""
    value = str(value)
    if (_ID_RE.search(value) or _MOBILE_RE.search(value) or _EMAIL_RE.search(value)
            or _MOBILE_GROUPED_RE.search(value) or _LABELLED_NAME_RE.search(value)
            or _ALREADY_MASKED_RE.search(value)):
        return _mask_free_text(value)
    if len(value) <= 1:
        return "*"
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


def _mask_free_text(value: str) -> str:
    value = _ID_RE.sub(_mask_id, value)
    value = _MOBILE_RE.sub(lambda m: m.group(1) + "****" + m.group(2), value)
    value = _MOBILE_GROUPED_RE.sub(lambda m: m.group(1) + "-****-" + m.group(2), value)
    value = _LABELLED_NAME_RE.sub(lambda m: m.group(1) + m.group(2) + _mask_name(m.group(3)), value)
    return _EMAIL_RE.sub(lambda m: m.group(1) + "***" + m.group(2), value)


def mask(value: Any, key: str | None = None) -> Any:
    """Mask personal data: values under :data:`PERSONAL_KEYS`, and ID-card numbers, mobile numbers and
    e-mail addresses anywhere in text. Entity names and USCCs are public and stay."""
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v, key) for v in value]
    personal = key is not None and key.lower() in PERSONAL_KEYS
    if isinstance(value, str):
        return _mask_text(value) if personal else _mask_free_text(value)
    if personal and value is not None and not isinstance(value, bool):
        return _mask_text(str(value))
    return value


def penalty_is_published(decision_type: str | None, penalties: list | None) -> bool:
    """Penalties are published; a warning alone and no-penalty decisions are not."""
    if decision_type != "penalty":
        return False
    return bool([p for p in (penalties or []) if p != "warning"])


def record(session: Session, *, kind: str, title: str, payload: dict, now: datetime, uscc: str | None = None,
           ref: str | None = None, event_at: datetime | None = None, instance_id: int | None = None,
           task_key: str | None = None, publish: bool = False,
           within_workdays: int = PUBLISH_WITHIN_WORKDAYS) -> Publication:
    """A publication due ``within_workdays`` working days after ``event_at`` (default now)."""
    if instance_id is not None and task_key is not None:
        found = session.scalars(select(Publication).where(Publication.source_instance_id == instance_id,
                                                          Publication.source_task == task_key)).first()
        if found is not None:
            return found
    if kind not in PUBLICATION_KINDS:
        raise InvalidInput(f"publication kind {kind!r} is not one of {', '.join(PUBLICATION_KINDS)}")
    if not isinstance(payload, dict):
        raise InvalidInput("publication payload must be an object")
    at = event_at or now
    due = calendar.refresh(session).add_workdays(at, within_workdays)
    p = Publication(kind=kind, uscc=uscc, ref=ref, title=title[:200], payload=mask(payload), event_at=at,
                    due_by=due.at, due_provisional=due.provisional, source_instance_id=instance_id,
                    source_task=task_key, created_at=now, published_at=now if publish else None)
    session.add(p)
    session.flush()
    return p


def get(session: Session, publication_id: int) -> Publication:
    p = session.get(Publication, int(publication_id))
    if p is None:
        raise NotFound(f"publication {publication_id} not found")
    return p


def publish(session: Session, publication_id: int, now: datetime) -> Publication:
    p = get(session, publication_id)
    if p.published_at is None:
        p.published_at = now
        session.flush()
    return p


def withdraw(session: Session, publication_id: int, note: str, now: datetime,
             revoked_at: datetime | None = None) -> Publication:
    """Withdraw (e.g. the penalty was revoked on appeal); ``withdraw_due`` = 3 working days after the
    revocation. Idempotent."""
    if not note:
        raise InvalidInput("a withdrawal needs a note saying why")
    p = get(session, publication_id)
    if p.withdrawn_at is None:
        p.withdraw_due = calendar.refresh(session).add_workdays(revoked_at or now, WITHDRAW_WITHIN_WORKDAYS).at
        p.withdrawn_at, p.withdraw_note = now, note
        session.flush()
    return p


def overdue(session: Session, now: datetime) -> list[Publication]:
    """Records not yet published whose ``due_by`` has passed."""
    return list(session.scalars(select(Publication).where(Publication.published_at.is_(None),
                                                          Publication.due_by < now).order_by(Publication.due_by)))


def public_feed(session: Session, *, kind: str | None = None, uscc: str | None = None, limit: int = 50,
                offset: int = 0) -> list[dict]:
    """What the public sees: published, not withdrawn, newest first (payloads are already masked)."""
    q = select(Publication).where(Publication.published_at.is_not(None), Publication.withdrawn_at.is_(None))
    if kind:
        q = q.where(Publication.kind == kind)
    if uscc:
        q = q.where(Publication.uscc == uscc)
    q = q.order_by(Publication.published_at.desc(), Publication.id.desc()).limit(limit).offset(offset)
    return [{"id": p.id, "kind": p.kind, "uscc": p.uscc, "title": p.title, "ref": p.ref, "payload": p.payload,
             "published_at": p.published_at.isoformat()} for p in session.scalars(q)]


def public_record(session: Session, publication_id: int) -> dict:
    """One record as the public may see it: a published record with its (masked) payload, or — once
    withdrawn — only what was withdrawn, when and why. Unpublished or unknown records are :class:`NotFound`.
    The payload is masked again on the way out, so a row written without :func:`record` leaks nothing."""
    p = session.get(Publication, int(publication_id))
    if p is None or p.published_at is None:
        raise NotFound(f"publication {publication_id} not found")
    out = {"id": p.id, "kind": p.kind, "uscc": p.uscc, "title": mask(p.title), "ref": p.ref,
           "published_at": p.published_at.isoformat(), "withdrawn": p.withdrawn_at is not None}
    if p.withdrawn_at is not None:
        out.update(withdrawn_at=p.withdrawn_at.isoformat(), withdraw_note=p.withdraw_note or "")
    else:
        out["payload"] = mask(p.payload or {})
    return out
