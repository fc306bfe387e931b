"""The register of official documents: numbers per (agency, kind, year), gapless and never reused.

:func:`allocate` hands out the next number of an agency's register for a kind and year — ``郑市监责改〔2026〕15号``
— and records the issued document under it, inside the caller's transaction: the counter row of (agency, kind,
year) is bumped with one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (an upsert that creates the row for the
first number). On PostgreSQL the statement holds that row's lock until the transaction ends, so concurrent
issuers of the same register queue there and each reads the number the previous one committed; on SQLite
every write transaction already holds the database's one write lock (``BEGIN IMMEDIATE``, :mod:`engine.db`).
A transaction that rolls back takes its number back with it: the register has no gap. The same
(instance, kind, ref) while its document stands gives back that document (a step run again issues nothing new).

:func:`void` marks a document void with a reason — it keeps its number, which is never handed out again;
a second void is a Conflict. Issue and void are written to the audit chain: the instance's when the document
belongs to one (its head locked and moved as :meth:`Runtime.append_event` does), else the system chain. A step
of that same instance keeps its chain's head in memory until it saves, so an issuing service task (a later
slice) must hand its event to the step instead; written here, the step's own events would collide with it on
(chain, seq) and the step fail — loudly, never a forked chain. :func:`verify_register` checks every register
(see ``regflow documents verify``). Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import audit, clock
from engine.runtime.models import ProcessInstance

from .agencies import get_agency
from .calendar import SHANGHAI
from .document_models import DOCUMENT_KINDS, Agency, Document, DocumentCounter

MAX_REASON = 200
_COUNTER = DocumentCounter.__table__
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def format_number(agency_code: str, kind: str, year: int, seq: int) -> str:
    """``郑市监`` + ``责改`` + ``〔2026〕`` + ``15号``."""
    return f"{agency_code}{kind_short(kind)}〔{int(year)}〕{int(seq)}号"


def kind_short(kind: str) -> str:
    if kind not in DOCUMENT_KINDS:
        raise InvalidInput(f"document kind {kind!r} is not one of {', '.join(DOCUMENT_KINDS)}")
    return DOCUMENT_KINDS[kind][1]


def local_year(moment: datetime) -> int:
    """The year of ``moment`` in China (a document issued on 31 December 23:30 Beijing time is that year's)."""
    return moment.astimezone(SHANGHAI).year


def _agency(session: Session, agency: Agency | str) -> Agency:
    row = agency if isinstance(agency, Agency) else get_agency(session, agency)
    if not row.active:
        raise Conflict(f"agency {row.code} ({row.name}) is inactive and issues no documents")
    return row


def next_seq(session: Session, agency_id: int, kind: str, year: int) -> int:
    """Bump the counter of (agency, kind, year) and return its new value, under the row's lock (PostgreSQL) or
    the transaction's write lock (SQLite); the first call for a register creates its row at 1."""
    insert = _INSERT.get(session.get_bind().dialect.name)
    if insert is None:
        raise InvalidInput(f"the document register needs PostgreSQL or SQLite, not "
                           f"{session.get_bind().dialect.name}")
    stmt = (insert(_COUNTER).values(agency_id=agency_id, kind=kind, year=year, last_seq=1)
            .on_conflict_do_update(index_elements=["agency_id", "kind", "year"],
                                   set_={"last_seq": _COUNTER.c.last_seq + 1})
            .returning(_COUNTER.c.last_seq))
    return int(session.execute(stmt).scalar_one())


def issue(session: Session, agency: Agency | str, kind: str, year: int, *, instance_id: int | None,
          ref: str | None, uscc: str | None = None, issued_by: str = "system",
          now: datetime | None = None, events: list | None = None) -> Document:
    """Issue a document of ``kind`` under the next number of ``agency``'s register for ``year`` (see the module).
    ``events``: the ``document_issued`` event is appended there instead of written (a running step's service
    task hands it to its step, ``ServiceContext.events``)."""
    row = _agency(session, agency)
    kind_short(kind)
    year = int(year)
    if not 2000 <= year <= 2999:
        raise InvalidInput(f"year {year} is outside 2000–2999")
    ref = (ref or "").strip() or None
    if ref is not None and len(ref) > 200:
        raise InvalidInput("a document's ref is at most 200 characters")
    if instance_id is not None and ref is not None:
        same = session.scalar(select(Document).where(
            Document.instance_id == instance_id, Document.kind == kind, Document.ref == ref,
            Document.agency_id == row.id, Document.year == year, Document.status == "issued"))
        if same is not None:
            return same
    uscc = (uscc or "").strip().upper() or None
    now = now or clock.now()
    seq = next_seq(session, row.id, kind, year)
    doc = Document(number=format_number(row.code, kind, year, seq), kind=kind, agency_id=row.id, year=year,
                   seq=seq, instance_id=instance_id, ref=ref, uscc=uscc, issued_at=now, issued_by=issued_by,
                   status="issued")
    session.add(doc)
    session.flush()
    detail = {"agency": row.code, "kind": kind, "year": year, "seq": seq, "ref": ref, "uscc": uscc}
    if events is not None:
        events.append(audit.Event("document_issued", issued_by, instance_id, at=now,
                                  detail={"document_id": doc.id, "number": doc.number, **detail}))
    else:
        _record(session, doc, "document_issued", issued_by, now, **detail)
    return doc


def allocate(session: Session, agency: Agency | str, kind: str, year: int, *, instance_id: int | None,
             ref: str | None, uscc: str | None = None, issued_by: str = "system",
             now: datetime | None = None) -> str:
    """The next number of (agency, kind, year), e.g. ``郑市监责改〔2026〕15号``, issued in the caller's transaction
    (:func:`issue`)."""
    return issue(session, agency, kind, year, instance_id=instance_id, ref=ref, uscc=uscc, issued_by=issued_by,
                 now=now).number


def get_document(session: Session, number: str) -> Document:
    doc = session.scalar(select(Document).where(Document.number == (number or "").strip()))
    if doc is None:
        raise NotFound(f"no document numbered {number!r}")
    return doc


def get_document_by_id(session: Session, document_id: int) -> Document:
    doc = session.get(Document, int(document_id))
    if doc is None:
        raise NotFound(f"no document {document_id}")
    return doc


def void(session: Session, number: str, *, reason: str, actor: str, now: datetime | None = None) -> Document:
    """Mark the document void with ``reason``; its number stays in the register, taken. Conflict if already void."""
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise InvalidInput("a reason is required to void a document")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"the reason is {len(reason)} characters; at most {MAX_REASON}")
    doc = get_document(session, number)
    if doc.status == "void":
        raise Conflict(f"document {doc.number} is already void (voided by {doc.voided_by} at "
                       f"{doc.voided_at.isoformat(timespec='seconds')}: {doc.void_reason})")
    now = now or clock.now()
    doc.status, doc.void_reason, doc.voided_at, doc.voided_by = "void", reason, now, actor
    session.flush()
    _record(session, doc, "document_voided", actor, now, reason=reason)
    return doc


