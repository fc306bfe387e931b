"""Routes of the supervisors' area. Figures come from :mod:`engine.supervision.dashboard` (SQL
aggregates, bounded lists), every one restricted to the signed-in user's jurisdiction (``districts``;
rows without a registered entity are city-wide and shown only to users without a restriction). The
changes are commands, which apply the policy (supervisors, within their jurisdiction: 403, nothing written):
an incident retry (:func:`engine.commands.instances.retry_incident`) and settling a stranded order or case
(:func:`engine.commands.hazards.settle_stranded`)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from engine import policy
from engine.commands import hazards as hazard_commands
from engine.commands import instances as instance_commands
from engine.errors import EngineError, InvalidInput, NotAllowed
from engine.runtime import clock
from engine.supervision import dashboard, publication_deadlines
from engine.supervision.loop_models import HAZARD_GRADES, HAZARD_STATUSES
from web.auth import current_actor, current_user, roles_required
from web.extensions import read_session, runtime, settings, write
from web.i18n import gettext as _
from web.params import int_arg, page_arg

bp = Blueprint("supervise", __name__, url_prefix="/supervise")

PAGE_SIZE = 50
GRADE_LABELS = {"low": "Low", "medium": "Medium", "high": "High"}
HAZARD_STATUS_LABELS = {"listed": "Still listed", "open": "Awaiting rectification",
                        "rectification_verified": "Rectification verified", "removed": "Removed",
                        "closed_other": "Closed (entity ceased)"}
ORDER_STATUS_LABELS = {"issued": "Order issued", "served": "Served", "reported": "Reported fixed",
                       "verified": "Verified", "escalated": "Escalated to a case", "closed_other": "Closed"}
CASE_STATUS_LABELS = {"lead": "Case lead", "filed": "Case filed", "decided": "Decided", "closed": "Closed",
                      "not_filed": "Not filed", "terminated": "Case terminated"}
CAMPAIGN_STATUS_LABELS = {"draft": "Draft", "approved": "Approved", "drawn": "Drawn", "published": "Published",
                          "closed": "Closed"}


def _districts() -> tuple[str, ...]:
    """The signed-in user's jurisdiction (empty: every district)."""
    return current_user().jurisdiction


def _charts(series: dashboard.Series) -> dict:
    labels = [d[5:] for d in series.days]  # MM-DD
    return {
        "throughput": {"type": "bar", "labels": labels, "datasets": [
            {"label": _("Tasks completed"), "data": series.tasks_completed, "color": "#2563eb"},
            {"label": _("Instances completed"), "data": series.instances_completed, "color": "#15803d"}]},
        "overdue": {"type": "line", "labels": labels, "datasets": [
            {"label": _("Open tasks past due (end of day)"), "data": series.overdue_open, "color": "#b91c1c"}]},
    }


@bp.route("/")
@roles_required(*policy.SUPERVISORS)
def index():
    s = read_session()
    districts = _districts()
    ov = dashboard.overview(s, clock.now(), districts=districts)
    plans = dashboard.plans_in_preparation(s, districts=districts)
    deadlines = publication_deadlines.deadline_board(s, clock.now(), districts=districts,
                                                     low_fine_yuan=settings().publicity_low_fine_yuan)
    return render_template("supervise/index.html", ov=ov, charts=_charts(ov.series), grade_labels=GRADE_LABELS,
                           plans=plans, deadlines=deadlines,
                           campaign_status_labels=CAMPAIGN_STATUS_LABELS, grades=HAZARD_GRADES)


