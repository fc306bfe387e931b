"""The stratified, verifiable random draw (DESIGN.md §4, DOMAIN.md §2 steps 3–4, §6).

Anyone holding the published population list, the campaign code, the public value and the plan's
ratios can recompute a draw with :func:`draw_population` (pure: no database). The scheme,
algorithm ``regflow-draw/1``, byte for byte:

1. **Population list.** The eligible entities as lines ``USCC,CLASS\\n`` (ASCII; ``CLASS`` one of ``A B C
   D``), sorted by USCC bytewise ascending, no header. ``population_hash = SHA-256(list)`` as 64
   lower-case hex digits — ``sha256sum`` of the published file.
2. **Seed.** ``seed = SHA-256("regflow-draw/1" LF code LF population_hash LF public_value)`` (UTF-8, LF =
   one ``\\n`` byte; no trailing newline). ``code`` is the campaign's public code. Neither the code nor
   the public value may contain control characters, and the hash is fixed-width hex, so the
   concatenation is unambiguous. 32 raw bytes.
3. **Keys.** ``key(e) = HMAC-SHA256(seed, USCC(e))``, 32 bytes. Two orders come from it: the
   *stratum order* compares ``key[0:16]`` and the *control order* ``key[16:32]``, each as a big-endian
   unsigned integer, ties (never seen) broken by USCC. The halves of one HMAC output are independent,
   so this is the "separate HMAC domain" for the control stratum at the cost of one HMAC per entity
   (one HMAC costs about 0.65 s per million entities on this machine; two would double the largest part
   of the draw and of its verification).
4. **Stochastic rounding.** ``sround(x, label) = floor(x) + [u < frac(x)]`` with
   ``u = int(HMAC-SHA256(seed, "round|" + label)[0:8], big-endian) / 2**64``, computed exactly
   (ratios are decimal strings, arithmetic on rationals).
5. **Quotas.** For each class ``s`` with ``N_s`` entities: ``n_s = sround(ratio_s · N_s, s)``, at least 1
   when ``N_s > 0`` and ``ratio_s > 0``. ``T = Σ n_s``.
6. **Control stratum** (pure random, ≈ ``control_share`` of all draws):
   ``c = sround(share · T / (1 − share), "control")``, at most ``N``. With a capacity and
   ``T + c > capacity``: ``c = min(c, sround(share · capacity, "control-capacity"))``. The ``c`` entities
   with the smallest control order over the whole population are drawn first.
7. **Strata**, in the order A, B, C, D (least to most risky): ``want = n_s + carry``; ``take_s =
   min(want, N_s − control members of s)``; ``carry = want − take_s`` moves to the next riskier class
   (a short stratum is taken whole). What D cannot take is recorded as ``shortfall``.
8. **Capacity.** If ``c + Σ take_s > capacity``, the excess is cut from the least risky strata first
   (A, then B, C, D): high-risk checks are the last to go. A cut is recorded per stratum.
9. Within each class the ``take_s`` non-control entities with the smallest stratum order are drawn;
   ``rank`` is 1-based in that order (control: in control order).

A campaign's population is frozen once (``campaign_population``) and its draw written once
(``draw_result``): drawing again returns the stored result, never a new random one.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import sqlite3
import zlib
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from math import floor
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine import txcache
from engine.db import chunks
from engine.errors import Conflict, InvalidInput, NotFound

from .campaign_models import (CLASSES, EXCLUSION_REASONS, Campaign, CampaignExclusion,
                              CampaignPopulation, DrawResult)

ALGORITHM = "regflow-draw/1"
POPULATION_FORMAT = "uscc-class-csv/1+zlib"
DEFAULT_RATIOS = {"A": "0.01", "B": "0.04", "C": "0.12", "D": "0.30"}
DEFAULT_CONTROL_SHARE = "0.10"
#: An entity without a credit class yet is drawn as class B ("normal", the national default).
UNCLASSIFIED_AS = "B"
TERMINAL_STATUSES = ("deregistered", "revoked")
#: Processes whose running instance (business key = USCC) is an open task for the entity.
INSPECTION_PROCESS_IDS = ("entity_inspection",)
DRAWN_STATUSES = ("drawn", "published", "closed")

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_TWO64 = 1 << 64


# ============================================================================================ pure part
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


def _text_field(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or value != value.strip() or _CONTROL_CHARS.search(value):
        raise InvalidInput(f"{what} must be a non-empty string without control characters or surrounding "
                           f"spaces, got {value!r}")
    return value


def compute_seed(campaign_code: str, population_hash: str, public_value: str) -> bytes:
    """``SHA-256("regflow-draw/1" LF code LF population_hash LF public_value)`` (see the module doc)."""
    _text_field(campaign_code, "campaign code")
    _text_field(public_value, "public value")
    if not re.fullmatch(r"[0-9a-f]{64}", population_hash or ""):
        raise InvalidInput(f"population hash must be 64 lower-case hex digits, got {population_hash!r}")
    msg = "\n".join((ALGORITHM, campaign_code, population_hash, public_value)).encode("utf-8")
    return hashlib.sha256(msg).digest()


def entity_keys(seed: bytes, usccs: Iterable[bytes]) -> list[bytes]:
    """``HMAC-SHA256(seed, uscc)`` for each USCC: the pads are hashed once, each key costs two
    compressions (about 1.8 µs per entity here, against 5 µs for ``hmac.digest``)."""
    block = seed.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block)).copy

    def key(u: bytes) -> bytes:
        i = inner()
        i.update(u)
        o = outer()
        o.update(i.digest())
        return o.digest()

    return list(map(key, usccs))


def _uniform64(seed: bytes, label: str) -> int:
    return int.from_bytes(hmac.new(seed, ("round|" + label).encode(), "sha256").digest()[:8], "big")


def sround(x: Fraction, seed: bytes, label: str) -> int:
    """Stochastic rounding of ``x >= 0`` driven by the seed: ``floor(x) + [u < frac(x)]``, exact."""
    whole = floor(x)
    frac = x - whole
    return whole + (1 if frac and Fraction(_uniform64(seed, label)) < frac * _TWO64 else 0)


def parse_decimal(value: Any, what: str, upper_inclusive: bool = True) -> str:
    """A ratio in [0, 1] (or [0, 1) for the control share) as a canonical decimal string."""
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{what} must be a decimal number, got {value!r}") from None
    if not d.is_finite() or d < 0 or d > 1 or (not upper_inclusive and d == 1):
        raise InvalidInput(f"{what} must be in [0, 1{']' if upper_inclusive else ')'}, got {value!r}")
    return format(d.normalize(), "f") if d else "0"


def normalize_ratios(ratios: dict[str, Any] | None) -> dict[str, str]:
    ratios = dict(DEFAULT_RATIOS if ratios is None else ratios)
    unknown = set(ratios) - set(CLASSES)
    if unknown or set(ratios) != set(CLASSES):
        raise InvalidInput(f"ratios need exactly the classes A, B, C, D, got {sorted(ratios)}")
    return {c: parse_decimal(ratios[c], f"ratio for class {c}") for c in CLASSES}


@dataclass(frozen=True)
class DrawnRow:
    uscc: str
    stratum: str  # A | B | C | D | control
    risk_class: str
    key_hex: str
    rank: int

    def as_tuple(self) -> tuple:
        return (self.uscc, self.stratum, self.risk_class, self.key_hex, self.rank)


@dataclass
class DrawOutcome:
    algorithm: str
    seed_hex: str
    population_hash: str
    rows: list[DrawnRow]
    summary: dict[str, Any]
    entity_ids: dict[str, int] = field(default_factory=dict, repr=False)  # uscc -> entity id, when known

    def drawn_set(self) -> set[str]:
        return {r.uscc for r in self.rows}


def draw_population(population: Population, campaign_code: str, public_value: str,
                    ratios: dict[str, Any] | None = None, control_share: Any = DEFAULT_CONTROL_SHARE,
                    capacity: int | None = None) -> DrawOutcome:
    """Draw from ``population`` (pure and deterministic; the module doc is the specification)."""
    ratios = normalize_ratios(ratios)
    share = Fraction(parse_decimal(control_share, "control share", upper_inclusive=False))
    if capacity is not None and (not isinstance(capacity, int) or capacity < 0):
        raise InvalidInput(f"capacity must be a non-negative integer or empty, got {capacity!r}")
    seed = compute_seed(campaign_code, population.sha256, public_value)
    n_total = population.size
    usccs = population.usccs.tolist()  # bytes
    keys = entity_keys(seed, usccs)
    blob = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(n_total, 32) if n_total else np.empty((0, 32),
                                                                                                         np.uint8)
    main_prefix = np.ascontiguousarray(blob[:, 0:8]).view(">u8").ravel().astype(np.uint64)
    control_prefix = np.ascontiguousarray(blob[:, 16:24]).view(">u8").ravel().astype(np.uint64)

    def smallest(idx: np.ndarray, k: int, prefix: np.ndarray, lo: int) -> list[int]:
        if k <= 0 or not len(idx):
            return []
        if k < len(idx):
            sub = prefix[idx]
            kth = np.partition(sub, k - 1)[k - 1]
            idx = idx[sub <= kth]
        first = prefix[idx]
        order = np.argsort(first, kind="stable")
        ordered = first[order]
        if len(ordered) > 1 and (ordered[1:] == ordered[:-1]).any():  # equal 64-bit prefixes: whole halves
            return sorted(idx.tolist(), key=lambda i: (keys[i][lo:lo + 16], usccs[i]))[:k]
        return idx[order[:k]].tolist()  # distinct prefixes order the halves

    cls = population.classes
    sizes = {c: int(np.count_nonzero(cls == c.encode())) for c in CLASSES}
    planned: dict[str, int] = {}
    for c in CLASSES:
        r = Fraction(ratios[c])
        n = sround(r * sizes[c], seed, c)
        planned[c] = max(n, 1) if sizes[c] > 0 and r > 0 else n
    planned_total = sum(planned.values())
    control_planned = sround(share * planned_total / (1 - share), seed, "control") if share else 0
    control_n = min(control_planned, n_total)
    if capacity is not None and planned_total + control_n > capacity:
        control_n = min(control_n, sround(share * capacity, seed, "control-capacity"), capacity)

    control_idx = smallest(np.arange(n_total), control_n, control_prefix, 16)
    in_control = np.zeros(n_total, dtype=bool)
    in_control[control_idx] = True

    carried_in, taken, avail = {}, {}, {}
    carry = 0
    for c in CLASSES:
        avail[c] = sizes[c] - int(np.count_nonzero(in_control & (cls == c.encode())))
        carried_in[c] = carry
        want = planned[c] + carry
        taken[c] = min(want, avail[c])
        carry = want - taken[c]
    shortfall = carry
    cut = {c: 0 for c in CLASSES}
    if capacity is not None:
        excess = control_n + sum(taken.values()) - capacity
        for c in CLASSES:
            if excess <= 0:
                break
            cut[c] = min(taken[c], excess)
            taken[c] -= cut[c]
            excess -= cut[c]

    rows = [DrawnRow(usccs[i].decode(), "control", cls[i].decode(), keys[i].hex(), rank)
            for rank, i in enumerate(control_idx, 1)]
    for c in CLASSES:
        idx = np.flatnonzero((cls == c.encode()) & ~in_control)
        rows += [DrawnRow(usccs[i].decode(), c, c, keys[i].hex(), rank)
                 for rank, i in enumerate(smallest(idx, taken[c], main_prefix, 0), 1)]

    control_by_class = {c: 0 for c in CLASSES}
    for r in rows[:len(control_idx)]:
        control_by_class[r.risk_class] += 1
    drawn = {**{c: taken[c] for c in CLASSES}, "control": len(control_idx)}
    summary = {
        "algorithm": ALGORITHM,
        "population": {**sizes, "total": n_total},
        "ratios": ratios,
        "control_share": parse_decimal(control_share, "control share", upper_inclusive=False),
        "capacity": capacity,
        "planned": planned,
        "control": {"planned": control_planned, "drawn": len(control_idx), "by_class": control_by_class},
        "available": avail,
        "carried_in": carried_in,
        "capacity_cut": cut,
        "shortfall": {"D": shortfall},
        "drawn": drawn,
        "total": sum(drawn.values()),
    }
    ids = {}
    if population.entity_ids is not None:
        pos = {r.uscc: r for r in rows}
        index = np.searchsorted(population.usccs, np.array([u.encode() for u in pos], dtype="S18"))
        ids = {u: int(population.entity_ids[i]) for u, i in zip(pos, index.tolist())}
    return DrawOutcome(ALGORITHM, seed.hex(), population.sha256, rows, summary, ids)


def compare_rows(expected: Iterable[DrawnRow], actual: Iterable[DrawnRow], limit: int = 20) -> list[str]:
    """Human-readable differences between two drawn sets (at most ``limit`` lines, then a count)."""
    exp = {r.uscc: r for r in expected}
    act = {r.uscc: r for r in actual}
    out: list[str] = []
    missing = sorted(set(exp) - set(act))
    extra = sorted(set(act) - set(exp))
    changed = sorted(u for u in set(exp) & set(act) if exp[u].as_tuple() != act[u].as_tuple())
    for u in missing:
        r = exp[u]
        out.append(f"missing: {u} should be drawn in stratum {r.stratum} rank {r.rank}")
    for u in extra:
        r = act[u]
        out.append(f"unexpected: {u} is recorded in stratum {r.stratum} rank {r.rank} but is not drawn")
    for u in changed:
        e, a = exp[u], act[u]
        fields = [f"{n} {getattr(a, n)!r} != expected {getattr(e, n)!r}"
                  for n in ("stratum", "risk_class", "key_hex", "rank") if getattr(a, n) != getattr(e, n)]
        out.append(f"changed: {u}: " + "; ".join(fields))
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more differences "
                             f"({len(missing)} missing, {len(extra)} unexpected, {len(changed)} changed)"]
    return out


# ============================================================================================ campaigns
def _campaign(session: Session, ref: int | str, lock: bool = False) -> Campaign:
    """By id or code; ``lock`` takes a row lock (PostgreSQL) so concurrent draws queue."""
    q = select(Campaign)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        q = q.where(Campaign.id == int(ref))
    else:
        q = q.where(Campaign.code == ref)
    if lock:
        q = q.with_for_update()
    c = session.scalars(q).first()
    if c is None and isinstance(ref, str) and ref.isdigit():  # a purely numeric code
        c = session.scalars(select(Campaign).where(Campaign.code == ref)).first()
    if c is None:
        raise NotFound(f"campaign {ref!r} not found")
    return c


def get_campaign(session: Session, ref: int | str) -> Campaign:
    return _campaign(session, ref)


def create_campaign(session: Session, *, code: str, name: str, departments: Sequence[str], items: Sequence[str],
                    window_start: date, window_end: date, created_by: str, now: datetime,
                    ratios: dict[str, Any] | None = None, control_share: Any = DEFAULT_CONTROL_SHARE,
                    capacity: int | None = None, target_industries: Sequence[str] | None = None,
                    jurisdiction: Sequence[str] | None = None, lookback_months: int = 12) -> Campaign:
    """A draft plan (DOMAIN.md §2 step 1). ``jurisdiction``: district code prefixes (None = all).
    ``target_industries`` defaults to the union of the check items' industries (``check_item``; an item
    with no industries targets every section, and so does the campaign)."""
    _text_field(code, "campaign code")
    if len(code) > 64:
        raise InvalidInput("campaign code is longer than 64 characters")
    if not departments:
        raise InvalidInput("a campaign needs at least one department")
    if not items:
        raise InvalidInput("a campaign needs at least one check item")
    if window_end < window_start:
        raise InvalidInput(f"window ends ({window_end}) before it starts ({window_start})")
    if capacity is not None and (not isinstance(capacity, int) or capacity < 0):
        raise InvalidInput(f"capacity must be a non-negative integer, got {capacity!r}")
    if session.scalars(select(Campaign.id).where(Campaign.code == code)).first() is not None:
        raise Conflict(f"campaign code {code!r} already exists")
    if target_industries is None:
        target_industries = _item_industries(session, list(items))
    c = Campaign(code=code, name=name, departments=list(departments), items=list(dict.fromkeys(items)),
                 target_industries=None if target_industries is None else sorted(set(target_industries)),
                 jurisdiction=None if jurisdiction is None else sorted(set(jurisdiction)),
                 window_start=window_start, window_end=window_end, ratios=normalize_ratios(ratios),
                 control_share=parse_decimal(control_share, "control share", upper_inclusive=False),
                 capacity=capacity, lookback_months=lookback_months, status="draft", created_by=created_by,
                 created_at=now)
    session.add(c)
    session.flush()
    return c


def _item_industries(session: Session, codes: list[str]) -> list[str] | None:
    from .registry_models import CheckItem

    found = {i.code: i for i in session.scalars(select(CheckItem).where(CheckItem.code.in_(codes)))}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise InvalidInput(f"unknown check item(s): {', '.join(unknown)}")
    if any(not found[c].industries for c in codes):
        return None
    return sorted({s for c in codes for s in found[c].industries})


def approve_campaign(session: Session, ref: int | str, *, approver: str, now: datetime,
                     public_value: str | None = None) -> Campaign:
    """Approve a draft (step 2) and record the public randomness value if given."""
    c = _campaign(session, ref, lock=True)
    if c.status != "draft":
        raise Conflict(f"campaign {c.code} is {c.status}, only a draft can be approved")
    if public_value is not None:
        c.public_value = _text_field(public_value, "public value")
    c.status, c.approved_by, c.approved_at = "approved", approver, now
    return c


def record_public_value(session: Session, ref: int | str, public_value: str) -> Campaign:
    """Record the public value later (e.g. a lottery drawn after the population hash was published)."""
    c = _campaign(session, ref, lock=True)
    if c.status in DRAWN_STATUSES:
        raise Conflict(f"campaign {c.code} is already drawn; its public value cannot change")
    if c.public_value is not None and c.public_value != public_value:
        raise Conflict(f"campaign {c.code} already has a public value")
    c.public_value = _text_field(public_value, "public value")
    return c


# --------------------------------------------------------------------------------------- eligibility
#: An exclusion rule gets the session and the campaign and returns ``{entity id: detail}`` for the entities
#: it would exclude; those that are in scope and not excluded by an earlier rule are logged under its reason.
ExclusionRule = Callable[[Session, Campaign], dict[int, str]]
_RULES: list[tuple[str, ExclusionRule]] = []


def register_exclusion_rule(reason: str, rule: ExclusionRule) -> ExclusionRule:
    """Add a rule (e.g. ``open_case`` from the enforcement package). Rules run in registration order after
    the terminal-status check; an entity is logged under the first reason that applies."""
    if reason not in EXCLUSION_REASONS:
        raise ValueError(f"unknown exclusion reason {reason!r} (known: {EXCLUSION_REASONS})")
    if all(r is not rule for _, r in _RULES):
        _RULES.append((reason, rule))
    return rule


def _months_before(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    return date(y, m + 1, min(d.day, monthrange(y, m + 1)[1]))


def _rule_lookback(session: Session, campaign: Campaign) -> dict[int, str]:
    """Drawn for one of the same items by a campaign whose window ended in the lookback period before this
    window (overlapping windows are merged into a joint check instead, never excluded)."""
    if not campaign.lookback_months:
        return {}
    since = _months_before(campaign.window_start, campaign.lookback_months)
    earlier = session.execute(
        select(Campaign.id, Campaign.code, Campaign.items)
        .where(Campaign.id != campaign.id, Campaign.status.in_(DRAWN_STATUSES),
               Campaign.window_end >= since, Campaign.window_end < campaign.window_start)
        .order_by(Campaign.window_end.desc(), Campaign.id)).all()
    items = set(campaign.items)
    out: dict[int, str] = {}
    for cid, code, its in earlier:
        if not items & set(its):
            continue
        for (eid,) in session.execute(select(DrawResult.entity_id).where(DrawResult.campaign_id == cid)):
            out.setdefault(eid, f"drawn by campaign {code}")
    return out


def _rule_open_task(session: Session, campaign: Campaign) -> dict[int, str]:
    """A running or suspended inspection instance of the entity (business key = USCC)."""
    from engine.runtime.models import ProcessInstance
    from scoring.models import Entity

    rows = session.execute(
        select(Entity.id, ProcessInstance.id)
        .join(ProcessInstance, ProcessInstance.business_key == Entity.uscc)
        .where(ProcessInstance.process_id.in_(INSPECTION_PROCESS_IDS),
               ProcessInstance.status.in_(("running", "suspended")))
        .order_by(ProcessInstance.id)).all()
    out: dict[int, str] = {}
    for eid, iid in rows:
        out.setdefault(eid, f"open instance {iid}")
    return out


register_exclusion_rule("checked_in_lookback", _rule_lookback)
register_exclusion_rule("open_task", _rule_open_task)


@dataclass
class _Scope:
    """The in-scope registry rows as columns, in one arbitrary but common order."""

    ids: np.ndarray  # int64
    usccs: np.ndarray  # S18 (or a unicode array when read row by row)
    classes: np.ndarray  # S1; b"-" for an entity without a credit class
    terminal: np.ndarray  # int8: index into TERMINAL_STATUSES, -1 when not terminal

    @classmethod
    def empty(cls) -> "_Scope":
        return cls(np.empty(0, np.int64), np.empty(0, "S18"), np.empty(0, "S1"), np.empty(0, np.int8))


def _in_scope(session: Session, campaign: Campaign) -> _Scope:
    from sqlalchemy import or_

    from scoring.models import Entity

    t = Entity.__table__
    conds = []
    if campaign.target_industries is not None:
        conds.append(t.c.industry_section.in_(campaign.target_industries))
    if campaign.jurisdiction is not None:
        conds.append(or_(*[t.c.district.startswith(p, autoescape=True) for p in campaign.jurisdiction]))
    if session.connection().dialect.name == "sqlite":
        scope = _in_scope_packed(session, t, conds)
        if scope is not None:
            return scope
    rows = _fetch_raw(session, select(t.c.id, t.c.uscc, t.c.risk_class, t.c.status).where(*conds))
    if not rows:
        return _Scope.empty()
    ids, usccs, classes, statuses = zip(*rows)
    terminal = {s: i for i, s in enumerate(TERMINAL_STATUSES)}
    return _Scope(np.array(ids, dtype=np.int64), np.array(usccs, dtype=str),
                  np.array([k or "-" for k in classes], dtype="U1").astype("S1"),
                  np.fromiter((terminal.get(x, -1) for x in statuses), dtype=np.int8, count=len(rows)))


def _in_scope_packed(session: Session, t, conds: list) -> _Scope | None:
    """SQLite: the four columns as four strings from one aggregate query (one row instead of a million
    tuples: three times faster to read). ``None`` when a value does not fit the packed layout (a USCC that is
    not 18 ASCII characters, a class that is not one character): the caller then reads row by row."""
    from sqlalchemy import case, func, literal_column

    def lit(v: str):  # constants inline: bound separators make SQLite's group_concat half as fast
        return literal_column("'" + v.replace("'", "''") + "'")

    flag = case(*[(t.c.status == lit(s), lit(str(i))) for i, s in enumerate(TERMINAL_STATUSES)], else_=lit("-"))
    q = select(func.count(), func.group_concat(t.c.id, lit(",")), func.group_concat(t.c.uscc, lit("")),
               func.group_concat(func.coalesce(t.c.risk_class, lit("-")), lit("")), func.group_concat(flag, lit("")),
               func.sum(case((func.length(t.c.uscc) == literal_column("18"), literal_column("0")),
                             else_=literal_column("1")))).where(*conds)
    try:
        ((n, ids_text, uscc_text, class_text, flag_text, odd),) = _fetch_raw(session, q)
    except sqlite3.DataError:  # a string over SQLite's length limit (1 GB: some 55 million USCCs)
        return None
    if not n:
        return _Scope.empty()
    if odd or len(uscc_text) != 18 * n or len(class_text) != n or len(flag_text) != n or not uscc_text.isascii() \
            or not class_text.isascii():
        return None
    ids = np.fromstring(ids_text, dtype=np.int64, sep=",")  # decimal text; 10x faster than split + int
    if len(ids) != n:
        return None
    flags = np.frombuffer(flag_text.encode("ascii"), dtype=np.uint8)
    terminal = np.where(flags == ord("-"), -1, flags.astype(np.int16) - ord("0")).astype(np.int8)
    return _Scope(ids, np.frombuffer(uscc_text.encode("ascii"), dtype="S18"),
                  np.frombuffer(class_text.encode("ascii"), dtype="S1"), terminal)


def _fetch_raw(session: Session, q) -> list[tuple]:
    """Plain DBAPI tuples on the session's connection (same transaction): for a million rows, SQLAlchemy's
    row objects cost more than the query itself."""
    conn = session.connection()
    compiled = q.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if compiled.positional:
        params: Any = tuple(compiled.params[k] for k in compiled.positiontup)
    else:
        params = compiled.params
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(str(compiled), params)
        return cur.fetchall()
    finally:
        cur.close()


def _insert_raw(session: Session, table, columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert plain tuples (in ``columns`` order) as multi-row ``INSERT … VALUES (…), (…)`` statements of a few
    hundred rows through the DBAPI: no per-row parameter processing, and on SQLite about twice as fast as
    ``executemany``. Only for values the driver takes as they are (integers, strings, None)."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if mark is None:  # named or numeric placeholders: SQLAlchemy's executemany
        conn.execute(insert(table), [dict(zip(columns, r)) for r in rows])
        return
    q = dialect.identifier_preparer
    head = f"INSERT INTO {q.format_table(table)} ({', '.join(q.quote(c) for c in columns)}) VALUES "
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    per = 500
    if dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32, 0):  # 999 parameters at most
        per = max(1, 999 // len(columns))
    full = head + ", ".join([one] * per)
    chain = itertools.chain.from_iterable
    for lo in range(0, len(rows), per):
        part = rows[lo:lo + per]
        sql = full if len(part) == per else head + ", ".join([one] * len(part))
        conn.exec_driver_sql(sql, tuple(chain(part)))


@dataclass
class PopulationSummary:
    campaign_id: int
    population_hash: str
    eligible: int
    by_stratum: dict[str, int]
    unclassified: int
    excluded: int
    exclusions_by_reason: dict[str, int]

    def to_dict(self) -> dict:
        return {"campaign_id": self.campaign_id, "population_hash": self.population_hash,
                "eligible": self.eligible, "by_stratum": self.by_stratum, "unclassified": self.unclassified,
                "excluded": self.excluded, "exclusions_by_reason": self.exclusions_by_reason}


def _population_summary(c: Campaign) -> PopulationSummary:
    s = c.population_summary or {}
    return PopulationSummary(c.id, c.population_hash, c.population_size, s.get("by_stratum", {}),
                             s.get("unclassified", 0), s.get("excluded", 0), s.get("exclusions_by_reason", {}))


def freeze_population(session: Session, ref: int | str, now: datetime) -> PopulationSummary:
    """Compute the eligible population (step 3), log exclusions, store the list and its hash. Once only:
    a frozen campaign returns its stored summary."""
    c = _campaign(session, ref, lock=True)
    if c.population_hash is not None:
        return _population_summary(c)
    if c.status not in ("draft", "approved"):
        raise Conflict(f"campaign {c.code} is {c.status}; its population can no longer be computed")
    _freeze(session, c, now)
    return _population_summary(c)


def _freeze(session: Session, c: Campaign, now: datetime) -> Population:
    pop, summary, excluded = _eligible(session, c)
    _insert_raw(session, CampaignExclusion.__table__, EXCLUSION_COLUMNS, excluded)
    session.add(CampaignPopulation(campaign_id=c.id, format=POPULATION_FORMAT, sha256=pop.sha256, count=pop.size,
                                   data=zlib.compress(pop.csv, 1),
                                   entity_ids=zlib.compress(pop.entity_ids.astype("<i8").tobytes(), 1)))
    c.population_hash, c.population_size, c.population_frozen_at = pop.sha256, pop.size, now
    c.population_summary = summary
    session.flush()
    return pop


EXCLUSION_COLUMNS = ("campaign_id", "entity_id", "uscc", "reason", "detail")


def _eligible(session: Session, c: Campaign) -> tuple[Population, dict, list[tuple]]:
    """The eligible population, its summary and the exclusion log rows (``EXCLUSION_COLUMNS``)."""
    scope = _in_scope(session, c)
    keep = scope.terminal < 0
    hit = np.flatnonzero(~keep)
    parts = [(hit, "terminal_status", [TERMINAL_STATUSES[x] for x in scope.terminal[hit].tolist()])]
    for reason, rule in _RULES:
        found = rule(session, c)
        if not found:
            continue
        hit = np.flatnonzero(keep & np.isin(scope.ids, np.fromiter(found, dtype=np.int64, count=len(found))))
        parts.append((hit, reason, [(found[i] or "")[:200] or None for i in scope.ids[hit].tolist()]))
        keep[hit] = False
    by_reason = {reason: len(hit) for hit, reason, _ in parts if len(hit)}
    classes = scope.classes[keep]
    none = classes == b"-"
    unclassified = int(np.count_nonzero(none))
    if unclassified:
        classes = np.where(none, UNCLASSIFIED_AS.encode(), classes)
    pop = Population.build(scope.usccs[keep], classes, scope.ids[keep])
    summary = {"by_stratum": pop.counts(), "unclassified": unclassified, "excluded": sum(by_reason.values()),
               "exclusions_by_reason": by_reason}
    return pop, summary, _exclusion_rows(c.id, scope, parts)


def _exclusion_rows(campaign_id: int, scope: _Scope, parts: list[tuple[np.ndarray, str, list]]) -> list[tuple]:
    """One row per excluded entity, in entity id order (the inserts then append to the B-trees)."""
    idx = np.concatenate([hit for hit, _, _ in parts])
    if not len(idx):
        return []
    reasons = [reason for hit, reason, _ in parts for _ in range(len(hit))]
    details = [x for _, _, ds in parts for x in ds]
    ids = scope.ids[idx]
    usccs = scope.usccs[idx].tolist()
    if isinstance(usccs[0], bytes):
        usccs = [u.decode() for u in usccs]
    ids_l = ids.tolist()
    return [(campaign_id, ids_l[i], usccs[i], reasons[i], details[i])
            for i in np.argsort(ids, kind="stable").tolist()]


def load_population(session: Session, campaign: Campaign, with_ids: bool = True) -> Population:
    """The frozen population as stored (its ``sha256`` is recomputed from the stored bytes)."""
    row = session.get(CampaignPopulation, campaign.id)
    if row is None:
        raise NotFound(f"campaign {campaign.code} has no frozen population")
    text = zlib.decompress(row.data)
    pop = Population.from_csv(text)
    if pop.csv != text:  # not canonical: hash the stored bytes so that verification sees the mismatch
        pop = Population(pop.usccs, pop.classes, text, hashlib.sha256(text).hexdigest())
    if with_ids:
        ids = np.frombuffer(zlib.decompress(row.entity_ids), dtype="<i8").astype(np.int64)
        if len(ids) == pop.size:
            pop = Population(pop.usccs, pop.classes, pop.csv, pop.sha256, ids)
    return pop


# ------------------------------------------------------------------------------------------------ draw
@dataclass
class DrawSummary:
    campaign_id: int
    code: str
    seed: str
    population_hash: str
    algorithm: str
    by_stratum: dict[str, int]
    control: int
    total: int
    shortfall: int
    capacity_cut: dict[str, int]
    created: bool  # False when the stored draw was returned

    def to_dict(self) -> dict:
        return {"campaign_id": self.campaign_id, "code": self.code, "seed": self.seed,
                "population_hash": self.population_hash, "algorithm": self.algorithm,
                "by_stratum": self.by_stratum, "control": self.control, "total": self.total,
                "shortfall": self.shortfall, "capacity_cut": self.capacity_cut, "created": self.created}


def _draw_summary(c: Campaign, created: bool) -> DrawSummary:
    s = c.draw_summary
    return DrawSummary(c.id, c.code, c.seed, c.population_hash, c.algorithm,
                       {k: s["drawn"][k] for k in CLASSES}, s["drawn"]["control"], s["total"],
                       s["shortfall"]["D"], s["capacity_cut"], created)


def draw_campaign(session: Session, ref: int | str, now: datetime) -> DrawSummary:
    """Draw an approved campaign (step 4), freezing its population first if needed. Idempotent: a drawn
    campaign returns its stored result."""
    c = _campaign(session, ref, lock=True)
    if c.status in DRAWN_STATUSES:
        return _draw_summary(c, created=False)
    if c.status != "approved":
        raise Conflict(f"campaign {c.code} is {c.status}; only an approved campaign can be drawn")
    if c.public_value is None:
        raise Conflict(f"campaign {c.code} has no public randomness value recorded")
    if c.population_hash is None:
        pop = _freeze(session, c, now)
    else:
        pop = load_population(session, c)
        if pop.sha256 != c.population_hash:
            raise Conflict(f"campaign {c.code}: stored population does not match its hash")
    outcome = draw_population(pop, c.code, c.public_value, c.ratios, c.control_share, c.capacity)
    if outcome.rows:
        if len(outcome.entity_ids) != len(outcome.rows):
            raise Conflict(f"campaign {c.code}: the stored population has no entity ids")
        ids = outcome.entity_ids
        rows = sorted(outcome.rows, key=lambda r: ids[r.uscc])  # in entity id order: the inserts append
        _insert_raw(session, DrawResult.__table__,
                    ("campaign_id", "entity_id", "uscc", "stratum", "risk_class", "key_hex", "rank"),
                    [(c.id, ids[r.uscc], r.uscc, r.stratum, r.risk_class, r.key_hex, r.rank) for r in rows])
    c.seed, c.algorithm, c.drawn_at, c.draw_summary = outcome.seed_hex, outcome.algorithm, now, outcome.summary
    c.status = "drawn"
    session.flush()
    return _draw_summary(c, created=True)


_STRATUM_ORDER = {s: i for i, s in enumerate(("control",) + CLASSES)}


def _draw_order(row) -> tuple[int, int]:
    """The stored draw's order: control first then A–D, each by rank."""
    return _STRATUM_ORDER[row.stratum], row.rank


