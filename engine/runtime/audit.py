"""Append-only, hash-chained audit log.

Each instance has its own chain (``instance:<id>``) so workers never queue on one global chain;
deployments, user and role changes, sign-ins and incident retries go to the ``system`` chain. A row's
hash is ``sha256(prev_hash ‖ canonical JSON of its content)``; ``audit_chain`` keeps every chain's
head, and anchors periodically record the heads that moved, themselves hash-chained. ``verify``
recomputes everything: an edited row breaks its hash, a deleted or reordered row breaks the seq and
prev-hash links, and deleting the newest rows leaves the recorded head (and any anchor) pointing
at rows that are gone.
"""
from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from sqlalchemy import cast, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from engine.db import JsonText, RowInserter, stores_json_text

from . import clock
from .models import AuditAnchor, AuditChain, AuditEvent, ProcessInstance

GENESIS = "0" * 64
SYSTEM_CHAIN = "system"


def instance_chain(instance_id: int) -> str:
    return f"instance:{instance_id}"


@dataclass
class Event:
    kind: str
    actor: str
    instance_id: int | None = None
    bpmn_id: str | None = None
    task_guid: str | None = None
    # flow_ids and detail may be given already encoded (:func:`encoded`)
    flow_ids: list[str] | JsonText = field(default_factory=list)
    data_diff: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] | JsonText = field(default_factory=dict)
    at: datetime | None = None


#: the canonical encoder: sorted keys, no spaces, UTF-8 text; ``str`` for values JSON has no type for (datetimes)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_encode = _CANONICAL.encode
_string = json.encoder.encode_basestring  # what the encoder above writes for a str (ensure_ascii=False)


def _canonical(chain: str, seq: int, row: dict) -> bytes:
    """The hashed form of a row as read back (``verify``); :func:`build_rows` writes the same bytes."""
    return _encode({
        "chain": chain, "seq": seq, "at": row["at"].isoformat(timespec="microseconds"), "actor": row["actor"],
        "kind": row["kind"], "instance_id": row["instance_id"], "bpmn_id": row["bpmn_id"],
        "task_guid": row["task_guid"], "flow_ids": row["flow_ids"], "data_diff": row["data_diff"],
        "detail": row["detail"],
    }).encode()


def row_hash(prev_hash: str, chain: str, seq: int, row: dict) -> str:
    h = hashlib.sha256(prev_hash.encode())
    h.update(_canonical(chain, seq, row))
    return h.hexdigest()


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is str:
        return _string(value)
    if type(value) is int:
        return str(value)
    return _encode(value)


#: a key the encoder may have written for a non-str key (int, float, bool, None): sorted before conversion,
#: such keys can come back in another order once read as strings ({2:…, 10:…} → "10" < "2")
_NON_STR_KEY = re.compile(r'"(?:-?[0-9][0-9.eE+-]*|-?Infinity|NaN|true|false|null)":')


def encoded(value: list | dict) -> JsonText:
    """``value`` in the canonical form, for an :class:`Event` field that many events share (encoded once)."""
    return JsonText(_settled(_compound(value)))


def _compound(value: Any) -> str:
    if not value and type(value) in (list, dict):
        return "[]" if type(value) is list else "{}"
    return _encode(value)


def _settled(text: str) -> str:
    """``text`` as the database will give it back and the encoder write it again."""
    return _encode(json.loads(text)) if _NON_STR_KEY.search(text) else text


def build_rows(chain: str, events: Iterable[Event], head: tuple[int, str],
               now: datetime | None = None) -> tuple[list[dict], tuple[int, str]]:
    """Hash-chain ``events`` after ``head`` = (seq, hash); returns the rows and the new head.

    The canonical form (:func:`_canonical`: sorted keys, no spaces, UTF-8) is assembled from its fields,
    each encoded once; the three JSON columns are stored as exactly the text that was hashed
    (:class:`~engine.db.JsonText`), so a value JSON cannot represent (a datetime) is stored as the string
    that was hashed, and ``verify`` re-encoding what it reads gives the same bytes."""
    seq, prev = head
    now = now or clock.now()  # the time of events that do not carry their own (the step's, when given)
    where_from = _ORIGIN.get()
    rows = []
    chain_text = _string(chain)
    stamps: dict[datetime, str] = {}
    for ev in events:
        seq += 1
        at = ev.at or now
        if at.tzinfo is not timezone.utc:  # hashed as it is stored and read back: in UTC
            at = at.astimezone(timezone.utc)
        stamp = stamps.get(at)
        if stamp is None:
            stamp = stamps[at] = _string(at.isoformat(timespec="microseconds"))
        flow, diff, detail = ev.flow_ids, ev.data_diff, ev.detail
        # JsonText fields come settled from encoded(); the others are encoded and checked here
        check = ""
        if type(flow) is not JsonText:
            flow = _compound(flow)
            check = flow
        if type(diff) is not JsonText:
            diff = _compound(diff)
            check += diff
        if type(detail) is not JsonText:
            if where_from is not None:  # (pre-encoded details are the engine's own: element_completed)
                detail = {**detail, "origin": where_from}
            detail = _compound(detail)
            check += detail
        if check and _NON_STR_KEY.search(check):  # (no match can span the joins: "}{", "]{", …)
            flow, diff, detail = _settled(flow), _settled(diff), _settled(detail)  # rare
        body = "".join((
            prev, '{"actor":', _scalar(ev.actor), ',"at":', stamp,
            ',"bpmn_id":', _scalar(ev.bpmn_id), ',"chain":', chain_text, ',"data_diff":', diff,
            ',"detail":', detail, ',"flow_ids":', flow, ',"instance_id":', _scalar(ev.instance_id),
            ',"kind":', _scalar(ev.kind), ',"seq":', str(seq), ',"task_guid":', _scalar(ev.task_guid), "}"))
        digest = hashlib.sha256(body.encode()).hexdigest()  # sha256(prev_hash ‖ canonical content)
        rows.append({
            "chain": chain, "seq": seq, "at": at, "actor": ev.actor, "kind": ev.kind,
            "instance_id": ev.instance_id, "bpmn_id": ev.bpmn_id, "task_guid": ev.task_guid,
            "flow_ids": flow if type(flow) is JsonText else JsonText(flow),
            "data_diff": diff if type(diff) is JsonText else JsonText(diff),
            "detail": detail if type(detail) is JsonText else JsonText(detail),
            "prev_hash": prev, "hash": digest})
        prev = digest
    return rows, (seq, prev)




