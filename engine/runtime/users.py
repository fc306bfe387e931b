"""Users, system roles and groups, with argon2-hashed passwords. Every change is audited.

Every password set (:func:`add_user`, :func:`set_password`) passes the policy of :mod:`.passwords`. A user's
``session_version`` is carried by their web sessions: :func:`end_sessions` (sign-out), :func:`set_password`,
:func:`set_active` and a change of roles or groups bump it, which ends the user's sessions everywhere."""
from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.config import load_settings
from engine.errors import Conflict, InvalidInput, NotFound

from . import audit, clock, passwords
from .models import ApiToken, AppGroup, AppUser, AuditEvent, UserGroup

ROLES = ("designer", "officer", "team_leader", "supervisor", "auditor", "admin")
#: the longest user name (the column's length); longer names are refused before anything else is done
NAME_MAX = 120


def _split(text: str | list[str] | None) -> list[str]:
    if not text:
        return []
    items = text if isinstance(text, list) else text.split(",")
    return sorted({i.strip() for i in items if i and i.strip()})


def _ensure_groups(session: Session, names: list[str]) -> list[AppGroup]:
    groups = []
    for name in names:
        g = session.scalars(select(AppGroup).where(AppGroup.name == name)).first()
        if g is None:
            g = AppGroup(name=name, kind="department")
            session.add(g)
            session.flush()
        groups.append(g)
    return groups


def _min_length(min_length: int | None) -> int:
    return load_settings().password_min_length if min_length is None else min_length


def add_user(session: Session, username: str, password: str | None, roles, groups, *, actor: str = "system",
             display_name: str | None = None, min_length: int | None = None) -> AppUser:
    """A new active user. ``min_length``: the policy's shortest password (default ``REGFLOW_PASSWORD_MIN_LENGTH``).
    ``password=None`` (internal callers only: the simulated office): an account nobody signs in to, with no hash —
    a sign-in fails as for an unknown name until an administrator sets a password."""
    username = (username or "").strip()
    if not username:
        raise InvalidInput("user name is empty")
    if len(username) > NAME_MAX:
        raise InvalidInput.fmt("The user name must be at most 120 characters without spaces.",
                               details={"field": "username"})
    if password is not None:
        passwords.check(password, username, _min_length(min_length))
    role_list, group_list = _split(roles), _split(groups)
    unknown = [r for r in role_list if r not in ROLES]
    if unknown:
        raise InvalidInput(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    if session.scalars(select(AppUser).where(AppUser.username == username)).first():
        raise Conflict(f"user {username!r} already exists")
    user = AppUser(username=username, display_name=display_name or username, roles=role_list, active=True,
                   password_hash=passwords.hash_password(password) if password is not None else None,
                   created_at=clock.now())
    session.add(user)
    session.flush()
    for g in _ensure_groups(session, group_list):
        session.add(UserGroup(user_id=user.id, group_id=g.id))
    audit.system_event(session, "user_added", actor, username=username, roles=role_list, groups=group_list)
    return user


def set_roles_and_groups(session: Session, username: str, roles, groups, *, actor: str) -> AppUser:
    user = get_user(session, username)
    role_list, group_list = _split(roles), _split(groups)
    unknown = [r for r in role_list if r not in ROLES]
    if unknown:
        raise InvalidInput(f"unknown role(s) {', '.join(unknown)}")
    before = {"roles": list(user.roles), "groups": sorted(groups_of(session, username))}
    if before != {"roles": role_list, "groups": group_list}:
        _bump(user)  # the user signs in again under the new roles
    user.roles = role_list
    session.execute(delete(UserGroup).where(UserGroup.user_id == user.id))
    for g in _ensure_groups(session, group_list):
        session.add(UserGroup(user_id=user.id, group_id=g.id))
    audit.system_event(session, "user_roles_changed", actor, username=username, before=before,
                       after={"roles": role_list, "groups": group_list})
    return user


def get_user(session: Session, username: str) -> AppUser:
    user = session.scalars(select(AppUser).where(AppUser.username == username)).first()
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def groups_of(session: Session, username: str) -> set[str]:
    return set(session.scalars(select(AppGroup.name).join(UserGroup, UserGroup.group_id == AppGroup.id)
                               .join(AppUser, AppUser.id == UserGroup.user_id).where(AppUser.username == username)))


def find_user(session: Session, username) -> AppUser | None:
    """The user named ``username``, or ``None`` (also for a name that is not text or is over-long)."""
    if not isinstance(username, str) or not username or len(username) > NAME_MAX:
        return None
    return session.scalars(select(AppUser).where(AppUser.username == username)).first()


def record_sign_in(session: Session, user: AppUser | None, checked_hash: str | None, ok: bool, password: str, *,
                   source: str, address: str | None = None, audit_success: bool = True) -> AppUser | None:
    """The outcome of a password checked against ``checked_hash`` (read before the check): the user when it
    matched and the account is still active with that hash, else ``None``. An existing account's sign-in or
    failed attempt goes to the system audit chain; a name nobody has writes nothing there (a stranger cannot
    fill the chain with names). ``audit_success=False``: the caller audits what the success led to (a password
    change)."""
    valid = bool(ok and user is not None and user.active and user.password_hash
                 and user.password_hash == checked_hash)
    if user is not None and (audit_success or not valid):
        where = {"source": source} | ({"address": address} if address else {})
        audit.system_event(session, "sign_in" if valid else "sign_in_failed", user.username, **where)
    if not valid:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


def authenticate(session: Session, username: str, password: str, *, source: str = "cli") -> AppUser | None:
    """Check a password (no throttling: for trusted callers; the web signs in through :mod:`.signin`); the sign-in
    or the failed attempt of an existing account goes to the system audit chain.

    Returns ``None`` on failure (rather than raising) so that the caller still commits the audit row."""
    user = find_user(session, username)
    checked = user.password_hash if user is not None else None
    return record_sign_in(session, user, checked, passwords.verify(checked, password), password, source=source)


def _bump(user: AppUser) -> int:
    user.session_version = (user.session_version or 0) + 1
    return user.session_version


def set_password(session: Session, username: str, password: str, *, actor: str,
                 min_length: int | None = None) -> int:
    """A new password (checked by the policy) for ``username``, set by themselves (audited ``password_changed``) or
    by an administrator (``password_reset``). Ends the user's sessions; returns the new session version, which the
    caller gives the session it keeps."""
    user = get_user(session, username)
    passwords.check(password, user.username, _min_length(min_length))
    user.password_hash = passwords.hash_password(password)
    version = _bump(user)
    audit.system_event(session, "password_changed" if actor == user.username else "password_reset", actor,
                       username=user.username)
    return version


def end_sessions(session: Session, user_id: int, *, source: str = "web") -> None:
    """Sign-out: every session of the user ends (audited ``sign_out``)."""
    user = session.get(AppUser, user_id)
    if user is None:
        return
    _bump(user)
    audit.system_event(session, "sign_out", user.username, source=source)


_DISTRICT = re.compile(r"^\d{6}$")


def set_jurisdiction(session: Session, username: str, districts, *, actor: str) -> AppUser:
    """The districts (6-digit codes) whose entities the user sees; empty means every district."""
    user = get_user(session, username)
    codes = _split(districts)
    bad = [c for c in codes if not _DISTRICT.match(c)]
    if bad:
        raise InvalidInput(f"jurisdiction: {', '.join(bad)} is not a 6-digit district code")
    before = list(user.jurisdiction or [])
    user.jurisdiction = codes
    audit.system_event(session, "user_jurisdiction_changed", actor, username=username, before=before, after=codes)
    return user


def set_active(session: Session, username: str, active: bool, *, actor: str) -> AppUser:
    user = get_user(session, username)
    user.active = bool(active)
    _bump(user)
    audit.system_event(session, "user_activated" if active else "user_deactivated", actor, username=username)
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, username: str, name: str, *, actor: str) -> str:
    """A new bearer token for ``username``; the plain token is returned once and never stored."""
    user = get_user(session, username)
    name = (name or "").strip() or "token"
    token = "rf_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name[:120], token_sha256=_token_digest(token), created_at=clock.now()))
    audit.system_event(session, "api_token_issued", actor, username=username, name=name)
    return token