def record(session: Session, doc: Document, event: str, actor: str, now: datetime, /, **detail) -> None:
    """Write ``event`` about ``doc`` to its instance's chain (else the system chain), as issue and void do."""
    _record(session, doc, event, actor, now, **detail)


def record_event(session: Session, doc: Document, event: audit.Event) -> None:
    """Write an event built for a step (``issue(events=…)``) directly, when no step of the instance runs."""
    _record(session, doc, event.kind, event.actor, event.at or clock.now(),
            **{k: v for k, v in dict(event.detail).items() if k not in ("document_id", "number")})


def _record(session: Session, doc: Document, event: str, actor: str, now: datetime, /, **detail) -> None:
    """The event in the instance's hash chain (its head locked as a step locks it), else the system chain."""
    detail = {"document_id": doc.id, "number": doc.number, **detail}
    if doc.instance_id is not None:
        q = select(ProcessInstance.audit_seq, ProcessInstance.audit_head).where(ProcessInstance.id == doc.instance_id)
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        head = session.execute(q).first()
        if head is not None:
            chain = audit.instance_chain(doc.instance_id)
            rows, (seq, last) = audit.build_rows(chain, [audit.Event(event, actor, doc.instance_id, detail=detail,
                                                                     at=now)], (head.audit_seq, head.audit_head))
            audit.insert_rows(session, rows)
            session.execute(update(ProcessInstance).where(ProcessInstance.id == doc.instance_id)
                            .values(audit_seq=seq, audit_head=last))
            return
    detail["instance_id"] = doc.instance_id
    audit.append(session, audit.SYSTEM_CHAIN, [audit.Event(event, actor, detail=detail, at=now)])


