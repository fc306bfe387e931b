"""The serious-violation list's publication term: a serious entry ends three years after the decision to list it

Revision ID: 0019_serious_term
Revises: 0018_transfers
Create Date: 2026-12-08 10:00:00

* ``list_entry.expires_on``: for a serious entry (严重违法失信名单), the China date its 3-year term ends
  (《市场监督管理严重违法失信名单管理办法》): the daily job ``lists.serious_expiry`` removes an entry still open on that
  day (removal kind ``expiry``). Indexed with the list and the status, as ``escalates_on`` is.

Backfill: every serious entry already recorded gets the same calendar day three years after its entry's China
date (29 February → 1 March, as ``engine.supervision.lists.years_after``), removed ones too (the term is a fact of
the listing); an ``imported`` entry keeps none (its date of entry is unknown). An open entry whose term is already
over is removed by the job's next run, audited there — the migration changes no listing.
"""
from __future__ import annotations

from datetime import date, timedelta, timezone

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0019_serious_term"
down_revision = "0018_transfers"
branch_labels = None
depends_on = None

TERM_YEARS = 3
#: China Standard Time (no daylight saving since 1991): the lists' dates are China dates
_CHINA = timezone(timedelta(hours=8))


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def upgrade() -> None:
    with op.batch_alter_table("list_entry") as batch:
        batch.add_column(sa.Column("expires_on", sa.Date(), nullable=True))
    op.create_index("ix_list_entry_expires", "list_entry", ["list_kind", "status", "expires_on"])
    entry = sa.table("list_entry", sa.column("id", sa.Integer()), sa.column("list_kind", sa.String()),
                     sa.column("reason_code", sa.String()), sa.column("entered_at", UTCDateTime()),
                     sa.column("expires_on", sa.Date()))
    conn = op.get_bind()
    rows = conn.execute(sa.select(entry.c.id, entry.c.entered_at).where(
        entry.c.list_kind == "serious", entry.c.reason_code != "imported")).all()
    for entry_id, entered_at in rows:
        day = entered_at.astimezone(_CHINA).date()
        conn.execute(entry.update().where(entry.c.id == entry_id)
                     .values(expires_on=_years_after(day, TERM_YEARS)))


def downgrade() -> None:
    op.drop_index("ix_list_entry_expires", table_name="list_entry")
    with op.batch_alter_table("list_entry") as batch:
        batch.drop_column("expires_on")
