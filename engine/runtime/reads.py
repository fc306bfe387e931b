"""The read log: who opened which dossier, evidence file, official document or instance history, when, how and
from where.

Reads are many (every dossier page, every download), so they are not put on the audit hash chains (which are
kept for ever and verified link by link) but in the append-only table ``read_record``: one row per read, written
by the edge in a small write transaction of its own *before* the data is shown — a read that cannot be recorded
is not served. Nothing updates a row; :func:`prune_reads` deletes rows older than the retention
(``REGFLOW_LOG_RETENTION_DAYS``, 183 days by default), called by the worker's periodic run.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import clock
from .models import ReadRecord

#: what can be read: an entity's dossier (by USCC), an evidence file (by id), a process instance's history (by id),
#: an official document's PDF (by its number: it names the party)
KINDS = ("dossier", "evidence", "instance", "document")
#: how it was read
VIAS = ("web", "api", "cli")


def record(session: Session, actor: str, kind: str, ref, *, via: str, address: str | None = None) -> ReadRecord:
    """Append one read (``ref``: the USCC, the evidence id, the instance id) in the caller's write transaction."""
    if kind not in KINDS:
        raise ValueError(f"unknown read kind {kind!r}")
    if via not in VIAS:
        raise ValueError(f"unknown channel {via!r}")
    row = ReadRecord(at=clock.now(), actor=actor[:120], kind=kind, ref=str(ref)[:200], via=via,
                     address=(address or None) and address[:64])
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ReadQuery:
    actor: str | None = None
    kind: str | None = None
    ref: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    limit: int = 50
    offset: int = 0


def search(session: Session, q: ReadQuery) -> tuple[list[ReadRecord], bool]:
    """A page of reads, newest first; returns ``(rows, has_next)``."""
    stmt = select(ReadRecord)
    if q.actor:
        stmt = stmt.where(ReadRecord.actor == q.actor)
    if q.kind:
        stmt = stmt.where(ReadRecord.kind == q.kind)
    if q.ref:
        stmt = stmt.where(ReadRecord.ref == q.ref)
    if q.since is not None:
        stmt = stmt.where(ReadRecord.at >= q.since)
    if q.before is not None:
        stmt = stmt.where(ReadRecord.at < q.before)
    rows = list(session.scalars(stmt.order_by(ReadRecord.at.desc(), ReadRecord.id.desc())
                                .offset(q.offset).limit(q.limit + 1)))
    return rows[:q.limit], len(rows) > q.limit


def prune_reads(session: Session, now: datetime, days: int) -> int:
    """Delete the reads older than ``days`` days before ``now`` (``days`` 0: keep every read); returns how many.
    Only the read log is pruned: the audit hash chains are never."""
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    return session.execute(delete(ReadRecord).where(ReadRecord.at < cutoff)
                           .execution_options(synchronize_session=False)).rowcount or 0