def drawn_rows(session: Session, campaign_id: int) -> list[DrawResult]:
    """The stored draw, control first then A–D, each by rank."""
    return sorted(session.scalars(select(DrawResult).where(DrawResult.campaign_id == campaign_id)), key=_draw_order)


def drawn_entities(session: Session, campaign_id: int) -> list:
    """:func:`drawn_rows` as plain ``(uscc, entity_id, stratum, rank)`` rows, for work over thousands of them
    (a campaign launch) that needs no ORM objects."""
    return sorted(session.execute(select(DrawResult.uscc, DrawResult.entity_id, DrawResult.stratum, DrawResult.rank)
                                  .where(DrawResult.campaign_id == campaign_id)), key=_draw_order)


# ---------------------------------------------------------------------------------------------- verify
@dataclass
class VerifyResult:
    ok: bool
    differences: list[str]
    campaign: str = ""
    seed: str = ""
    population_hash: str = ""
    drawn: int = 0

    def to_dict(self) -> dict:
        return {"ok": self.ok, "campaign": self.campaign, "seed": self.seed,
                "population_hash": self.population_hash, "drawn": self.drawn, "differences": self.differences}


def verify(session: Session, ref: int | str) -> VerifyResult:
    """Recompute a campaign's draw from its recorded inputs (stored population list, code, public value,
    ratios, control share, capacity) and compare it with the stored result and summary."""
    c = _campaign(session, ref)
    if c.status not in DRAWN_STATUSES:
        raise Conflict(f"campaign {c.code} is {c.status}: nothing has been drawn yet")
    diffs: list[str] = []
    pop = load_population(session, c, with_ids=False)
    if pop.sha256 != c.population_hash:
        diffs.append(f"population: the stored list hashes to {pop.sha256}, the campaign records "
                     f"{c.population_hash}")
    if c.algorithm != ALGORITHM:
        diffs.append(f"algorithm: recorded {c.algorithm!r}, this verifier implements {ALGORITHM!r}")
    try:
        seed = compute_seed(c.code, c.population_hash, c.public_value or "").hex()
    except InvalidInput as exc:
        return VerifyResult(False, diffs + [f"seed inputs: {exc}"], c.code, "", c.population_hash or "", 0)
    if seed != c.seed:
        diffs.append(f"seed: recomputed {seed} from code, population hash and public value "
                     f"{c.public_value!r}; the campaign records {c.seed}")
    pop_for_draw = Population(pop.usccs, pop.classes, pop.csv, c.population_hash)
    outcome = draw_population(pop_for_draw, c.code, c.public_value, c.ratios, c.control_share, c.capacity)
    if pop.sha256 != c.population_hash:  # the honest result for the stored list, for the record
        outcome = draw_population(pop, c.code, c.public_value, c.ratios, c.control_share, c.capacity)
    t = DrawResult.__table__
    stored = [DrawnRow(*r) for r in _fetch_raw(session, select(t.c.uscc, t.c.stratum, t.c.risk_class, t.c.key_hex,
                                                                  t.c.rank).where(t.c.campaign_id == c.id))]
    diffs += compare_rows(outcome.rows, stored)
    summary = c.draw_summary or {}
    for k in ("drawn", "total", "shortfall", "capacity_cut", "planned", "population"):
        if summary.get(k) != outcome.summary.get(k):
            diffs.append(f"summary {k}: recorded {summary.get(k)!r}, recomputed {outcome.summary.get(k)!r}")
    return VerifyResult(not diffs, diffs, c.code, seed, c.population_hash or "", len(stored))


