"""Unified social credit code (统一社会信用代码, GB 32100-2015).

Layout (18 characters from the 31-character alphabet ``0-9`` and ``A-Y`` minus ``I O S V Z``):

===== ======================================================================
pos   meaning
===== ======================================================================
1     registration authority (``9`` = market regulation)
2     entity category (for ``9``: ``1`` enterprise, ``2`` individual business, ``3`` farmers' cooperative)
3-8   administrative division code of the registering authority (GB/T 2260)
9-17  organisation code (GB 11714: 8 body characters + 1 mod-11 check character)
18    check character: weights ``3**i mod 31``, ``C18 = 31 - (sum mod 31)``, 31 → ``0``
===== ======================================================================
"""
from __future__ import annotations

import numpy as np

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def uscc_check_digit(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters. Raises ``ValueError`` on a bad character."""
    if len(first17) != 17:
        raise ValueError(f"need 17 characters, got {len(first17)}")
    try:
        total = sum(_VALUE[c] * w for c, w in zip(first17.upper(), WEIGHTS))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the USCC alphabet") from None
    return ALPHABET[(31 - total % 31) % 31]


def org_check_digit(first8: str) -> str:
    """GB 11714 organisation-code check character (mod 11, ``X`` for 10)."""
    total = sum(int(c, 36) * w for c, w in zip(first8, _ORG_WEIGHTS))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def is_valid_uscc(code: object) -> bool:
    """True for an 18-character code with a correct GB 32100 check character (case-sensitive: upper case only)."""
    if not isinstance(code, str) or len(code) != 18 or any(c not in _VALUE for c in code):
        return False
    return uscc_check_digit(code[:17]) == code[17]


def generate_usccs(rng: np.random.Generator, division_codes: np.ndarray, category: np.ndarray) -> np.ndarray:
    """Vectorised: ``len(division_codes)`` unique valid codes as a ``<U18`` array.

    ``division_codes`` are 6-digit strings, ``category`` the second character per entity. The organisation-code
    body is a unique random 8-digit number, so codes never collide.
    """
    n = len(division_codes)
    body = rng.choice(10**8, size=n, replace=False)
    digits = np.empty((n, 18), dtype=np.int64)
    digits[:, 0] = 9
    digits[:, 1] = np.asarray(category, dtype="U1").view(np.uint32) - ord("0")
    div = np.asarray(division_codes, dtype="U6").view(np.uint32).reshape(n, 6) - ord("0")
    digits[:, 2:8] = div
    for k in range(8):
        digits[:, 8 + 7 - k] = (body // 10**k) % 10
    org = 11 - (digits[:, 8:16] @ np.array(_ORG_WEIGHTS)) % 11
    digits[:, 16] = np.where(org == 11, 0, np.where(org == 10, _VALUE["X"], org))  # GB 11714 writes 10 as 'X'
    check = (31 - (digits[:, :17] @ np.array(WEIGHTS)) % 31) % 31
    digits[:, 17] = check
    table = np.array([ord(c) for c in ALPHABET], dtype=np.uint32)
    return np.ascontiguousarray(table[digits]).view("<U18").ravel()


def valid_usccs(codes) -> np.ndarray:
    """Vectorised :func:`is_valid_uscc` over an array of strings."""
    arr = np.asarray(codes, dtype="U18")
    n = len(arr)
    ok = np.char.str_len(arr) == 18
    cp = np.ascontiguousarray(arr).view(np.uint32).reshape(n, 18).astype(np.int64)
    table = np.full(128, -1, np.int64)
    for i, c in enumerate(ALPHABET):
        table[ord(c)] = i
    vals = np.where(cp < 128, table[np.minimum(cp, 127)], -1)
    ok &= (vals >= 0).all(axis=1)
    check = (31 - (np.maximum(vals[:, :17], 0) @ np.array(WEIGHTS)) % 31) % 31
    return ok & (check == vals[:, 17])