def revoke_token(session: Session, token_id: int, *, actor: str) -> None:
    tok = session.get(ApiToken, token_id)
    if tok is None or tok.revoked_at is not None:
        raise NotFound(f"API token {token_id} not found or already revoked")
    tok.revoked_at = clock.now()
    audit.system_event(session, "api_token_revoked", actor, token_id=token_id)


def user_for_token(session: Session, token: str) -> AppUser | None:
    if not token or not token.startswith("rf_"):
        return None
    row = session.execute(select(AppUser).join(ApiToken, ApiToken.user_id == AppUser.id)
                          .where(ApiToken.token_sha256 == _token_digest(token), ApiToken.revoked_at.is_(None),
                                 AppUser.active.is_(True))).scalars().first()
    return row


# --------------------------------------------------------------------------- read side for the admin pages
def list_users(session: Session) -> list[tuple[AppUser, list[str]]]:
    """Every user (by user name) with their group names, in two queries."""
    users = list(session.scalars(select(AppUser).order_by(AppUser.username)))
    groups: dict[int, list[str]] = {}
    for user_id, name in session.execute(select(UserGroup.user_id, AppGroup.name)
                                         .join(AppGroup, AppGroup.id == UserGroup.group_id).order_by(AppGroup.name)):
        groups.setdefault(user_id, []).append(name)
    return [(u, groups.get(u.id, [])) for u in users]


def list_groups(session: Session) -> list[tuple[AppGroup, list[str]]]:
    """Every group (by name) with the user names of its members."""
    members: dict[int, list[str]] = {}
    for group_id, username in session.execute(select(UserGroup.group_id, AppUser.username)
                                              .join(AppUser, AppUser.id == UserGroup.user_id)
                                              .order_by(AppUser.username)):
        members.setdefault(group_id, []).append(username)
    return [(g, members.get(g.id, [])) for g in session.scalars(select(AppGroup).order_by(AppGroup.name))]


def tokens_of(session: Session, username: str) -> list[ApiToken]:
    """The user's API tokens, newest first (revoked ones included; the plain token is never stored)."""
    user = get_user(session, username)
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def system_events(session: Session, *, kind: str | None = None, actor: str | None = None, limit: int = 50,
                  offset: int = 0):
    """A page of the system audit chain (sign-ins, user and role changes, deployments, model activations),
    newest first, by the ``(chain, seq)`` index. Returns ``(rows, has_next)``."""
    q = select(AuditEvent).where(AuditEvent.chain == audit.SYSTEM_CHAIN)
    if kind:
        q = q.where(AuditEvent.kind == kind)
    if actor:
        q = q.where(AuditEvent.actor == actor)
    rows = list(session.scalars(q.order_by(AuditEvent.seq.desc()).offset(offset).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def system_event_kinds(session: Session) -> list[str]:
    """The kinds present in the system chain (for the filter menu)."""
    return list(session.scalars(select(AuditEvent.kind).where(AuditEvent.chain == audit.SYSTEM_CHAIN)
                                .distinct().order_by(AuditEvent.kind)))
