"""The public pages ("one public"): published inspection plans, results and penalties, without sign-in.

Everything comes from :mod:`engine.supervision.publication`: the feed lists published, not withdrawn
records with only their public fields (:data:`engine.supervision.publication.PUBLIC_FIELDS`; risk classes
only with ``REGFLOW_PUBLISH_RISK_CLASS=1``); personal data of natural persons (names, ID-card, phone and
bank-card numbers, e-mail addresses; :mod:`engine.supervision.masking`) is masked before storage and again
on the way out, in titles and withdrawal notes too. A withdrawn record's page shows when and why it was
withdrawn instead of its content. Integer arguments are checked by :mod:`web.params`.
"""
from __future__ import annotations

import json

from flask import Blueprint, render_template, url_for

from engine.errors import InvalidInput
from engine.supervision import publication
from engine.supervision.dashboard import entity_names
from engine.supervision.loop_models import PUBLICATION_KINDS
from web import params
from web.extensions import read_session, settings
from web.i18n import gettext as _
from web.public import filters

bp = Blueprint("public", __name__, url_prefix="/public")

PAGE_SIZE = 30
KIND_LABELS = {"plan": "Inspection plan", "result": "Inspection result", "penalty": "Administrative penalty"}
#: labels of the public payload fields (engine.supervision.publication.PUBLIC_FIELDS; others by their key)
FIELD_LABELS = {
    "campaign": "Campaign", "name": "Name", "items": "Check items", "window_start": "Inspection window from",
    "window_end": "Inspection window to", "seed": "Draw seed", "population_hash": "Population hash",
    "public_value": "Public random value", "by_stratum": "Drawn per stratum",
    "total": "Total drawn", "result_code": "Result", "outcome": "Outcome", "inspection_date": "Inspection date",
    "findings_count": "Findings", "case_number": "Case number", "decision_number": "Decision number",
    "uscc": "USCC", "decision_type": "Decision", "penalties": "Penalties", "fine": "Fine (yuan)",
    "legal_basis": "Legal basis", "decision_date": "Decision date", "legal_representative": "Legal representative",
    "entity_name": "Entity", "note": "Note", "inspections": "Inspections in the campaign",
    "completed": "Inspections completed", "risk_class": "Risk class",
}


def _feed(kind, uscc, limit: int, offset: int) -> tuple[list[dict], bool]:
    """Public fields only, masked again on the way out (:func:`engine.supervision.publication.public_feed`)."""
    rows = publication.public_feed(read_session(), kind=kind, uscc=uscc, limit=limit + 1, offset=offset,
                                   risk_class=settings().publish_risk_class)
    return rows[:limit], len(rows) > limit


def _names(rows) -> dict:
    return entity_names(read_session(), [r["uscc"] for r in rows if r.get("uscc")])


@bp.route("/")
def index():
    kind, uscc = filters.kind_and_entity("kind", PUBLICATION_KINDS)
    page_no = params.page_arg(PAGE_SIZE)
    rows, has_next = _feed(kind, uscc, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
    args = {k: v for k, v in {"kind": kind, "entity": uscc}.items() if v}
    return render_template("public/index.html", rows=rows, has_next=has_next, page_no=page_no, args=args,
                           kind=kind or "", uscc=uscc or "", kinds=PUBLICATION_KINDS, kind_labels=KIND_LABELS,
                           names=_names(rows))


@bp.route("/feed.json")
def feed_json():
    """The feed as JSON: ``kind``, ``entity`` (USCC), ``limit`` (≤ 200) and ``offset``; errors are JSON too."""
    try:
        kind, uscc = filters.kind_and_entity("kind", PUBLICATION_KINDS)
        limit, offset = filters.window()
    except InvalidInput as exc:
        return filters.json_error(exc)
    rows, has_next = _feed(kind, uscc, limit, offset)
    for r in rows:
        r["url"] = url_for("public.detail", publication_id=r["id"], _external=True)
    return filters.json_page({"items": rows, "kind": kind, "entity": uscc, "limit": limit, "offset": offset,
                              "next_offset": offset + limit if has_next else None})


@bp.route("/<int:publication_id>")
def detail(publication_id: int):
    rec = publication.public_record(read_session(), publication_id, risk_class=settings().publish_risk_class)
    names = _names([rec])
    status = 410 if rec["withdrawn"] else 200
    return render_template("public/detail.html", rec=rec, kind_labels=KIND_LABELS, field_labels=FIELD_LABELS,
                           entity=names.get(rec["uscc"])), status


@bp.app_template_filter("public_value")
def public_value(value) -> str:
    """A payload value as text: lists joined, objects as compact JSON."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value is None:
        return "—"
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
