"""The filtered pool of a team draw: the inspectors who may be drawn for an entity and a window, in key order,
with the reason each other one is left out, and how the pool is recorded in the draw."""
from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from engine import txcache
from engine.db import JsonText, stores_json_text

from .registries import is_certified, region_covers
from .teams_cache import (
    INSPECTOR_TABLES,
    all_inspectors,
    entity_conflicts,
    last_team_members,
    leaves_in_window,
    open_workload,
)
from .teams_selection import Candidate, InspectorRow, NoQualifiedInspector, TeamPolicy, candidate_fields


@dataclass
class Pool:
    candidates: list[Candidate]          # in key order, rotation-excluded ones not included
    rotation_excluded: list[Candidate]   # eligible but on the entity's last team
    excluded: dict[str, str]             # code -> reason
    #: inspector id -> its record's JSON text up to the key (:func:`_candidate_head`), when built from the
    #: per-transaction pool (:func:`pool_text` writes the record without encoding every candidate again)
    heads: dict[int, str] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for reason in self.excluded.values():
            kind = reason.split(":")[0]
            out[kind] = out.get(kind, 0) + 1
        if self.rotation_excluded:
            out["rotation"] = len(self.rotation_excluded)
        return out


_object_new = object.__new__


def _covering(session: Session, district: str) -> list[tuple[InspectorRow, dict, bytes, str]]:
    """The inspectors whose region covers ``district``, each with its :class:`Candidate` fields, its code
    as bytes (the HMAC message) and its candidate record's JSON text up to the key, read once per
    transaction: a launch forms thousands of teams in a few districts."""
    def load():
        out = []
        for i in all_inspectors(session):
            if region_covers(i.region, district):
                fields_ = candidate_fields(i)
                out.append((i, fields_, i.code.encode(), _candidate_head(fields_)))
        return out
    return txcache.get(session, ("teams.covering", district), INSPECTOR_TABLES, load)


def _candidate_head(fields_: dict) -> str:
    """``json.dumps(Candidate.doc())`` cut before the key's value: ``{..., "key": "``."""
    text = json.dumps(Candidate(**fields_, key="").doc())
    return text[:-2]  # the empty key's closing quote and the brace


def build_pool(session: Session, *, entity, seed: str, start: date, end: date, policy: TeamPolicy,
               exclude_ids: set[int] = frozenset(), before_team: int | None = None) -> Pool:
    """The filtered pool for ``entity`` and the window ``[start, end]``, in key order."""
    leave = leaves_in_window(session, start, end)
    conflicts = entity_conflicts(session, entity.uscc)
    load = open_workload(session)
    last_team = last_team_members(session, entity.id, before_team=before_team) if policy.rotation != "off" else set()
    candidates, rotation, excluded, heads = [], [], {}, {}
    seed_key = bytes.fromhex(seed)
    for i, fields_, code_bytes, head in _covering(session, entity.district):
        if i.id in exclude_ids:
            continue
        if not i.active:
            excluded[i.code] = "inactive"
        elif not i.is_expert and not is_certified(i, start, end):
            excluded[i.code] = ("certificate: expired" if i.cert_expires else "certificate: none") + \
                               (f" (valid to {i.cert_expires})" if i.cert_expires else "")
        elif i.id in leave:
            lv_start, lv_end, lv_reason = leave[i.id][0]
            excluded[i.code] = f"leave: {lv_start}..{lv_end}" + (f" {lv_reason}" if lv_reason else "")
        elif i.id in conflicts:
            excluded[i.code] = f"conflict: {conflicts[i.id]}"
        elif load.get(i.id, 0) >= policy.workload_cap:
            excluded[i.code] = f"workload: {load[i.id]} open assignments (cap {policy.workload_cap})"
        else:
            # Candidate.of(i, seed), built from the fields read once per transaction
            c = _object_new(Candidate)
            c.__dict__.update(fields_)
            c.__dict__["key"] = hmac.digest(seed_key, code_bytes, "sha256").hex()
            (rotation if i.id in last_team else candidates).append(c)
            heads[i.id] = head
    candidates.sort(key=lambda c: c.key)
    rotation.sort(key=lambda c: c.key)
    return Pool(candidates, rotation, excluded, heads)


def _describe(missing: list[dict], district: str) -> str:
    parts = []
    for m in missing:
        if m["what"] == "skill":
            parts.append(f"no certified officer with skill {m['skill']!r} available in district {district}")
        elif m["what"] == "leader":
            extra = f" with seniority ≥ {m['min_seniority']}" if m.get("min_seniority") else ""
            parts.append(f"no leader-eligible certified officer{extra} available in district {district}")
        else:
            parts.append(f"only {m['available']} certified officer(s) available in district {district}, "
                         f"need {m['need']}")
    return "; ".join(parts)


def raise_missing(entity, missing: list[dict], pool: Pool, prefix: str) -> None:
    """Raise :class:`NoQualifiedInspector` for what the selection reports ``missing``: what is lacking, in
    which district, and how many inspectors the pool left out for which reason."""
    summary = pool.summary()
    why = ", ".join(f"{n} {k}" for k, n in sorted(summary.items()))
    raise NoQualifiedInspector(f"{prefix}: {_describe(missing, entity.district)}"
                               + (f" (excluded: {why})" if why else ""),
                               missing=missing, district=entity.district, uscc=entity.uscc, excluded=pool.excluded)


def pool_text(session: Session, pool: Pool, relaxed: bool) -> JsonText | dict:
    """:func:`pool_doc` as the JSON text ``json.dumps`` would make of it, assembled from the candidates'
    pre-encoded records (a draw records every candidate of the district; encoding them was a tenth of a
    millisecond per team). An engine not made by :mod:`engine.db` gets the document instead."""
    cands = pool.candidates + (pool.rotation_excluded if relaxed else [])
    heads = pool.heads
    if not stores_json_text(session) or any(c.id not in heads for c in cands):
        return pool_doc(pool, relaxed)
    records = ", ".join([heads[c.id] + c.key + '"}' for c in sorted(cands, key=_by_key)])
    return JsonText(f'{{"candidates": [{records}], '
                    f'"rotation_excluded": {json.dumps([c.code for c in pool.rotation_excluded])}, '
                    f'"excluded": {json.dumps(pool.excluded)}, "rotation_relaxed": {json.dumps(relaxed)}}}')


def _by_key(c: Candidate) -> str:
    return c.key


def pool_doc(pool: Pool, relaxed: bool) -> dict:
    """The pool as recorded in the draw (``team_draw.pool``): what ``verify_draw`` replays."""
    cands = pool.candidates + (pool.rotation_excluded if relaxed else [])
    return {"candidates": [c.doc() for c in sorted(cands, key=lambda c: c.key)],
            "rotation_excluded": [c.code for c in pool.rotation_excluded],
            "excluded": pool.excluded, "rotation_relaxed": relaxed}

