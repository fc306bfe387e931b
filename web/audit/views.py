"""Routes of the auditors' area. Read only: every view uses the request's read session and calls
:mod:`engine.runtime.history` (events by the ``(chain, seq)`` index, projections, the definition's XML —
never a workflow replay) and :mod:`engine.supervision.dashboard` for entity lookups."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, render_template, request

from engine import policy
from engine.commands import instances
from engine.errors import InvalidInput
from engine.runtime import history as history_service
from engine.runtime import reads as read_log
from engine.runtime.history import STATUSES, InstanceQuery
from engine.runtime.labels import localized_xml
from engine.supervision import dashboard, document_files
from web import params
from web.auth import current_actor, current_user, record_read, roles_required
from web.extensions import read_session
from web.i18n import TIMEZONE, current_locale
from web.i18n import gettext as _

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE_SIZE = 50

#: English labels of the audit event kinds (translated in the templates)
KIND_LABELS = {
    "instance_started": "Instance started", "instance_completed": "Instance completed",
    "instance_suspended": "Instance suspended", "instance_resumed": "Instance resumed",
    "instance_terminated": "Instance terminated", "termination_cleanup": "Clean-up after termination",
    "task_created": "Task created", "task_claimed": "Task claimed",
    "task_unclaimed": "Task released", "task_delegated": "Task delegated", "task_completed": "Task completed",
    "task_cancelled": "Task cancelled", "task_reminder": "Reminder sent", "task_escalated": "Task escalated",
    "element_completed": "Step completed", "timer_fired": "Timer fired", "timer_rescheduled": "Timer rescheduled",
    "message_received": "Message received", "service_failed": "Service call failed",
    "step_failed": "Step failed", "service_retried": "Service call retried", "incident_opened": "Incident opened",
    "incident_retried": "Incident retried", "evidence_attached": "Evidence attached",
    "document_issued": "Document issued", "document_voided": "Document voided",
    "async_continuation_queued": "Queued for the worker", "async_continuation_started": "Run by the worker",
    "async_continuation_cancelled": "Queued step cancelled",
}
STATUS_LABELS = {"running": "Running", "suspended": "Suspended", "completed": "Completed",
                 "terminated": "Terminated"}
#: event kinds a person does (highlighted in the timeline)
HUMAN_KINDS = {"task_completed", "task_claimed", "task_unclaimed", "task_delegated", "instance_suspended",
               "instance_resumed", "instance_terminated", "incident_retried", "evidence_attached", "document_issued",
               "document_voided"}


def _date_arg(name: str) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(_("The filter “{name}” must be a date like 2026-06-30, not “{value}”.", name=name,
                             value=raw)) from None


def _page_arg() -> int:
    return params.page_arg(PAGE_SIZE)


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), TIMEZONE)


def _instance(session, instance_id: int):
    """The instance, if the auditor or supervisor may read it (:func:`engine.commands.instances.read`: their
    jurisdiction, whatever names the entity)."""
    return instances.read(session, current_actor(), instance_id)


# --------------------------------------------------------------------------------------------- search
@bp.route("/")
@roles_required(*policy.INSTANCE_READERS)
def index():
    s = read_session()
    page_no = _page_arg()
    entity = (request.args.get("entity") or "").strip()
    status = (request.args.get("status") or "").strip() or None
    if status and status not in STATUSES:
        raise InvalidInput(_("The filter “{name}” must be one of {values}, not “{value}”.", name="status",
                             values=", ".join(STATUSES), value=status))
    start, end = _date_arg("from"), _date_arg("to")
    if start and end and end < start:
        raise InvalidInput(_("The date range ends ({end}) before it starts ({start}).", start=start, end=end))
    user = current_user()
    q = InstanceQuery(
        business_keys=dashboard.entity_keys(s, entity) if entity else None,
        process_id=request.args.get("process"), status=status, officer=request.args.get("officer"),
        started_from=_midnight(start) if start else None,
        started_before=_midnight(end + timedelta(days=1)) if end else None,
        hidden_keys=dashboard.keys_outside(user.jurisdiction) if user.jurisdiction else None,
        limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    page = history_service.search_instances(s, q)
    names = dashboard.entity_names(s, [r.business_key for r in page.rows])
    args = {k: v for k, v in request.args.items() if v and k != "page"}
    return render_template("audit/index.html", page=page, page_no=page_no, args=args, names=names,
                           processes=history_service.process_ids(s), statuses=STATUSES, status_labels=STATUS_LABELS,
                           f={"entity": entity, "process": q.process_id or "", "status": status or "",
                              "officer": q.officer or "", "from": start.isoformat() if start else "",
                              "to": end.isoformat() if end else ""})


# ------------------------------------------------------------------------------------------- instance
def _render_instance(instance_id: int, upto: int | None):
    s = read_session()
    _instance(s, instance_id)
    record_read("instance", instance_id)
    h = history_service.history(s, instance_id, upto=upto)
    names = dashboard.entity_names(s, [h.instance.business_key])
    return render_template("audit/instance.html", h=h, entity=names.get(h.instance.business_key),
                           kind_labels=KIND_LABELS, status_labels=STATUS_LABELS, human_kinds=HUMAN_KINDS,
                           documents=document_files.instance_documents(s, instance_id),
                           last_seq=h.instance.audit_seq, lang=current_locale(),
                           path_json=json.dumps(h.path.to_dict()).replace("<", "\\u003c"),
                           data_json=json.dumps(params.clip(h.data), ensure_ascii=False, indent=2, sort_keys=True,
                                                default=str))


@bp.route("/instances/<int:instance_id>")
@roles_required(*policy.INSTANCE_READERS)
def instance(instance_id: int):
    return _render_instance(instance_id, None)


@bp.route("/instances/<int:instance_id>/at/<int:seq>")
@roles_required(*policy.INSTANCE_READERS)
def instance_at(instance_id: int, seq: int):
    return _render_instance(instance_id, seq)


@bp.route("/instances/<int:instance_id>/diagram.xml")
@roles_required(*policy.INSTANCE_READERS)
def diagram_xml(instance_id: int):
    s = read_session()
    inst = _instance(s, instance_id)
    xml = localized_xml(history_service.definition_xml(s, inst.definition_id), current_locale())
    return Response(xml, mimetype="application/xml", headers={"Cache-Control": "private, max-age=3600"})


@bp.route("/instances/<int:instance_id>/history.json")
@roles_required(*policy.INSTANCE_READERS)
def history_json(instance_id: int):
    s = read_session()
    _instance(s, instance_id)
    record_read("instance", instance_id)
    doc = history_service.export_document(s, instance_id)
    body = json.dumps(doc, ensure_ascii=False, indent=1, default=str)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="instance-{instance_id}-history.json"'})


@bp.route("/instances/<int:instance_id>/history.csv")
@roles_required(*policy.INSTANCE_READERS)
def history_csv(instance_id: int):
    s = read_session()
    _instance(s, instance_id)
    record_read("instance", instance_id)
    buf = io.StringIO()
    buf.write("\ufeff")  # spreadsheet programs read the Chinese text as UTF-8
    writer = csv.DictWriter(buf, fieldnames=history_service.CSV_COLUMNS)
    writer.writeheader()
    for row in history_service.export_rows(s, instance_id):
        writer.writerow(row)
    return Response(buf.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="instance-{instance_id}-history.csv"'})


@bp.app_template_filter("diff_lines")
def diff_lines(diff) -> list[tuple[str, str, str]]:
    """A data diff as (mark, key, text) lines: ``+`` added, ``-`` deleted, ``~`` changed."""
    out = []
    for key in sorted(diff or {}):
        change = diff[key]
        if not isinstance(change, dict):
            out.append(("~", key, _short(change)))
        elif change.get("deleted"):
            out.append(("-", key, _short(change.get("old"))))
        elif "old" in change:
            out.append(("~", key, f"{_short(change.get('old'))} → {_short(change.get('new'))}"))
        else:
            out.append(("+", key, _short(change.get("new"))))
    return out


def _short(value, limit: int = 400) -> str:
    text = value if isinstance(value, str) else json.dumps(params.clip(value), ensure_ascii=False, sort_keys=True,
                                                           default=str)
    return text if len(text) <= limit else text[:limit] + " …"


@bp.app_template_filter("compact_json")
def compact_json(value) -> str:
    return _short(value, 300)


# ------------------------------------------------------------------------------------------- read log
READ_KIND_LABELS = {"dossier": "Dossier", "evidence": "Evidence file", "instance": "Instance history",
                    "document": "Official document"}


@bp.route("/reads")
@roles_required(*policy.READ_LOG_READERS)
def reads():
    """Who read which dossier, evidence file or instance history (:mod:`engine.runtime.reads`), newest first."""
    page_no = _page_arg()
    kind = (request.args.get("kind") or "").strip() or None
    if kind and kind not in read_log.KINDS:
        raise InvalidInput(_("The filter “{name}” must be one of {values}, not “{value}”.", name="kind",
                             values=", ".join(read_log.KINDS), value=kind))
    start, end = _date_arg("from"), _date_arg("to")
    if start and end and end < start:
        raise InvalidInput(_("The date range ends ({end}) before it starts ({start}).", start=start, end=end))
    actor = (request.args.get("user") or "").strip()[:120] or None
    ref = (request.args.get("ref") or "").strip()[:200] or None
    q = read_log.ReadQuery(actor=actor, kind=kind, ref=ref, since=_midnight(start) if start else None,
                           before=_midnight(end + timedelta(days=1)) if end else None,
                           limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    rows, has_next = read_log.search(read_session(), q)
    args = {k: v for k, v in request.args.items() if v and k != "page"}
    return render_template("audit/reads.html", rows=rows, has_next=has_next, page_no=page_no, args=args,
                           kinds=read_log.KINDS, kind_labels=READ_KIND_LABELS,
                           f={"user": actor or "", "kind": kind or "", "ref": ref or "",
                              "from": start.isoformat() if start else "", "to": end.isoformat() if end else ""})
