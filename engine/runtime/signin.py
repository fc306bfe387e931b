"""Password sign-in with throttling shared by every process: who may try now, the check, the outcome.

An edge signs a person in in three steps, so that the slow argon2 check holds no database lock::

    with tx() as s:  attempt = begin(s, limits, username, address, device)   # counts the attempt first
    if attempt.wait: answer 429 with Retry-After: attempt.wait (nothing was checked or recorded)
    ok = check(attempt, password)                                             # no transaction
    with tx() as s:  user = finish(s, attempt, ok, password, source="web")   # audit, take the charge back

Which counters an attempt is charged to (:class:`Limits`, failures before waits start / longest wait):

* from a browser that signed in to this account before (a *known device*, the edge's signed cookie): only
  that account on that browser (``free`` / ``max_delay_s``) — what strangers do elsewhere never slows the
  account's owner on their own browser;
* otherwise the account from this address (``free`` / ``max_delay_s``), the account from anywhere
  (``2·free`` / at most :data:`ACCOUNT_CAP_S`: strangers trying an account from many addresses slow a new
  browser of its owner by a minute at most, never lock it) and the address whatever the account (``4·free`` /
  ``max_delay_s``: one address spraying many names).

A success forgives the account's counter for that address or browser and takes its charge back from the others.
Unknown names cost the same as known ones (:func:`.passwords.verify` checks a dummy hash) and are counted the same.

**Second factor.** For a user who enrolled a TOTP code or must (:func:`.totp.needs_second_step`), the password
step signs nobody in: the edge keeps the user's id and session version as *pending* and asks for a code,
checked by :func:`second_factor` — counted before it is checked like a password (per account, ``free`` /
``max_delay_s``: only someone who knows the password gets this far), refused once used (:func:`.totp.accept`),
and void when the account changed since the password step (its session version moved). Only then is the
sign-in audited (``sign_in`` with ``second_factor: totp``); a wrong code is audited ``sign_in_failed``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from . import audit, clock, passwords, throttle, totp, users
from .models import AppUser
from .throttle import Key, Rule

#: the longest wait an account tried from many addresses imposes on a browser its owner never used before
ACCOUNT_CAP_S = 60.0


@dataclass(frozen=True)
class Limits:
    free: int = 5
    max_delay_s: float = 900.0

    @classmethod
    def from_settings(cls, settings) -> "Limits":
        return cls(settings.signin_free_attempts, settings.signin_max_delay_s)

    @property
    def account_device(self) -> Rule:
        return Rule("account_device", self.free, self.max_delay_s, forgive_on_success=True)

    @property
    def account_address(self) -> Rule:
        return Rule("account_address", self.free, self.max_delay_s, forgive_on_success=True)

    @property
    def account(self) -> Rule:
        return Rule("account", 2 * self.free, min(ACCOUNT_CAP_S, self.max_delay_s))

    @property
    def address(self) -> Rule:
        return Rule("address", 4 * self.free, self.max_delay_s)

    @property
    def second_factor(self) -> Rule:
        return Rule("second_factor", self.free, self.max_delay_s, forgive_on_success=True)


def keys_for(limits: Limits, username: str | None, address: str, device: str | None = None) -> list[Key]:
    """The counters an attempt on ``username`` (``None``: a name that cannot exist) from ``address`` is charged to;
    ``device``: the id of a known browser of that account."""
    if username and device:
        return [Key(limits.account_device, f"{username}\x00{device}")]
    keys = [Key(limits.address, address)]
    if username:
        keys += [Key(limits.account, username), Key(limits.account_address, f"{username}\x00{address}")]
    return keys


@dataclass
class Attempt:
    username: str | None
    keys: list[Key]
    #: seconds to wait before trying again; > 0: refused, nothing checked
    wait: int = 0
    user_id: int | None = None
    checked_hash: str | None = field(default=None, repr=False)


def begin(session: Session, limits: Limits, username: str | None, address: str, device: str | None = None, *,
          charge: bool = True) -> Attempt:
    """Charge the attempt and read the account's hash (a name longer than :data:`.users.NAME_MAX` counts as no
    name). ``charge=False``: only read the wait (to answer a throttled request without taking the write lock)."""
    name = username if username and len(username) <= users.NAME_MAX else None
    keys = keys_for(limits, name, address, device)
    wait = throttle.charge(session, keys) if charge else throttle.wait_seconds(session, keys)
    attempt = Attempt(name, keys, wait)
    if charge and not wait:
        user = users.find_user(session, name)
        if user is not None:
            attempt.user_id, attempt.checked_hash = user.id, user.password_hash
    return attempt


def check(attempt: Attempt, password: str) -> bool:
    """The argon2 check (a dummy hash for unknown accounts: the same cost). Call it outside any transaction."""
    return attempt.wait == 0 and passwords.verify(attempt.checked_hash, password)


def finish(session: Session, attempt: Attempt, ok: bool, password: str, *, source: str,
           address: str | None = None, audit_success: bool = True) -> AppUser | None:
    """Record the outcome (:func:`.users.record_sign_in`): the signed-in user or ``None``. A success takes the
    attempt's charges back."""
    user = session.get(AppUser, attempt.user_id) if attempt.user_id is not None else None
    signed_in = users.record_sign_in(session, user, attempt.checked_hash, ok, password, source=source,
                                     address=address, audit_success=audit_success)
    if signed_in is not None:
        throttle.refund(session, attempt.keys)
    return signed_in


def audit_sign_in(session: Session, user: AppUser, *, source: str, address: str | None = None, **extra) -> None:
    """The system chain's ``sign_in`` of ``user`` (for callers that finished with ``audit_success=False``)."""
    where = {"source": source} | ({"address": address} if address else {})
    audit.system_event(session, "sign_in", user.username, **where, **extra)


def code_wait(session: Session, limits: Limits, username: str) -> int:
    """Seconds before a code for ``username`` may be tried (0: now). Reads only."""
    return throttle.wait_seconds(session, [Key(limits.second_factor, username)])


def second_factor(session: Session, limits: Limits, user_id: int, version: int, code: str, *, source: str,
                  address: str | None = None, sign_in: bool = True) -> tuple[int, AppUser | None]:
    """Check a TOTP code of the user who passed the password step (``sign_in``) or who enrols while signed in
    (``sign_in=False``); a pending enrolment is confirmed by its first good code. Returns ``(wait, user)``:
    ``wait`` > 0 when throttled (nothing checked), ``user`` ``None`` when refused."""
    user = session.get(AppUser, user_id, with_for_update=True, populate_existing=True)
    if user is None or not user.active or user.session_version != version:
        return 0, None
    keys = [Key(limits.second_factor, user.username)]
    wait = throttle.charge(session, keys)
    if wait:
        return wait, None
    enrolling = not totp.enrolled(user)
    where = {"source": source} | ({"address": address} if address else {})
    if not totp.accept(user, code, clock.now()):
        audit.system_event(session, "sign_in_failed" if sign_in else "two_factor_failed", user.username,
                           second_factor="totp", **where)
        return 0, None
    throttle.refund(session, keys)
    if enrolling:
        audit.system_event(session, "two_factor_enrolled", user.username, **where)
    if sign_in:
        audit_sign_in(session, user, source=source, address=address, second_factor="totp")
    return 0, user