# ---------------------------------------------------------------------------------------------- reading
def list_documents(session: Session, *, agency: str | None = None, kind: str | None = None,
                   year: int | None = None, limit: int = 200, offset: int = 0) -> tuple[int, list[Document]]:
    """Documents in register order (agency, kind, year, seq), with the total matching."""
    q = select(Document)
    if agency:
        q = q.where(Document.agency_id == get_agency(session, agency).id)
    if kind:
        kind_short(kind)
        q = q.where(Document.kind == kind)
    if year is not None:
        q = q.where(Document.year == int(year))
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    rows = session.scalars(q.order_by(Document.agency_id, Document.kind, Document.year, Document.seq)
                           .limit(max(0, int(limit))).offset(max(0, int(offset)))).all()
    return int(total or 0), list(rows)


def document_doc(doc: Document, agency: Agency) -> dict:
    """A document as the CLI and pages print it."""
    return {"number": doc.number, "kind": doc.kind, "kind_name": DOCUMENT_KINDS[doc.kind][0],
            "agency": agency.code, "agency_name": agency.name, "year": doc.year, "seq": doc.seq,
            "instance_id": doc.instance_id, "ref": doc.ref, "uscc": doc.uscc, "issued_at": doc.issued_at,
            "issued_by": doc.issued_by, "status": doc.status, "void_reason": doc.void_reason,
            "voided_at": doc.voided_at, "voided_by": doc.voided_by}


@dataclass
class RegisterReport:
    registers: int = 0
    documents: int = 0
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "registers": self.registers, "documents": self.documents, "problems": self.problems}


def verify_register(session: Session) -> RegisterReport:
    """Every register (agency, kind, year): its documents' seqs are exactly 1..counter — no gap, no duplicate, none
    past the counter, no documents without a counter — and every number reads as its parts say."""
    codes = dict(session.execute(select(Agency.id, Agency.code)).all())
    counters = {(a, k, y): n for a, k, y, n in session.execute(
        select(DocumentCounter.agency_id, DocumentCounter.kind, DocumentCounter.year, DocumentCounter.last_seq))}
    seqs: dict[tuple, list[int]] = {}
    report = RegisterReport()
    rows = session.execute(select(Document.agency_id, Document.kind, Document.year, Document.seq, Document.number)
                           .order_by(Document.agency_id, Document.kind, Document.year, Document.seq, Document.id))
    for agency_id, kind, year, seq, number in rows:
        report.documents += 1
        seqs.setdefault((agency_id, kind, year), []).append(seq)
        code = codes.get(agency_id, f"#{agency_id}")
        expected = format_number(code, kind, year, seq) if kind in DOCUMENT_KINDS else None
        if number != expected:
            report.problems.append({"register": _name(code, kind, year), "number": number,
                                    "problem": f"number {number} does not match its parts (expected {expected})"})
    for key in sorted(set(counters) | set(seqs), key=lambda k: (codes.get(k[0], ""), k[1], k[2])):
        report.registers += 1
        name = _name(codes.get(key[0], f"#{key[0]}"), key[1], key[2])
        found, counter = seqs.get(key, []), counters.get(key)
        if counter is None:
            report.problems.append({"register": name, "problem": f"{len(found)} document(s) but no counter"})
            counter = 0
        dups = sorted(s for s, n in Counter(found).items() if n > 1)
        missing = sorted(set(range(1, counter + 1)) - set(found))
        beyond = sorted({s for s in found if s > counter or s < 1})
        if dups:
            report.problems.append({"register": name, "problem": f"seq {_runs(dups)} used more than once"})
        if missing:
            report.problems.append({"register": name,
                                    "problem": f"seq {_runs(missing)} missing (counter at {counter})"})
        if beyond and counter:
            report.problems.append({"register": name, "problem": f"seq {_runs(beyond)} outside 1..{counter}"})
    return report


def _name(code: str, kind: str, year: int) -> str:
    return f"{code} {kind} {year}"


def _runs(values: list[int]) -> str:
    """``1, 3-5, 9`` for [1, 3, 4, 5, 9]."""
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(out)
