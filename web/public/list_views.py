"""The two lists on the public pages: ``/public/lists`` (HTML) and ``/public/lists.json``, without sign-in.

Every entry of the abnormal-operations list (经营异常名录) and the serious-violation list (严重违法失信名单),
current and removed, newest first: the entity, the reason and its legal basis, the date of entry and — once
removed — the date and kind of the removal. Only the fields :data:`engine.supervision.publication.LIST_PUBLIC_FIELDS`
allows (never who listed it or the causing instance), free text masked (:mod:`engine.supervision.masking`).
Filters: ``list`` (abnormal | serious) and ``entity`` (a USCC); bad filters are a 400 with the reason.
"""
from __future__ import annotations

from flask import render_template

from engine.errors import InvalidInput
from engine.supervision import lists
from engine.supervision.dashboard import entity_names
from engine.supervision.list_models import LIST_KINDS
from web import params
from web.extensions import read_session
from web.public import filters
from web.public.views import bp

PAGE_SIZE = 30
LIST_LABELS = {"abnormal": "Abnormal operations list", "serious": "Serious violation list"}
REMOVAL_LABELS = {"correction": "corrected", "application": "on application", "expiry": "term ended",
                  "escalated": "moved to the serious violation list"}


def _rows(kind, uscc, limit: int, offset: int) -> tuple[list[dict], bool]:
    rows = lists.public_entries(read_session(), list_kind=kind, uscc=uscc, limit=limit + 1, offset=offset)
    return rows[:limit], len(rows) > limit


@bp.route("/lists")
def list_index():
    kind, uscc = filters.kind_and_entity("list", LIST_KINDS)
    page_no = params.page_arg(PAGE_SIZE)
    rows, has_next = _rows(kind, uscc, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
    args = {k: v for k, v in {"list": kind, "entity": uscc}.items() if v}
    return render_template("public/lists.html", rows=rows, has_next=has_next, page_no=page_no, args=args,
                           kind=kind or "", uscc=uscc or "", kinds=LIST_KINDS, list_labels=LIST_LABELS,
                           removal_labels=REMOVAL_LABELS,
                           names=entity_names(read_session(), [r["uscc"] for r in rows]))


@bp.route("/lists.json")
def list_json():
    """The entries as JSON: ``list``, ``entity``, ``limit`` (≤ 200), ``offset``; errors are JSON too."""
    try:
        kind, uscc = filters.kind_and_entity("list", LIST_KINDS)
        limit, offset = filters.window()
    except InvalidInput as exc:
        return filters.json_error(exc)
    rows, has_next = _rows(kind, uscc, limit, offset)
    return filters.json_page({"items": rows, "list": kind, "entity": uscc, "limit": limit, "offset": offset,
                              "next_offset": offset + limit if has_next else None})
