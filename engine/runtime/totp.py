"""The second factor of a sign-in: time-based one-time codes (TOTP, RFC 6238, with ``pyotp``).

A user *enrols* by adding the secret shown to an authenticator app (as text or as its ``otpauth://`` URI) and
typing the code the app shows: :func:`begin_enrolment` keeps a secret (``totp_secret``), :func:`accept` of a good
code confirms it (``totp_enabled_at``). From then on every sign-in asks for a code after the password
(:mod:`.signin`). Users holding a role named by ``REGFLOW_TWO_FACTOR_ROLES`` must enrol at their next sign-in.

A code is accepted one 30-second step either side of the server's time (clocks drift) and only once: the step of
the last accepted code is kept (``totp_last_step``), and a code of that step or an earlier one is refused, so a
code seen over a shoulder or replayed from a log cannot be used again. An administrator's :func:`reset` forgets
the second factor (a lost phone): the user enrols again at the next sign-in.
"""
from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
from sqlalchemy.orm import Session

from engine.errors import Conflict

from . import audit, clock, users
from .models import AppUser

ISSUER = "regflow"
#: steps (of 30 s) accepted either side of the server's time
DRIFT_STEPS = 1
CODE_DIGITS = 6


def roles_from_setting(text: str | None) -> frozenset[str]:
    """The roles named by ``REGFLOW_TWO_FACTOR_ROLES`` (comma-separated; empty: none)."""
    return frozenset(r.strip() for r in (text or "").split(",") if r.strip())


def enrolled(user: AppUser) -> bool:
    return bool(user.totp_secret and user.totp_enabled_at is not None)


def required(user: AppUser, roles: frozenset[str]) -> bool:
    """Whether ``user`` must sign in with a second factor (holds one of ``roles``)."""
    return bool(roles.intersection(user.roles or ()))


def needs_second_step(user: AppUser, roles: frozenset[str]) -> bool:
    """After the password: a code (enrolled users), or enrolment (users who must have a second factor)."""
    return enrolled(user) or required(user, roles)


def begin_enrolment(user: AppUser) -> str:
    """The secret the user adds to an authenticator app: the one already offered if enrolment began before
    (a reloaded page shows the same), else a new random one (160 bits). Refused once enrolled."""
    if enrolled(user):
        raise Conflict.fmt("A second factor is already set up for this account.")
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
    return user.totp_secret


def provisioning_uri(user: AppUser) -> str:
    """The ``otpauth://totp/…`` URI of the user's secret (authenticator apps read it from a QR code or as text)."""
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code is ``code`` (within :data:`DRIFT_STEPS` of ``now``), or ``None``."""
    code = (code or "").replace(" ", "").strip()
    if len(code) != CODE_DIGITS or not code.isdigit():
        return None
    otp = pyotp.TOTP(secret)
    found = None
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        at = now.timestamp() + offset * otp.interval
        # every step is compared (no early exit): the time taken does not tell which one matched
        if hmac.compare_digest(otp.at(at), code):
            found = int(at // otp.interval)
    return found


def accept(user: AppUser, code: str, now: datetime | None = None) -> bool:
    """Whether ``code`` is a valid code of the user's secret not used before; an accepted code's step is kept
    (replay). Confirms a pending enrolment. The caller holds the user's row (a write transaction)."""
    if not user.totp_secret:
        return False
    now = now or clock.now()
    step = matching_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    if user.totp_enabled_at is None:
        user.totp_enabled_at = now
    return True


def reset(session: Session, username: str, *, actor: str) -> AppUser:
    """An administrator forgets ``username``'s second factor (audited ``two_factor_reset``); the user's sessions
    end and, if their role requires one, they enrol again at the next sign-in."""
    user = users.get_user(session, username)
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.session_version = (user.session_version or 0) + 1
    audit.system_event(session, "two_factor_reset", actor, username=username)
    return user
