#!/usr/bin/env python3
"""Check a published random draw of regflow (algorithm ``regflow-draw/1``) on your own computer.

This file is served as it is by the public draw pages (``/public/draws/verifier.py``). It needs Python 3.8 or
newer and nothing else: no regflow, no third-party package, no network. Given

* the population file the campaign published (``population.csv``: one ``USCC,CLASS`` line per eligible
  entity, sorted; its SHA-256 is the published population hash),
* the campaign code and the public random value,
* the plan's ratios per class, the control share and the capacity (all shown on the campaign's page),
* the published list of drawn entities (``drawn.txt``: one USCC per line, any order),

it recomputes the seed and the draw as the specification in regflow's
``engine/supervision/draw/algorithm.py`` describes it, and compares the drawn set with the published list::

    python3 verifier.py --population population.csv --code FZ-2026-01 --public-value "03 11 19 24 27 30 + 07" \\
        --ratios A=0.01,B=0.04,C=0.12,D=0.30 --control-share 0.10 --drawn drawn.txt \\
        [--capacity 500] [--population-hash HEX] [--seed HEX]

Exit status: 0 the published list is exactly the draw; 1 it is not (every difference is printed: an entity
missing, an entity that should not be there, a population whose hash differs from the published one, a seed
that differs); 2 the input cannot be read. ``--json`` prints the result as one JSON object.

It is written apart from the engine's own implementation (which uses numpy for speed) on purpose: a second,
plain reading of the specification. Both must agree on every draw; regflow's tests check that they do.
"""
from __future__ import annotations

import argparse
import hashlib
import heapq
import hmac
import json
import re
import sys
from decimal import Decimal, InvalidOperation
from fractions import Fraction

