"""The population list of a draw: the eligible entities as ``USCC,CLASS`` lines, sorted, and its hash.

:class:`Population` validates, sorts and hashes a list (``population_hash`` is the ``sha256sum`` of the
published file: step 1 of the scheme in :mod:`engine.supervision.draw.algorithm`) and parses a published list
back. Which registry entities are in the list is decided in :mod:`engine.supervision.draw.eligibility`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from engine.errors import InvalidInput

from ..campaign_models import CLASSES


@dataclass(frozen=True)
class Population:
    """An eligible population sorted by USCC: the published list, its hash and (optionally) entity ids."""

    usccs: np.ndarray  # dtype S18, sorted ascending, unique
    classes: np.ndarray  # dtype S1, aligned
    csv: bytes
    sha256: str
    entity_ids: np.ndarray | None = None  # int64, aligned, when built from the registry

    @property
    def size(self) -> int:
        return len(self.usccs)

    def counts(self) -> dict[str, int]:
        return {c: int(np.count_nonzero(self.classes == c.encode())) for c in CLASSES}

    @classmethod
    def build(cls, usccs: Sequence[str] | np.ndarray, classes: Sequence[str] | np.ndarray,
              entity_ids: Sequence[int] | np.ndarray | None = None) -> "Population":
        """Sort, validate (USCC ``[0-9A-Z]{1,18}``, unique; class A–D) and hash."""
        u = _as_bytes(usccs, 18, "USCC")
        k = _as_bytes(classes, 1, "class")
        if len(u) != len(k):
            raise InvalidInput(f"population: {len(u)} USCCs but {len(k)} classes")
        _check_usccs(usccs, u)
        bad = ~np.isin(k, np.array([c.encode() for c in CLASSES], dtype="S1"))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput(f"population: USCC {u[i].decode()} has class {k[i].decode()!r} (expected A-D)")
        order = None
        if len(u) > 1 and not (u[1:] > u[:-1]).all():  # a stored list is already sorted and unique
            order = _argsort18(u)
            u, k = u[order], k[order]
            dup = np.flatnonzero(u[1:] == u[:-1])
            if len(dup):
                raise InvalidInput(f"population: duplicate USCC {u[dup[0]].decode()}")
        ids = None if entity_ids is None else np.asarray(entity_ids, dtype=np.int64)
        if ids is not None and order is not None:
            ids = ids[order]
        text = _csv(u, k)
        return cls(u, k, text, hashlib.sha256(text).hexdigest(), ids)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> "Population":
        pairs = list(pairs)
        return cls.build([p[0] for p in pairs], [p[1] for p in pairs])

    @classmethod
    def from_csv(cls, text: bytes) -> "Population":
        """Parse a published list (``USCC,CLASS`` lines); the result hashes to ``sha256(text)`` only if the
        text was already canonical (sorted, LF-terminated) — compare :attr:`sha256` to detect that."""
        if not text:
            return cls.build([], [])
        if len(text) % 21 == 0:
            a = np.frombuffer(text, dtype=np.uint8).reshape(-1, 21)
            if (a[:, 18] == ord(",")).all() and (a[:, 20] == ord("\n")).all():
                u = np.ascontiguousarray(a[:, :18]).view("S18").ravel()
                k = np.ascontiguousarray(a[:, 19:20]).view("S1").ravel()
                return cls.build(u, k)
        us, ks = [], []
        for n, line in enumerate(text.decode("ascii", "replace").splitlines(), 1):
            parts = line.split(",")
            if len(parts) != 2:
                raise InvalidInput(f"population line {n}: expected 'USCC,CLASS', got {line!r}")
            us.append(parts[0])
            ks.append(parts[1])
        return cls.build(us, ks)


def _as_bytes(values, width: int, what: str) -> np.ndarray:
    """ASCII strings as a fixed-width bytes array (fast path for numpy unicode arrays)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "U" and values.dtype.itemsize <= 4 * width:
        n = len(values)
        cp = np.ascontiguousarray(values).view(np.uint32).reshape(n, values.dtype.itemsize // 4)
        if n and cp.max() >= 128:
            raise InvalidInput(f"population: non-ASCII {what}")
        out = np.zeros((n, width), dtype=np.uint8)
        out[:, :cp.shape[1]] = cp
        return out.view(f"S{width}").ravel()
    if not len(values):
        return np.empty(0, f"S{width}")
    try:
        return np.asarray(values, dtype=f"S{width}")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"population: non-ASCII {what}: {exc.object!r}") from None


def _argsort18(u: np.ndarray) -> np.ndarray:
    """Bytewise ascending order of an ``S18`` array. ASCII bytes have 7 bits, so nine characters pack into one
    63-bit word and a two-key lexsort orders the whole string (faster than numpy's string sort)."""
    n = len(u)
    b = u.view(np.uint8).reshape(n, 18)
    if n and b.max() >= 128:
        w = np.zeros((n, 24), dtype=np.uint8)
        w[:, :18] = b
        words = w.view(">u8").reshape(n, 3).astype(np.uint64)
        return np.lexsort((words[:, 2], words[:, 1], words[:, 0]))
    hi = np.zeros(n, np.uint64)
    lo = np.zeros(n, np.uint64)
    seven = np.uint64(7)
    for j in range(9):
        hi <<= seven
        hi |= b[:, j]
        lo <<= seven
        lo |= b[:, 9 + j]
    return np.lexsort((lo, hi))


_USCC_CHAR = np.zeros(256, dtype=bool)
_USCC_CHAR[list(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")] = True


def _check_usccs(given, u: np.ndarray) -> None:
    if not len(u):
        return
    b = u.view(np.uint8).reshape(len(u), 18)
    if (b[:, 17] != 0).all():  # every USCC has 18 characters: no padding to check
        bad = ~_USCC_CHAR[b].all(axis=1)
    else:
        zero = b == 0
        bad = ~(zero | _USCC_CHAR[b]).all(axis=1) | zero[:, 0] | (zero[:, :-1] & ~zero[:, 1:]).any(axis=1)
    # np.asarray(..., "S18") silently truncates longer values
    if not isinstance(given, np.ndarray) or (given.dtype.kind == "U" and given.dtype.itemsize > 72) \
            or (given.dtype.kind == "S" and given.dtype.itemsize > 18) or given.dtype.kind not in "SU":
        lengths = np.fromiter((len(x) for x in given), dtype=np.int64, count=len(u))
        bad |= lengths > 18
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"population: invalid USCC {given[i]!r} (expected 1-18 characters 0-9 A-Z)")


def _csv(u: np.ndarray, k: np.ndarray) -> bytes:
    n = len(u)
    if n and not (u.view(np.uint8).reshape(n, 18)[:, 17] == 0).any():  # every USCC has 18 characters
        out = np.empty((n, 21), dtype=np.uint8)
        out[:, :18] = u.view(np.uint8).reshape(n, 18)
        out[:, 18] = ord(",")
        out[:, 19] = k.view(np.uint8)
        out[:, 20] = ord("\n")
        return out.tobytes()
    return b"".join(x + b"," + c + b"\n" for x, c in zip(u.tolist(), k.tolist()))

