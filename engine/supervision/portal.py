"""The entity portal's access codes and entity sessions: how a business proves it is the party of a document.

**A code** is ten characters of Crockford's base-32 alphabet (no I, L, O or U: read aloud or typed from paper
it cannot be mistaken; typed ``I``/``L`` count as ``1`` and ``O`` as ``0``), printed as ``XXXXX-XXXXX`` on the
document it was served (50 bits: with the sign-in throttle below nobody guesses one). It is shown once, when it
is issued, and stored only as HMAC-SHA256 of the USCC and the code under the installation's secret
(:func:`engine.config.app_secret`): the database alone signs nobody in, and a code is worth nothing with
another USCC. **One live code per document**: issuing another for the same document (or, without a document,
for the same USCC) revokes the earlier one. A code expires after ``ttl_days`` (``REGFLOW_PORTAL_CODE_DAYS``);
it may be revoked; it records its first use but stays usable until it expires, as a business answers a
document more than once (a report, then an extension request).

**Sign-in** (:func:`engine.commands.portal.sign_in`) is throttled like the staff's
(:mod:`engine.runtime.throttle`, :func:`sign_in_keys`): counted before it is checked, per USCC from this
address, per USCC from anywhere (its wait at most :data:`USCC_CAP_S`, so strangers cannot shut a business out)
and per address whatever the USCC; the wait grows and is always bounded — never a lock-out.

**An entity session** is separate from the staff's: it names the code it signed in with, the code's
``session_version`` and the sign-in time, and is valid while the code is neither revoked nor expired, its
version unchanged (sign-out and revocation bump it, ending every session of the code) and it is younger than
``REGFLOW_PORTAL_SESSION_HOURS`` (2 h by default).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.config import app_secret, load_settings
from engine.errors import InvalidInput, NotFound
from engine.runtime import audit, clock
from engine.runtime.throttle import Key, Rule
from scoring.uscc import is_valid_uscc

from .document_models import Document
from .portal_models import PortalAccessCode

#: Crockford's base 32: digits and letters without I, L, O, U
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
#: what a person may type for a character of the alphabet
_READS_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
#: the longest wait strangers failing on one USCC from many addresses impose on the business
USCC_CAP_S = 60.0
#: the longest a typed code or USCC may be before it is refused unread
INPUT_MAX = 40
PORTAL_ACTOR_PREFIX = "entity:"


def normalise_uscc(raw: object) -> str | None:
    """The USCC in upper case without surrounding spaces, or ``None`` when it is not a valid USCC."""
    if not isinstance(raw, str) or len(raw) > INPUT_MAX:
        return None
    value = raw.strip().upper()
    return value if is_valid_uscc(value) else None


def normalise_code(raw: object) -> str | None:
    """The code as stored in the hash (upper case, no spaces or hyphens, look-alikes read as digits), or
    ``None`` when it cannot be a code."""
    if not isinstance(raw, str) or len(raw) > INPUT_MAX:
        return None
    value = "".join(raw.split()).replace("-", "").upper().translate(_READS_AS)
    if len(value) != CODE_LENGTH or any(c not in ALPHABET for c in value):
        return None
    return value


def format_code(code: str) -> str:
    half = CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def code_hash(key: str, uscc: str, code: str) -> str:
    return hmac.new(key.encode(), f"portal-code\x00{uscc}\x00{code}".encode(), hashlib.sha256).hexdigest()


def entity_actor(uscc: str) -> str:
    """The name a business acts under in the audit log and the instances' history."""
    return PORTAL_ACTOR_PREFIX + uscc


def _key(key: str | None) -> str:
    return key if key is not None else app_secret(load_settings())