@bp.route("/hazards")
@roles_required(*policy.SUPERVISORS)
def hazards():
    s = read_session()
    page_no = page_arg(PAGE_SIZE)
    status = request.args.get("status", "listed")
    status = None if status == "all" else status
    grade = request.args.get("grade") or None
    if status not in (None, "listed", *HAZARD_STATUSES):
        raise InvalidInput(_("The filter “{name}” must be one of {values}, not “{value}”.", name="status",
                             values=", ".join(("all", "listed", *HAZARD_STATUSES)), value=status))
    if grade not in (None, *HAZARD_GRADES):
        raise InvalidInput(_("The filter “{name}” must be one of {values}, not “{value}”.", name="grade",
                             values=", ".join(HAZARD_GRADES), value=grade))
    districts = _districts()
    page = dashboard.list_hazards(s, status=status, grade=grade, uscc=request.args.get("uscc") or None,
                                  limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE, districts=districts)
    n_overdue, overdue = dashboard.overdue_orders(s, clock.now(), limit=100, districts=districts)
    n_stranded, stranded = dashboard.stranded(s, limit=100, districts=districts)
    names = dashboard.entity_names(s, [o.uscc for o in overdue] + [o.uscc for o in stranded], districts=districts)
    args = {k: v for k, v in request.args.items() if v and k != "page"}
    return render_template("supervise/hazards.html", page=page, page_no=page_no, args=args,
                           status=status or "all", grade=grade or "", uscc=request.args.get("uscc") or "",
                           by_grade=dashboard.hazards_by_grade(s, districts=districts),
                           leaders=dashboard.recurrence_leaders(s, limit=20, districts=districts),
                           n_overdue=n_overdue, overdue=overdue, n_stranded=n_stranded, stranded=stranded,
                           case_status_labels=CASE_STATUS_LABELS, names=names, now=clock.now(),
                           grade_labels=GRADE_LABELS, status_labels=HAZARD_STATUS_LABELS,
                           order_status_labels=ORDER_STATUS_LABELS, grades=HAZARD_GRADES, statuses=HAZARD_STATUSES)


@bp.route("/campaigns")
@roles_required(*policy.SUPERVISORS)
def campaigns():
    s = read_session()
    campaign_id = int_arg("campaign", minimum=1)
    districts = _districts()
    progress = dashboard.campaign_progress(s, limit=200, districts=districts)
    rates = dashboard.hit_rates(s, campaign_id=campaign_id, districts=districts)
    chosen = next((c for c in progress if c.id == campaign_id), None)
    plans = dashboard.plans_in_preparation(s, districts=districts)
    return render_template("supervise/campaigns.html", progress=progress, rates=rates, chosen=chosen, plans=plans,
                           campaign_id=campaign_id, campaign_status_labels=CAMPAIGN_STATUS_LABELS)


@bp.route("/incidents")
@roles_required(*policy.SUPERVISORS)
def incidents():
    s = read_session()
    n, rows = dashboard.open_incidents(s, limit=200, districts=_districts())
    return render_template("supervise/incidents.html", n=n, rows=rows)


@bp.route("/stranded/<any(order, case):kind>/<int:item_id>/close", methods=["POST"])
@roles_required(*policy.SUPERVISORS)
def close_stranded(kind: str, item_id: int):
    """Close an order (with its hazards nothing else covers) or terminate a case whose process was
    terminated, with the supervisor's reason. One outside the user's jurisdiction: 403, nothing written."""
    try:
        with write() as s:
            out = hazard_commands.settle_stranded(s, current_actor(), kind, item_id, request.form.get("reason", ""))
    except NotAllowed:
        raise
    except EngineError as exc:
        flash(_("Order {id} was not closed: {error}", id=item_id, error=exc.localized(_)) if kind == "order" else
              _("Case {id} was not terminated: {error}", id=item_id, error=exc.localized(_)), "error")
        return redirect(url_for("supervise.hazards") + "#stranded"), 303
    if kind == "order":
        flash(_("Order {id} is closed; hazards closed with it: {closed}; still listed (another order or an open "
                "case covers them): {kept}.", id=item_id,
                closed=", ".join(f"#{h}" for h in out["hazards_closed"]) or "—",
                kept=", ".join(f"#{h}" for h in out["hazards_kept"]) or "—"), "success")
    else:
        flash(_("Case {id} is terminated.", id=item_id), "success")
    return redirect(url_for("supervise.hazards") + "#stranded"), 303


@bp.route("/incidents/<int:incident_id>/retry", methods=["POST"])
@roles_required(*policy.SUPERVISORS)
def retry_incident(incident_id: int):
    """Retry the failed step behind an incident (the command checks the role and the instance's jurisdiction)."""
    try:
        with write() as s:
            outcome = instance_commands.retry_incident(runtime(), s, current_actor(), incident_id)
            failure, instance_id = outcome.failure, outcome.instance.id
    except NotAllowed:
        raise
    except EngineError as exc:
        flash(_("Incident {id} was not retried: {error}", id=incident_id, error=exc.localized(_)), "error")
        return redirect(url_for("supervise.incidents")), 303
    if failure:
        flash(_("Incident {id} was retried, but the step failed again: {error}", id=incident_id,
                error=failure.get("error", "?")), "error")
    else:
        flash(_("Incident {id} was retried; instance {instance} goes on.", id=incident_id, instance=instance_id),
              "success")
    return redirect(url_for("supervise.incidents")), 303
