"""Transfers (移送): a matter that is not ours to handle goes to the authority whose it is, with a receipt.

The ``transfer`` process (processes/transfer.bpmn) calls these through the ``transfer.*`` operators:

1. :func:`open_transfer` — the matter, its kind and the receiving authority, keyed by the transfer's own instance
   (a step run again finds the row it opened);
2. :func:`send` — what the letter says (facts) and the materials that go with it; the 移送函's number when the
   step issued one;
3. :func:`record_receipt` — the receiving side's receipt (回执): who signed it, when, their own reference, and
   whether they accepted the matter (a refusal needs its reason). It arrives as the message ``transfer_receipt``
   (correlated by ``transfer_id``: the receiving department's system, or ``regflow message``) or is entered by the
   officer from a paper receipt when the wait ran out;
4. :func:`close` — the outcome: accepted, or after a refusal handled by ourselves, transferred elsewhere, closed.

A transfer is never lost: until a receipt is recorded it stays ``sent`` and the process keeps chasing it. Nothing
here commits; the step's transaction does.
"""
from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound

from .calendar import SHANGHAI
from .transfer_models import OUTCOMES, RECEIPT_VIA, TRANSFER_KINDS, Transfer

MAX_TEXT = 500
MAX_FACTS = 5000
MAX_MATERIALS = 50


def _text(value, field: str, limit: int = MAX_TEXT, *, required: bool = True) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise InvalidInput(f"transfer: {field} is required")
        return None
    if len(text) > limit:
        raise InvalidInput(f"transfer: {field} is {len(text)} characters; at most {limit}")
    return text


def get_transfer(session: Session, transfer_id: int, *, lock: bool = False) -> Transfer:
    q = select(Transfer).where(Transfer.id == int(transfer_id))
    if lock and session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = session.scalar(q)
    if row is None:
        raise NotFound(f"no transfer {transfer_id}")
    return row


def open_transfer(session: Session, *, kind: str, uscc: str, receiving: str, reason: str, entity_id: int | None,
                  source_instance_id: int | None, instance_id: int | None, actor: str, now: datetime) -> Transfer:
    """The transfer of the instance ``instance_id`` (the same row when the step runs again)."""
    if kind not in TRANSFER_KINDS:
        raise InvalidInput(f"transfer kind {kind!r} is not one of {', '.join(TRANSFER_KINDS)}")
    uscc = (uscc or "").strip().upper()
    if not 1 <= len(uscc) <= 18:
        raise InvalidInput("transfer: the entity's USCC is required (at most 18 characters)")
    if instance_id is not None:
        same = session.scalar(select(Transfer).where(Transfer.instance_id == instance_id))
        if same is not None:
            return same
    row = Transfer(kind=kind, uscc=uscc, entity_id=entity_id, receiving=_text(receiving, "receiving", 200),
                   reason=_text(reason, "reason"), source_instance_id=source_instance_id, instance_id=instance_id,
                   status="preparing", opened_at=now, opened_by=actor, materials=[])
    session.add(row)
    session.flush()
    return row


def send(session: Session, transfer_id: int, *, facts: str, materials: list, letter_number: str | None,
         actor: str, now: datetime, receiving: str | None = None) -> Transfer:
    """Record what was sent; a transfer is sent once (Conflict after that)."""
    row = get_transfer(session, transfer_id, lock=True)
    if row.status != "preparing":
        raise Conflict(f"transfer {row.id} was already sent ({row.status})")
    if not isinstance(materials, list) or len(materials) > MAX_MATERIALS:
        raise InvalidInput(f"transfer: materials must be a list of at most {MAX_MATERIALS} items")
    row.facts = _text(facts, "facts", MAX_FACTS)
    row.materials = [_text(str(m) if not isinstance(m, str) else m, "a material", 200) for m in materials]
    row.letter_number = _text(letter_number, "letter_number", 80, required=False)
    if receiving is not None:
        row.receiving = _text(receiving, "receiving", 200)
    row.status, row.sent_at, row.sent_by = "sent", now, actor
    session.flush()
    return row


def parse_day(value, field: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value or "").strip()[:10])
    except ValueError:
        raise InvalidInput(f"transfer: {field} must be a date (YYYY-MM-DD), got {value!r}") from None