ALGORITHM = "regflow-draw/1"
CLASSES = ("A", "B", "C", "D")
_USCC = re.compile(r"[0-9A-Z]{1,18}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InputError(Exception):
    """The input cannot be read (exit status 2)."""


def parse_population(data: bytes) -> list[tuple[str, str]]:
    """``USCC,CLASS`` lines, sorted bytewise by USCC, unique; the file's bytes are what the hash covers."""
    if data and not data.endswith(b"\n"):
        raise InputError("population file: the last line must end with a newline (LF)")
    out: list[tuple[str, str]] = []
    for n, raw in enumerate(data.split(b"\n")[:-1] if data else [], 1):
        try:
            line = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InputError(f"population file line {n}: not ASCII") from None
        parts = line.split(",")
        if len(parts) != 2 or not _USCC.fullmatch(parts[0]) or parts[1] not in CLASSES:
            raise InputError(f"population file line {n}: expected 'USCC,CLASS' (class A-D), got {line!r}")
        if out and parts[0].encode() <= out[-1][0].encode():
            raise InputError(f"population file line {n}: {parts[0]} is not after {out[-1][0]} "
                             f"(the list is sorted by USCC, each once)")
        out.append((parts[0], parts[1]))
    return out


def parse_drawn(text: str) -> list[str]:
    """One USCC per line (blank lines ignored; anything after a comma ignored)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        u = line.split(",")[0].strip()
        if not u:
            continue
        if not _USCC.fullmatch(u):
            raise InputError(f"drawn list line {n}: {u!r} is not a USCC")
        out.append(u)
    return out


def decimal_share(value: str, what: str, upper_inclusive: bool = True) -> Fraction:
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InputError(f"{what} must be a decimal number, got {value!r}") from None
    if not d.is_finite() or d < 0 or d > 1 or (not upper_inclusive and d == 1):
        raise InputError(f"{what} must be between 0 and 1, got {value!r}")
    return Fraction(d)


def parse_ratios(text: str) -> dict[str, Fraction]:
    ratios = {}
    for part in text.split(","):
        if "=" not in part:
            raise InputError(f"ratios: expected A=0.01,B=0.04,C=0.12,D=0.30, got {text!r}")
        k, v = (x.strip() for x in part.split("=", 1))
        if k not in CLASSES or k in ratios:
            raise InputError(f"ratios: unknown or repeated class {k!r}")
        ratios[k] = decimal_share(v, f"ratio of class {k}")
    if set(ratios) != set(CLASSES):
        raise InputError("ratios: give all four classes A, B, C and D")
    return ratios


def text_field(value: str, what: str) -> str:
    if not value or value != value.strip() or _CONTROL.search(value):
        raise InputError(f"{what} must be non-empty, without control characters or surrounding spaces")
    return value


def compute_seed(code: str, population_hash: str, public_value: str) -> bytes:
    msg = "\n".join((ALGORITHM, text_field(code, "campaign code"), population_hash,
                     text_field(public_value, "public value")))
    return hashlib.sha256(msg.encode("utf-8")).digest()


def sround(x: Fraction, seed: bytes, label: str) -> int:
    """Stochastic rounding: floor(x) + [u < frac(x)], u from HMAC-SHA256(seed, "round|" + label)."""
    whole = x.numerator // x.denominator
    frac = x - whole
    if not frac:
        return whole
    u = int.from_bytes(hmac.new(seed, ("round|" + label).encode(), hashlib.sha256).digest()[:8], "big")
    return whole + (1 if Fraction(u, 1 << 64) < frac else 0)


def draw(population: list[tuple[str, str]], seed: bytes, ratios: dict[str, Fraction], share: Fraction,
         capacity: int | None) -> dict[str, list[str]]:
    """The drawn USCCs per stratum (``control``, then A-D), each in rank order."""
    keys = {u: hmac.digest(seed, u.encode("ascii"), "sha256") for u, _ in population}
    cls = dict(population)
    sizes = {c: sum(1 for _, k in population if k == c) for c in CLASSES}
    planned = {}
    for c in CLASSES:
        n = sround(ratios[c] * sizes[c], seed, c)
        planned[c] = max(n, 1) if sizes[c] > 0 and ratios[c] > 0 else n
    total = sum(planned.values())
    control_n = sround(share * total / (1 - share), seed, "control") if share else 0
    control_n = min(control_n, len(population))
    if capacity is not None and total + control_n > capacity:
        control_n = min(control_n, sround(share * capacity, seed, "control-capacity"), capacity)
    control = heapq.nsmallest(control_n, (u for u, _ in population), key=lambda u: (keys[u][16:32], u.encode()))
    in_control = set(control)
    taken, carry = {}, 0
    for c in CLASSES:
        avail = sizes[c] - sum(1 for u in control if cls[u] == c)
        want = planned[c] + carry
        taken[c] = min(want, avail)
        carry = want - taken[c]
    if capacity is not None:
        excess = control_n + sum(taken.values()) - capacity
        for c in CLASSES:
            if excess <= 0:
                break
            cut = min(taken[c], excess)
            taken[c] -= cut
            excess -= cut
    out = {"control": control}
    for c in CLASSES:
        members = (u for u, k in population if k == c and u not in in_control)
        out[c] = heapq.nsmallest(taken[c], members, key=lambda u: (keys[u][0:16], u.encode()))
    return out


def verify(population_bytes: bytes, code: str, public_value: str, ratios: dict[str, Fraction], share: Fraction,
           capacity: int | None, drawn: list[str], population_hash: str | None = None,
           seed_hex: str | None = None) -> dict:
    """Everything the command prints: ``ok`` and each difference found."""
    differences = []
    actual_hash = hashlib.sha256(population_bytes).hexdigest()
    if population_hash is not None and population_hash.lower() != actual_hash:
        differences.append(f"population: the file hashes to {actual_hash}, the published hash is "
                           f"{population_hash.lower()}")
    population = parse_population(population_bytes)
    seed = compute_seed(code, actual_hash, public_value)
    if seed_hex is not None and seed_hex.lower() != seed.hex():
        differences.append(f"seed: recomputed {seed.hex()}, the published seed is {seed_hex.lower()}")
    strata = draw(population, seed, ratios, share, capacity)
    expected = {u for members in strata.values() for u in members}
    listed = set(drawn)
    if len(listed) != len(drawn):
        differences.append(f"drawn list: {len(drawn) - len(listed)} USCC(s) listed more than once")
    for u in sorted(expected - listed):
        differences.append(f"missing: {u} is drawn but not in the published list")
    for u in sorted(listed - expected):
        differences.append(f"unexpected: {u} is in the published list but is not drawn")
    return {"ok": not differences, "algorithm": ALGORITHM, "population_hash": actual_hash, "seed": seed.hex(),
            "population": len(population), "drawn": {k: len(v) for k, v in strata.items()},
            "total": len(expected), "differences": differences}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Check a published regflow-draw/1 draw offline.")
    ap.add_argument("--population", required=True, help="the published population file (USCC,CLASS lines)")
    ap.add_argument("--code", required=True, help="the campaign code")
    ap.add_argument("--public-value", required=True, help="the public random value")
    ap.add_argument("--ratios", required=True, help="A=..,B=..,C=..,D=.. as published")
    ap.add_argument("--control-share", required=True, help="share of the control stratum, e.g. 0.10")
    ap.add_argument("--capacity", type=int, default=None, help="the plan's capacity (omit when none)")
    ap.add_argument("--drawn", required=True, help="the published list of drawn USCCs, one a line")
    ap.add_argument("--population-hash", default=None, help="the published population hash, to compare")
    ap.add_argument("--seed", default=None, help="the published seed, to compare")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    try:
        with open(args.population, "rb") as f:
            population_bytes = f.read()
        with open(args.drawn, encoding="utf-8") as f:
            drawn = parse_drawn(f.read())
        if args.capacity is not None and args.capacity < 0:
            raise InputError("capacity must be 0 or more")
        result = verify(population_bytes, args.code, args.public_value, parse_ratios(args.ratios),
                        decimal_share(args.control_share, "control share", upper_inclusive=False), args.capacity,
                        drawn, args.population_hash, args.seed)
    except (OSError, UnicodeDecodeError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(f"population: {result['population']} entities, SHA-256 {result['population_hash']}")
        print(f"seed: {result['seed']}")
        print("drawn: " + ", ".join(f"{k} {v}" for k, v in result["drawn"].items()) + f" (total {result['total']})")
        for line in result["differences"]:
            print(line)
        print("VERIFIED: the published list is exactly this draw" if result["ok"]
              else f"NOT VERIFIED: {len(result['differences'])} difference(s)")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