def issue_access_code(session: Session, *, uscc: str, document_id: int | None = None, ttl_days: int = 60,
                      now: datetime | None = None, issued_by: str = "system", key: str | None = None,
                      events: list | None = None) -> str:
    """A new code for ``uscc`` (printed on document ``document_id``, or on none), valid ``ttl_days``; returns the
    code as it is printed (``XXXXX-XXXXX``), which nobody can read back later. The earlier live code of the same
    document (or, without one, the USCC's earlier document-less code) is revoked. Audited on the system chain
    (never the code) — or, given ``events`` (a step issuing the document), as an event the step writes to its
    instance's chain."""
    clean = normalise_uscc(uscc)
    if clean is None:
        raise InvalidInput.fmt("{uscc} is not a valid unified social credit code.", uscc=str(uscc)[:INPUT_MAX])
    if not isinstance(ttl_days, int) or not 1 <= ttl_days <= 366:
        raise InvalidInput.fmt("A code is valid for 1 to 366 days.")
    now = now or clock.now()
    number = None
    if document_id is not None:
        doc = session.get(Document, document_id)
        if doc is None:
            raise NotFound.fmt("Document {id} not found.", id=document_id)
        if doc.uscc and doc.uscc != clean:
            raise InvalidInput.fmt("Document {number} is about {other}, not {uscc}.", number=doc.number,
                                   other=doc.uscc, uscc=clean)
        number = doc.number
    same = (PortalAccessCode.document_id == document_id if document_id is not None
            else PortalAccessCode.document_id.is_(None))
    session.execute(update(PortalAccessCode)
                    .where(PortalAccessCode.uscc == clean, same, PortalAccessCode.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_reason="replaced by a new code",
                            session_version=PortalAccessCode.session_version + 1)
                    .execution_options(synchronize_session=False))
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    row = PortalAccessCode(uscc=clean, document_id=document_id, code_hash=code_hash(_key(key), clean, code),
                           issued_at=now, issued_by=issued_by, expires_at=now + timedelta(days=ttl_days),
                           session_version=1)
    session.add(row)
    session.flush()
    detail = {"code_id": row.id, "uscc": clean, "document": number,
              "expires_at": row.expires_at.isoformat(timespec="seconds")}
    if events is not None:
        events.append(audit.Event("portal_code_issued", issued_by, detail=detail, at=now))
    else:
        audit.system_event(session, "portal_code_issued", issued_by, **detail)
    return format_code(code)


def check_access_code(session: Session, *, uscc: str, code: str, now: datetime | None = None,
                      key: str | None = None) -> PortalAccessCode | None:
    """The live code ``code`` of ``uscc`` (its first use recorded), or ``None``: wrong, expired or revoked."""
    clean_uscc, clean_code = normalise_uscc(uscc), normalise_code(code)
    if clean_uscc is None or clean_code is None:
        return None
    now = now or clock.now()
    row = session.scalars(select(PortalAccessCode)
                          .where(PortalAccessCode.code_hash == code_hash(_key(key), clean_uscc, clean_code))).first()
    if row is None or row.uscc != clean_uscc or row.revoked_at is not None or row.expires_at <= now:
        return None
    if row.used_at is None:
        row.used_at = now
    return row


def revoke(session: Session, code_id: int, *, by: str, reason: str, now: datetime | None = None) -> PortalAccessCode:
    """Revoke a code: it signs nobody in any more and every session opened with it ends. Audited."""
    row = session.get(PortalAccessCode, code_id)
    if row is None:
        raise NotFound.fmt("Access code {id} not found.", id=code_id)
    if row.revoked_at is None:
        row.revoked_at, row.revoked_reason = now or clock.now(), reason[:200]
        row.session_version += 1
        audit.system_event(session, "portal_code_revoked", by, code_id=row.id, uscc=row.uscc, reason=reason[:200])
    return row


def end_sessions(session: Session, code_id: int) -> None:
    """Sign-out: every entity session opened with this code ends."""
    session.execute(update(PortalAccessCode).where(PortalAccessCode.id == code_id)
                    .values(session_version=PortalAccessCode.session_version + 1))


@dataclass(frozen=True)
class EntitySession:
    """What an entity session holds (the edge keeps it in its signed cookie)."""

    code_id: int
    uscc: str
    version: int
    signed_in_at: int  # seconds since the epoch


def session_valid(session: Session, held: EntitySession, *, now: datetime, max_hours: float) -> bool:
    """Is this entity session still valid (see the module's docstring)?"""
    row = session.get(PortalAccessCode, held.code_id)
    if row is None or row.uscc != held.uscc or row.session_version != held.version:
        return False
    if row.revoked_at is not None or row.expires_at <= now:
        return False
    age = now.timestamp() - held.signed_in_at
    return 0 <= age <= max_hours * 3600


def sign_in_keys(uscc: str | None, address: str, *, free: int, max_delay_s: float) -> list[Key]:
    """The throttle counters a code sign-in for ``uscc`` (``None``: not a valid USCC) from ``address`` is
    charged to (see the module's docstring)."""
    keys = [Key(Rule("portal_address", 4 * free, max_delay_s), address)]
    if uscc:
        keys += [Key(Rule("portal_uscc", 2 * free, min(USCC_CAP_S, max_delay_s)), uscc),
                 Key(Rule("portal_uscc_address", free, max_delay_s, forgive_on_success=True), f"{uscc}\x00{address}")]
    return keys
