"""Password hashing (argon2) and the password policy applied whenever a password is set.

The policy (:func:`check`): at least ``REGFLOW_PASSWORD_MIN_LENGTH`` characters (10 unless set) and at most
:data:`MAX_LENGTH`; at least :data:`MIN_DISTINCT` different characters; not one of the common passwords in
``data/common_passwords.txt`` — also with digits and punctuation around it or common letter substitutions
(``P@ssw0rd2024!`` is ``password``); not the user name (also so dressed up). Each refusal names its rule.

:func:`verify` checks a password against a stored hash, or against a fixed dummy hash when there is none, so
that a sign-in takes as long for an unknown or deactivated account as for an existing one.
"""
from __future__ import annotations

import functools
import re
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.config import load_settings
from engine.errors import InvalidInput

#: threads per hash (argon2-cffi's default); the time and memory costs are settings
PARALLELISM = 4
#: longer passwords are refused when set and fail at sign-in without being hashed (argon2 reads every byte)
MAX_LENGTH = 256
MIN_DISTINCT = 5
COMMON_FILE = Path(__file__).resolve().parent / "data" / "common_passwords.txt"

_AROUND = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_UNLEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s",
                         "7": "t", "+": "t", "8": "b", "9": "g"})


@functools.cache
def common_passwords() -> frozenset[str]:
    """The list shipped in ``data/common_passwords.txt`` (read once)."""
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def is_common(password: str) -> bool:
    """``password`` is a common password, or one with digits and punctuation added around it, or with letters
    swapped for look-alike digits and signs."""
    lower = password.lower()
    candidates = _variants(password) | {_AROUND.sub("", lower.translate(_UNLEET))}
    return bool(candidates & common_passwords())


def _variants(text: str) -> set[str]:
    lower = text.lower()
    stripped = _AROUND.sub("", lower)
    return {v for v in (lower, stripped, lower.translate(_UNLEET), _AROUND.sub("", stripped.translate(_UNLEET))) if v}


def is_user_name(password: str, username: str | None) -> bool:
    """``password`` is the user name, in any case, with digits and punctuation around it or look-alike letters
    (``Admin2024!`` for ``admin``), or the user name backwards."""
    name = (username or "").strip().lower()
    if not name:
        return False
    names = {name, name[::-1], _AROUND.sub("", name)} - {""}
    return bool(_variants(password) & names)


def check(password: str, username: str, min_length: int) -> None:
    """Raise :class:`InvalidInput` naming the first rule ``password`` breaks (``details={"field": "password"}``)."""
    where = {"field": "password"}
    if not isinstance(password, str) or len(password) < max(min_length, 1):
        raise InvalidInput.fmt("The password must have at least {n} characters.", n=max(min_length, 1),
                               details=where)
    if len(password) > MAX_LENGTH:
        raise InvalidInput.fmt("The password must have at most {n} characters.", n=MAX_LENGTH, details=where)
    if len(set(password)) < MIN_DISTINCT:
        raise InvalidInput.fmt("The password must have at least {n} different characters.", n=MIN_DISTINCT,
                               details=where)
    if is_user_name(password, username):
        raise InvalidInput.fmt("The password must not be the user name, also not with digits or signs added.",
                               details=where)
    if is_common(password):
        raise InvalidInput.fmt("This password is too common (it is on the list of common passwords, maybe with "
                               "digits or signs added); choose another.", details=where)


@functools.cache
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=PARALLELISM)


def hasher() -> PasswordHasher:
    """The argon2id hasher with the configured cost (``REGFLOW_PASSWORD_HASH_TIME_COST`` / ``_MEMORY_KIB``)."""
    settings = load_settings()
    return _hasher(settings.password_hash_time_cost, settings.password_hash_memory_kib)


def hash_password(password: str) -> str:
    return hasher().hash(password)


def dummy_hash() -> str:
    """An argon2 hash of a random password with today's parameters, made once per cost, for unknown accounts: it
    costs what a real one does."""
    return _dummy(hasher())


@functools.cache
def _dummy(with_hasher: PasswordHasher) -> str:
    return with_hasher.hash(secrets.token_urlsafe(24))


def verify(stored_hash: str | None, password: str) -> bool:
    """``password`` matches ``stored_hash``; with no hash the dummy one is checked (same cost, always false)."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH * 4:
        return False
    try:
        ok = hasher().verify(stored_hash or dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and bool(stored_hash)


def needs_rehash(stored_hash: str) -> bool:
    return hasher().check_needs_rehash(stored_hash)