_INSERT_EVENTS = RowInserter(AuditEvent.__table__, ["chain", "seq", "at", "actor", "kind", "instance_id", "bpmn_id",
                                                     "task_guid", "flow_ids", "data_diff", "detail", "prev_hash",
                                                     "hash"])


def insert_rows(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    if not stores_json_text(session):
        # an engine not made by engine.db would encode the texts again: hand it the values instead
        rows = [{**r, **{k: json.loads(r[k]) for k in ("flow_ids", "data_diff", "detail")
                         if type(r[k]) is JsonText}} for r in rows]
    _INSERT_EVENTS.insert(session, rows)


def append(session: Session, chain: str, events: Iterable[Event]) -> int:
    """Append events to a chain whose head lives in ``audit_chain`` (the system chain); locks the head row.
    Instance chains are appended by the runtime with :func:`build_rows`, their head kept on the instance."""
    events = list(events)
    if not events:
        return 0
    q = select(AuditChain).where(AuditChain.chain == chain)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    head = session.scalars(q).first()
    rows, (seq, last) = build_rows(chain, events, (head.last_seq, head.head_hash) if head else (0, GENESIS))
    insert_rows(session, rows)
    if head is None:
        session.execute(AuditChain.__table__.insert(), [{"chain": chain, "last_seq": seq, "head_hash": last,
                                                        "anchored_seq": 0}])
    else:
        session.execute(update(AuditChain).where(AuditChain.chain == chain).values(last_seq=seq, head_hash=last))
    return seq


#: where the events being built come from (the CLI: its operating-system user), added to their detail
_ORIGIN: ContextVar[dict | None] = ContextVar("regflow_audit_origin", default=None)


@contextmanager
def origin(**where) -> Iterator[None]:
    """Record ``where`` (e.g. ``via="cli", os_user="root"``) as ``detail.origin`` of every event built inside the
    block — what an operator's edge adds to the audit log about who ran it."""
    token = _ORIGIN.set(dict(where))
    try:
        yield
    finally:
        _ORIGIN.reset(token)


def system_event(session: Session, kind: str, actor: str, **detail) -> None:
    append(session, SYSTEM_CHAIN, [Event(kind=kind, actor=actor, detail=detail)])


def write_anchor(session: Session) -> AuditAnchor | None:
    """Record the heads of every chain that moved since the previous anchor."""
    moved = session.scalars(select(AuditChain).where(AuditChain.last_seq > AuditChain.anchored_seq)).all()
    moved_instances = session.execute(
        select(ProcessInstance.id, ProcessInstance.audit_seq, ProcessInstance.audit_head)
        .where(ProcessInstance.audit_seq > ProcessInstance.audit_anchored_seq)).all()
    if not moved and not moved_instances:
        return None
    last = session.scalars(select(AuditAnchor).order_by(AuditAnchor.id.desc()).limit(1)).first()
    prev = last.hash if last else GENESIS
    heads = {c.chain: [c.last_seq, c.head_hash] for c in moved}
    heads.update({instance_chain(i): [q, h] for i, q, h in moved_instances})
    at = clock.now()
    digest = hashlib.sha256(prev.encode())
    digest.update(json.dumps({"at": at.isoformat(timespec="microseconds"), "heads": heads},
                             sort_keys=True, separators=(",", ":")).encode())
    anchor = AuditAnchor(at=at, heads=heads, prev_hash=prev, hash=digest.hexdigest())
    session.add(anchor)
    for c in moved:
        c.anchored_seq = c.last_seq
    for i, q, _h in moved_instances:
        session.execute(update(ProcessInstance).where(ProcessInstance.id == i).values(audit_anchored_seq=q))
    session.flush()
    return anchor


def _anchor_mentions(session: Session, chain: str):
    """SQL: the anchor's ``heads`` has the key ``chain`` (evaluated by the database, not by loading anchors)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(AuditAnchor.heads, JSONB).has_key(chain)
    path = '$."' + chain.replace('"', '') + '"'  # chain names carry no quotes ("instance:12", "system")
    return func.json_type(AuditAnchor.heads, path).is_not(None)


@dataclass
class VerifyReport:
    chains: int = 0
    events: int = 0
    anchors: int = 0
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "chains": self.chains, "events": self.events, "anchors": self.anchors,
                "problems": self.problems}


def verify(session: Session, chain: str | None = None, batch: int = 5000) -> VerifyReport:
    report = VerifyReport()
    heads: dict[str, tuple[int, str]] = {c.chain: (c.last_seq, c.head_hash) for c in session.scalars(
        select(AuditChain).where(AuditChain.chain == chain) if chain else select(AuditChain))}
    q_inst = select(ProcessInstance.id, ProcessInstance.audit_seq, ProcessInstance.audit_head).where(
        ProcessInstance.audit_seq > 0)
    if chain:
        q_inst = q_inst.where(ProcessInstance.id == int(chain.split(":")[1])) if chain.startswith("instance:") \
            else q_inst.where(False)
    heads.update({instance_chain(i): (q, h) for i, q, h in session.execute(q_inst)})
    seen: dict[str, tuple[int, str]] = {}
    q = select(AuditEvent).order_by(AuditEvent.chain, AuditEvent.seq)
    if chain:
        q = q.where(AuditEvent.chain == chain)
    cur_chain, expect_seq, prev = None, 0, GENESIS
    anchors_q = select(AuditAnchor).order_by(AuditAnchor.id)
    if chain:  # one chain (an instance's history page): only the anchors that recorded its head
        anchors_q = anchors_q.where(_anchor_mentions(session, chain))
    anchors = session.scalars(anchors_q).all()
    wanted = {(name, seq) for a in anchors for name, (seq, _h) in a.heads.items() if not chain or name == chain}
    stored: dict[tuple[str, int], str] = {}
    for ev in session.scalars(q.execution_options(yield_per=batch)):
        report.events += 1
        if ev.chain != cur_chain:
            if cur_chain is not None:
                seen[cur_chain] = (expect_seq, prev)
            cur_chain, expect_seq, prev = ev.chain, 0, GENESIS
        expect_seq += 1
        where = {"chain": ev.chain, "seq": ev.seq, "id": ev.id}
        if ev.seq != expect_seq:
            report.problems.append({**where, "problem": f"expected seq {expect_seq}: a row is missing or moved"})
            expect_seq = ev.seq
        if ev.prev_hash != prev:
            report.problems.append({**where, "problem": "prev_hash does not link to the previous row"})
        row = {"at": ev.at, "actor": ev.actor, "kind": ev.kind, "instance_id": ev.instance_id,
               "bpmn_id": ev.bpmn_id, "task_guid": ev.task_guid, "flow_ids": ev.flow_ids,
               "data_diff": ev.data_diff, "detail": ev.detail}
        if row_hash(ev.prev_hash, ev.chain, ev.seq, row) != ev.hash:
            report.problems.append({**where, "problem": "content does not match its hash (edited)"})
        prev = ev.hash
        if (ev.chain, ev.seq) in wanted:
            stored[(ev.chain, ev.seq)] = ev.hash
    if cur_chain is not None:
        seen[cur_chain] = (expect_seq, prev)
    report.chains = len(set(heads) | set(seen))
    for name, (head_seq, head_hash) in heads.items():
        got = seen.get(name)
        if got is None:
            report.problems.append({"chain": name, "problem": f"chain head says {head_seq} events, none found"})
        elif got != (head_seq, head_hash):
            report.problems.append({"chain": name, "seq": got[0],
                                    "problem": f"chain ends at seq {got[0]} but its head records seq {head_seq} "
                                               "(newest rows deleted or altered)"})
    for name in set(seen) - set(heads):
        report.problems.append({"chain": name, "problem": "events without a recorded chain head"})
    prev_anchor = GENESIS
    for anchor in anchors:
        report.anchors += 1
        # one chain's anchors are not consecutive: each is checked against the prev_hash it records, and the
        # links between anchors are the whole log's check (no chain given)
        linked_to = anchor.prev_hash if chain else prev_anchor
        digest = hashlib.sha256(linked_to.encode())
        digest.update(json.dumps({"at": anchor.at.isoformat(timespec="microseconds"), "heads": anchor.heads},
                                 sort_keys=True, separators=(",", ":")).encode())
        if anchor.prev_hash != linked_to or digest.hexdigest() != anchor.hash:
            report.problems.append({"anchor": anchor.id, "problem": "anchor edited or anchors reordered"})
        prev_anchor = anchor.hash
        for name, (seq, h) in anchor.heads.items():
            if chain and name != chain:
                continue
            if stored.get((name, seq)) != h:
                report.problems.append({"anchor": anchor.id, "chain": name, "seq": seq,
                                        "problem": "anchored event missing or changed"})
    return report
