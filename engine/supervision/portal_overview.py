"""What a business sees of itself on the portal's home page (read only, its own USCC only — the policy checks).

* its **notices**: the official documents issued for its USCC (the register, :mod:`.documents`), voided ones
  marked;
* its **open rectification orders** with their deadlines (the order's working-day deadline, China time) and
  whether the deadline is still provisional;
* its **open cases** (lead, filed or decided) with the decision's due date;
* its **draws**: the campaigns that drew it and the stratum it was drawn in — its credit class in the frozen
  population; a draw of the pure-random control stratum shows that class too, as the control stratum is never
  shown outside (the published population lists each entity by class).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from scoring.models import Entity

from .campaign_models import Campaign, DrawResult
from .document_models import DOCUMENT_KINDS, Document
from .loop_models import CASE_DONE, OPEN_ORDER_STATUSES, EnforcementCase, RectificationOrder

#: campaign statuses whose draw a business may look up (not before the draw)
DRAWN_STATUSES = ("drawn", "published", "closed")
LIMIT = 100


@dataclass
class Overview:
    uscc: str
    name: str | None
    documents: list[dict]
    orders: list[RectificationOrder]
    cases: list[EnforcementCase]
    draws: list[dict]


def overview(session: Session, uscc: str) -> Overview:
    entity = session.scalars(select(Entity).where(Entity.uscc == uscc)).first()
    docs = session.scalars(select(Document).where(Document.uscc == uscc)
                           .order_by(Document.issued_at.desc(), Document.id.desc()).limit(LIMIT)).all()
    documents = [{"number": d.number, "kind": d.kind, "title": DOCUMENT_KINDS.get(d.kind, (d.kind,))[0],
                  "issued_at": d.issued_at, "status": d.status} for d in docs]
    orders = list(session.scalars(select(RectificationOrder)
                                  .where(RectificationOrder.uscc == uscc,
                                         RectificationOrder.status.in_(OPEN_ORDER_STATUSES))
                                  .order_by(RectificationOrder.deadline).limit(LIMIT)))
    cases = list(session.scalars(select(EnforcementCase)
                                 .where(EnforcementCase.uscc == uscc, EnforcementCase.status.not_in(CASE_DONE))
                                 .order_by(EnforcementCase.id.desc()).limit(LIMIT)))
    rows = session.execute(select(Campaign.code, Campaign.name, Campaign.window_start, Campaign.window_end,
                                  DrawResult.risk_class)
                           .join(DrawResult, DrawResult.campaign_id == Campaign.id)
                           .where(DrawResult.uscc == uscc, Campaign.status.in_(DRAWN_STATUSES))
                           .order_by(Campaign.window_start.desc()).limit(LIMIT)).all()
    draws = [{"code": r.code, "name": r.name, "window_start": r.window_start, "window_end": r.window_end,
              "stratum": r.risk_class} for r in rows]
    return Overview(uscc, entity.name if entity is not None else None, documents, orders, cases, draws)
