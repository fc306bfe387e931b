"""User administration commands: add a user, set their roles and groups, jurisdiction and activation, issue and
revoke API tokens, list users (see :mod:`engine.commands`). Administrators only; nobody removes their own
administrator role or deactivates their own account (:func:`engine.policy.check_administer_user`). The changes are
made by :mod:`engine.runtime.users`, which audits each on the system chain.

Inputs are plain values as an edge receives them: roles, groups and districts as a list or one comma-separated
text (a full-width comma and, for districts, spaces separate too)."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import policy
from engine.errors import Conflict, InvalidInput, NotFound
from engine.policy import Actor
from engine.runtime import users
from engine.runtime.models import ApiToken, AppUser

#: the longest user name, group name and token name
NAME_MAX = 120
_DISTRICT = re.compile(r"^\d{6}$")


def _items(value: Any, separators: str = ",，") -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        for sep in separators[1:]:
            value = value.replace(sep, separators[0])
        value = value.split(separators[0])
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidInput.fmt("Give a list of names or one comma-separated text.")
    return sorted({v.strip() for v in value if v.strip()})


def parse_roles(value: Any) -> list[str]:
    roles = _items(value)
    unknown = [r for r in roles if r not in users.ROLES]
    if unknown:
        raise InvalidInput.fmt("Unknown role(s): {roles}. The roles are: {all}.", roles=", ".join(unknown),
                               all=", ".join(users.ROLES), details={"field": "roles"})
    return roles


def parse_groups(value: Any) -> list[str]:
    groups = _items(value)
    too_long = [g for g in groups if len(g) > NAME_MAX]
    if too_long:
        raise InvalidInput.fmt("Group names have at most 120 characters: {names}.", names=", ".join(too_long),
                               details={"field": "groups"})
    return groups


def parse_districts(value: Any) -> list[str]:
    codes = _items(value, ",， ")
    bad = [c for c in codes if not _DISTRICT.match(c)]
    if bad:
        raise InvalidInput.fmt("Jurisdiction: {codes} is not a 6-digit district code (empty: every district).",
                               codes=", ".join(c[:20] for c in bad), details={"field": "jurisdiction"})
    return codes


def _existing(session: Session, username: Any) -> AppUser:
    user = session.scalar(select(AppUser).where(AppUser.username == username)) if isinstance(username, str) else None
    if user is None:
        raise NotFound.fmt("User {name} does not exist.", name=str(username)[:NAME_MAX])
    return user


def add(session: Session, actor: Actor, username: Any, password: Any, *, roles: Any = None, groups: Any = None,
        jurisdiction: Any = None, display_name: Any = None) -> AppUser:
    """Add an active user with a password (checked by the password policy of :func:`engine.runtime.users.add_user`),
    roles, groups (created when new) and a jurisdiction (district codes; empty: every district)."""
    policy.check_roles(actor, policy.ADMINS)
    username = username.strip() if isinstance(username, str) else ""
    if not username:
        raise InvalidInput.fmt("Enter a user name.", details={"field": "username"})
    if len(username) > NAME_MAX or any(c.isspace() for c in username):
        raise InvalidInput.fmt("The user name must be at most 120 characters without spaces.",
                               details={"field": "username"})
    role_list, group_list, districts = parse_roles(roles), parse_groups(groups), parse_districts(jurisdiction)
    policy.check_administer_user(actor, username, roles=role_list)
    if session.scalar(select(AppUser.id).where(AppUser.username == username)) is not None:
        raise Conflict.fmt("A user named “{name}” already exists.", name=username)
    name = display_name.strip() if isinstance(display_name, str) else ""
    user = users.add_user(session, username, password if isinstance(password, str) else "", role_list, group_list,
                          actor=actor.username, display_name=name[:NAME_MAX] or None)
    if districts:
        users.set_jurisdiction(session, username, districts, actor=actor.username)
    return user


def set_roles_and_groups(session: Session, actor: Actor, username: Any, roles: Any, groups: Any) -> AppUser:
    """Replace a user's roles and groups (an administrator keeps their own administrator role)."""
    policy.check_roles(actor, policy.ADMINS)
    user = _existing(session, username)
    role_list, group_list = parse_roles(roles), parse_groups(groups)
    policy.check_administer_user(actor, user.username, roles=role_list)
    return users.set_roles_and_groups(session, user.username, role_list, group_list, actor=actor.username)


def set_jurisdiction(session: Session, actor: Actor, username: Any, districts: Any) -> AppUser:
    """Replace a user's jurisdiction: district codes, empty for every district."""
    policy.check_roles(actor, policy.ADMINS)
    user = _existing(session, username)
    codes = parse_districts(districts)
    policy.check_administer_user(actor, user.username)
    return users.set_jurisdiction(session, user.username, codes, actor=actor.username)


def set_active(session: Session, actor: Actor, username: Any, active: Any) -> AppUser:
    """Activate (``True``, ``"1"``) or deactivate (``False``, ``"0"``) an account; nobody deactivates their own."""
    policy.check_roles(actor, policy.ADMINS)
    user = _existing(session, username)
    if active in ("0", "1"):
        active = active == "1"
    if not isinstance(active, bool):
        raise InvalidInput.fmt("Say whether the account is active (1) or not (0).", details={"field": "active"})
    policy.check_administer_user(actor, user.username, active=active)
    return users.set_active(session, user.username, active, actor=actor.username)


def issue_token(session: Session, actor: Actor, username: Any, name: Any) -> str:
    """A new API token for the user, named after what uses it; the plain token is returned once, never stored."""
    policy.check_roles(actor, policy.ADMINS)
    user = _existing(session, username)
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise InvalidInput.fmt("Give the token a name (what machine or script uses it).", details={"field": "name"})
    if len(name) > NAME_MAX:
        raise InvalidInput.fmt("The token name has at most 120 characters.", details={"field": "name"})
    policy.check_administer_user(actor, user.username)
    return users.issue_token(session, user.username, name, actor=actor.username)


def revoke_token(session: Session, actor: Actor, token_id: int) -> str:
    """Revoke an API token; returns its owner's user name."""
    policy.check_roles(actor, policy.ADMINS)
    row = session.execute(select(ApiToken.revoked_at, AppUser.username).join(AppUser, AppUser.id == ApiToken.user_id)
                          .where(ApiToken.id == token_id)).first()
    if row is None or row.revoked_at is not None:
        raise NotFound.fmt("API token {id} does not exist or is already revoked.", id=token_id)
    policy.check_administer_user(actor, row.username)
    users.revoke_token(session, token_id, actor=actor.username)
    return row.username


def list_users(session: Session, actor: Actor) -> list[tuple[AppUser, list[str]]]:
    """Every user (by user name) with their group names."""
    policy.check_roles(actor, policy.ADMINS)
    return users.list_users(session)


def reset_password(session: Session, actor: Actor, username: Any, password: Any) -> AppUser:
    """An administrator sets a new password for ``username`` (the password policy applies; every session of the
    account ends; audited ``password_reset``, or ``password_changed`` for the administrator's own)."""
    policy.check_roles(actor, policy.ADMINS)
    user = _existing(session, username)
    if not isinstance(password, str):
        raise InvalidInput.fmt("Give the new password as text.", details={"field": "password"})
    users.set_password(session, user.username, password, actor=actor.username)
    return user
