"""The two lists on the public pages: ``/public/lists`` (HTML) and ``/public/lists.json``, without sign-in.

Every entry of the abnormal-operations list (经营异常名录) and the serious-violation list (严重违法失信名单),
current and removed, newest first: the entity, the reason and its legal basis, the date of entry and — once
removed — the date and kind of the removal. Only the fields :data:`engine.supervision.publication.LIST_PUBLIC_FIELDS`
allows (never who listed it or the causing instance), free text masked (:mod:`engine.supervision.masking`).
Filters: ``list`` (abnormal | serious) and ``entity`` (a USCC); bad filters are a 400 with the reason.
"""
from __future__ import annotations

from flask import jsonify, render_template, request

from engine.errors import InvalidInput
from engine.supervision import lists
from engine.supervision.dashboard import entity_names
from engine.supervision.list_models import LIST_KINDS
from web import params
from web.extensions import read_session
from web.i18n import gettext as _
from web.public.views import bp

PAGE_SIZE = 30
FEED_MAX = 200
LIST_LABELS = {"abnormal": "Abnormal operations list", "serious": "Serious violation list"}
REMOVAL_LABELS = {"correction": "corrected", "application": "on application", "expiry": "term ended",
                  "escalated": "moved to the serious violation list"}


def _filters() -> tuple[str | None, str | None]:
    kind = (request.args.get("list") or "").strip() or None
    if kind and kind not in LIST_KINDS:
        raise InvalidInput(_("The filter “{name}” must be one of {values}, not “{value}”.", name="list",
                             values=", ".join(LIST_KINDS), value=kind[:40]))
    uscc = (request.args.get("entity") or "").strip().upper() or None
    if uscc and (len(uscc) != 18 or not uscc.isalnum()):
        raise InvalidInput(_("The entity filter takes an 18-character unified social credit code (USCC), not "
                             "“{value}”.", value=uscc[:40]))
    return kind, uscc


def _rows(kind, uscc, limit: int, offset: int) -> tuple[list[dict], bool]:
    rows = lists.public_entries(read_session(), list_kind=kind, uscc=uscc, limit=limit + 1, offset=offset)
    return rows[:limit], len(rows) > limit


@bp.route("/lists")
def list_index():
    kind, uscc = _filters()
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
        kind, uscc = _filters()
        limit = params.int_arg("limit", 50, minimum=1, maximum=FEED_MAX)
        offset = params.int_arg("offset", 0, minimum=0)
    except InvalidInput as exc:
        return jsonify({"error": {"status": 400, "message": str(exc)}}), 400
    rows, has_next = _rows(kind, uscc, limit, offset)
    resp = jsonify({"items": rows, "list": kind, "entity": uscc, "limit": limit, "offset": offset,
                    "next_offset": offset + limit if has_next else None})
    resp.headers["Cache-Control"] = "public, max-age=60"
    return resp