def record_receipt(session: Session, transfer_id: int, *, received_on, received_by: str, reference: str | None,
                   accepted: bool, refusal_reason: str | None, via: str, now: datetime) -> Transfer:
    """The receiving side's receipt: accepted, or refused with a reason. One receipt per transfer."""
    if via not in RECEIPT_VIA:
        raise InvalidInput(f"transfer: a receipt comes by {' or '.join(RECEIPT_VIA)}, not {via!r}")
    if not isinstance(accepted, bool):
        raise InvalidInput("transfer: the receipt must say whether the matter was accepted (true or false)")
    row = get_transfer(session, transfer_id, lock=True)
    if row.status != "sent":
        raise Conflict(f"transfer {row.id} is {row.status}: only a sent transfer takes a receipt")
    day = parse_day(received_on, "received_on")
    received_at = datetime.combine(day, time(12, 0), SHANGHAI)
    if row.sent_at is not None and day < row.sent_at.astimezone(SHANGHAI).date():
        raise InvalidInput(f"transfer: received on {day} is before it was sent "
                           f"({row.sent_at.astimezone(SHANGHAI).date()})")
    if day > now.astimezone(SHANGHAI).date():
        raise InvalidInput(f"transfer: received on {day} is in the future")
    row.received_by = _text(received_by, "received_by", 120)
    row.receipt_reference = _text(reference, "reference", 100, required=False)
    row.refusal_reason = None if accepted else _text(refusal_reason, "refusal_reason")
    row.accepted, row.received_at, row.receipt_via = accepted, received_at, via
    row.status = "received" if accepted else "refused"
    if accepted:
        row.outcome, row.closed_at = "accepted", now
    session.flush()
    return row


def close(session: Session, transfer_id: int, *, outcome: str, note: str | None, now: datetime) -> Transfer:
    """The end of a refused transfer: handled by ourselves, transferred elsewhere, or closed (with a note)."""
    if outcome not in OUTCOMES or outcome == "accepted":
        raise InvalidInput(f"transfer: outcome {outcome!r} is not one of "
                           f"{', '.join(o for o in OUTCOMES if o != 'accepted')}")
    row = get_transfer(session, transfer_id, lock=True)
    if row.status != "refused":
        raise Conflict(f"transfer {row.id} is {row.status}: only a refused transfer is closed this way")
    row.outcome, row.note, row.closed_at, row.status = outcome, _text(note, "note", required=False), now, "closed"
    session.flush()
    return row


def transfer_doc(row: Transfer) -> dict:
    """A transfer as process data, the CLI and pages see it (datetimes as ISO text)."""
    def iso(v):
        return v.isoformat() if v is not None else None

    return {"transfer_id": row.id, "kind": row.kind, "kind_name": TRANSFER_KINDS[row.kind][0], "uscc": row.uscc,
            "entity_id": row.entity_id, "receiving": row.receiving, "reason": row.reason, "status": row.status,
            "source_instance_id": row.source_instance_id, "instance_id": row.instance_id,
            "opened_at": iso(row.opened_at), "sent_at": iso(row.sent_at), "letter_number": row.letter_number,
            "materials": list(row.materials or []), "received_at": iso(row.received_at),
            "received_by": row.received_by, "receipt_reference": row.receipt_reference,
            "receipt_via": row.receipt_via, "accepted": row.accepted, "refusal_reason": row.refusal_reason,
            "outcome": row.outcome, "closed_at": iso(row.closed_at), "note": row.note}


def list_transfers(session: Session, *, status: str | None = None, uscc: str | None = None, limit: int = 200,
                   offset: int = 0) -> tuple[int, list[Transfer]]:
    q = select(Transfer)
    if status:
        q = q.where(Transfer.status == status)
    if uscc:
        q = q.where(Transfer.uscc == uscc.strip().upper())
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    rows = session.scalars(q.order_by(Transfer.id).limit(max(0, int(limit))).offset(max(0, int(offset)))).all()
    return int(total or 0), list(rows)


def counts(session: Session) -> dict:
    """Transfers by kind and by status (the simulation's summary, the dashboard)."""
    by_kind = dict(session.execute(select(Transfer.kind, func.count()).group_by(Transfer.kind)).all())
    by_status = dict(session.execute(select(Transfer.status, func.count()).group_by(Transfer.status)).all())
    return {"total": sum(by_kind.values()), "by_kind": by_kind, "by_status": by_status}