# ------------------------------------------------------------------------------------------ joint checks
@dataclass
class JointCheck:
    """One visit for an entity drawn by campaigns whose windows share at least one day."""

    entity_id: int
    uscc: str
    campaign_ids: list[int]
    campaign_codes: list[str]
    departments: list[str]
    items: list[str]
    window_start: date  # the days every member campaign's window covers
    window_end: date

    @property
    def lead_campaign_id(self) -> int:
        """The campaign whose inspection carries the visit (the lowest id); the others join it."""
        return self.campaign_ids[0]

    @property
    def joint(self) -> bool:
        return len(self.campaign_ids) > 1

    def to_dict(self) -> dict:
        return {"entity_id": self.entity_id, "uscc": self.uscc, "campaign_ids": self.campaign_ids,
                "campaign_codes": self.campaign_codes, "lead_campaign_id": self.lead_campaign_id,
                "departments": self.departments, "items": self.items, "window_start": self.window_start,
                "window_end": self.window_end, "joint": self.joint}


def _group_windows(members: list[tuple[int, str, date, date, list, list]]) -> list[list]:
    """Greedy interval stabbing: sort by window end, group everything that contains the earliest end.
    Every group has a common day and the number of visits is the fewest possible; campaigns whose
    windows do not overlap stay in separate visits (the later one is deferred, ``no_disturbance``)."""
    rest = sorted(members, key=lambda m: (m[3], m[2], m[0]))
    groups = []
    while rest:
        point = rest[0][3]
        group = [m for m in rest if m[2] <= point]
        rest = [m for m in rest if m[2] > point]
        groups.append(sorted(group, key=lambda m: m[0]))
    return groups


def joint_checks(session: Session, window_start: date | None = None, window_end: date | None = None,
                 entity_ids: Sequence[int] | None = None) -> list[JointCheck]:
    """Visits for drawn entities of campaigns whose windows intersect [window_start, window_end]:
    an entity drawn by several campaigns with overlapping windows gets one visit with the union of
    their departments and items (DOMAIN.md §2 step 5, §6)."""
    # the campaigns first (a few), then their drawn entities (thousands): each campaign's JSON and dates are
    # decoded once, not once per drawn entity
    cq = (select(Campaign.id, Campaign.code, Campaign.window_start, Campaign.window_end, Campaign.departments,
                 Campaign.items).where(Campaign.status.in_(("drawn", "published"))))
    if window_start is not None:
        cq = cq.where(Campaign.window_end >= window_start)
    if window_end is not None:
        cq = cq.where(Campaign.window_start <= window_end)
    campaigns = {row[0]: tuple(row) for row in session.execute(cq)}
    by_entity: dict[int, list] = {}
    usccs: dict[int, str] = {}
    if not campaigns:
        return []
    q = select(DrawResult.entity_id, DrawResult.uscc, DrawResult.campaign_id).where(
        DrawResult.campaign_id.in_(list(campaigns)))
    if entity_ids is not None:
        q = q.where(DrawResult.entity_id.in_(list(entity_ids)))
    for eid, uscc, cid in session.execute(q):
        by_entity.setdefault(eid, []).append(campaigns[cid])
        usccs[eid] = uscc
    out = []
    for eid in sorted(by_entity):
        for g in _group_windows(by_entity[eid]):
            out.append(JointCheck(
                eid, usccs[eid], [m[0] for m in g], [m[1] for m in g],
                list(dict.fromkeys(d for m in g for d in m[4])), sorted({i for m in g for i in m[5]}),
                max(m[2] for m in g), min(m[3] for m in g)))
    return out


_JOINT = "draw.joint_checks"


def prefetch_joint_checks(session: Session, entity_ids: Sequence[int]) -> None:
    """The visits of many entities (a campaign launch: every child asks for its own) in a few queries,
    kept for the transaction (:mod:`engine.txcache`; dropped when a draw result or a campaign is written)."""
    ids = sorted(set(entity_ids))
    known: dict[int, list[JointCheck]] = {i: [] for i in ids}
    for chunk in chunks(ids):
        for jc in joint_checks(session, entity_ids=chunk):
            known[jc.entity_id].append(jc)
    prior = txcache.peek(session, _JOINT) or {}
    txcache.put(session, _JOINT, (DrawResult.__tablename__, Campaign.__tablename__), {**prior, **known})


def joint_check_for(session: Session, campaign_id: int, entity_id: int) -> JointCheck:
    """The visit that covers ``entity_id`` drawn by ``campaign_id``."""
    known = txcache.peek(session, _JOINT)
    checks = known.get(entity_id) if known is not None else None
    for jc in checks if checks is not None else joint_checks(session, entity_ids=[entity_id]):
        if campaign_id in jc.campaign_ids:
            return jc
    raise NotFound(f"entity {entity_id} is not drawn by campaign {campaign_id}")
