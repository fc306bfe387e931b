"""``team.*``: random team formation as BPMN service tasks (:mod:`engine.supervision.teams`).

Writes are keyed by (``ctx.instance_id``, ``ctx.task_guid``): a retried task returns the team it drew
the first time and writes nothing. A team that cannot be staffed raises the BPMN error
``no_qualified_inspector`` (payload: ``message``, ``missing``, ``district``, ``uscc``) — caught by an error
boundary (borrow, commission, split the item, alert the planner) or, uncaught, an incident at once that
names what is missing. Never a silent skip.
"""
from __future__ import annotations

from datetime import date

from engine.errors import InvalidInput, NotFound
from engine.runtime.services import BpmnError, Param, ServiceContext, registry
from engine.supervision import teams
from engine.supervision.registries import items_for, required_skills

NO_QUALIFIED = "no_qualified_inspector"


def _date(value: str | None, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InvalidInput(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None


def _bpmn_error(exc: teams.NoQualifiedInspector) -> BpmnError:
    return BpmnError(NO_QUALIFIED, exc.message, payload={
        "code": NO_QUALIFIED, "message": exc.message, "missing": exc.missing, "district": exc.district,
        "uscc": exc.uscc})


@registry.register(
    "team.form",
    params=[Param("entity_id", "int", description="entity registry id (entity.id)"),
            Param("skills", "list", description="union of the required skills of the entity's check items"),
            Param("team_size", "int", required=False,
                  description="certified officers wanted (default 2; heavy path more)"),
            Param("window_start", "str", required=False,
                  description="first day of the inspection (YYYY-MM-DD; default today)"),
            Param("window_end", "str", required=False, description="last day of the inspection (default window_start)"),
            Param("campaign_seed", "str", required=False, description="the campaign's public seed value"),
            Param("workload_cap", "int", required=False, description="max open assignments per officer (default 5)"),
            Param("min_leader_seniority", "int", required=False, description="senior leader for the heavy path"),
            Param("rotation", "str", required=False, description="prefer (default) | strict | off")],
    description="Draw a verifiable random team: ≥2 certified officers, every skill covered, one leader.",
    errors={NotFound: "entity_not_found", InvalidInput: "invalid_team_request"},
    instance_row=False,  # the draw and its assignments name the instance; no key refers to its row
)
def team_form(ctx: ServiceContext, entity_id: int, skills: list, team_size: int | None = None,
              window_start: str | None = None, window_end: str | None = None, campaign_seed: str | None = None,
              workload_cap: int | None = None, min_leader_seniority: int | None = None,
              rotation: str | None = None) -> dict:
    policy = teams.TeamPolicy(**{k: v for k, v in (("workload_cap", workload_cap),
                                                   ("min_leader_seniority", min_leader_seniority),
                                                   ("rotation", rotation)) if v is not None})
    try:
        result = teams.form_team(ctx.session, instance_id=ctx.instance_id, task_key=ctx.task_guid,
                                 entity_id=entity_id, skills=[str(s) for s in skills], team_size=team_size or 2,
                                 window_start=_date(window_start, "window_start"),
                                 window_end=_date(window_end, "window_end"), campaign_seed=campaign_seed or "",
                                 policy=policy, now=ctx.now, new_key=ctx.new_instance)
    except teams.NoQualifiedInspector as exc:
        raise _bpmn_error(exc) from exc
    return result.to_dict()


@registry.register(
    "team.replace_member",
    params=[Param("team_id", "int", description="the team (team.form's team_id)"),
            Param("inspector", "str", description="code of the member who leaves"),
            Param("reason", "str", description="leave, recusal, certificate lapse …")],
    description="Release a member (leave, recusal) and redraw from the same filtered pool, logged.",
    errors={NotFound: "team_member_not_found", InvalidInput: "invalid_team_request"},
)
def team_replace_member(ctx: ServiceContext, team_id: int, inspector: str, reason: str) -> dict:
    try:
        result = teams.replace_inspector(ctx.session, team_id, inspector, reason, now=ctx.now,
                                         instance_id=ctx.instance_id, task_key=ctx.task_guid)
    except teams.NoQualifiedInspector as exc:
        raise _bpmn_error(exc) from exc
    return result.to_dict()


@registry.register(
    "team.replace_members",
    params=[Param("team_id", "int", description="the team (team.form's team_id)"),
            Param("inspectors", "str",
                  description="the members who leave: codes or user names, separated by commas (a list also)"),
            Param("reason", "str", description="leave, recusal, certificate lapse …")],
    description="Replace several members one after another (a granted recusal request), each logged; the team after.",
    errors={NotFound: "team_member_not_found", InvalidInput: "invalid_team_request"},
)
def team_replace_members(ctx: ServiceContext, team_id: int, inspectors: str | list, reason: str) -> dict:
    try:
        result = teams.replace_inspectors(ctx.session, team_id, inspectors, reason, now=ctx.now,
                                          instance_id=ctx.instance_id, task_key=ctx.task_guid)
    except teams.NoQualifiedInspector as exc:
        raise _bpmn_error(exc) from exc
    return result.to_dict()


@registry.register(
    "team.release",
    params=[Param("team_id", "int"), Param("reason", "str", required=False, description="default: completed")],
    description="Close a team's open assignments once the inspection is done (frees the officers' workload).",
    errors={NotFound: "team_not_found"},
)
def team_release(ctx: ServiceContext, team_id: int, reason: str | None = None) -> dict:
    n = teams.release_team(ctx.session, team_id, now=ctx.now, reason=reason or "completed")
    return {"team_id": team_id, "released": n}


@registry.register(
    "team.skills_for_items",
    params=[Param("item_codes", "list", description="check item codes of the joint check")],
    description="The union of the required skills of check items (input of team.form).",
    errors={NotFound: "check_item_not_found"}, writes=False,
)
def team_skills_for_items(ctx: ServiceContext, item_codes: list) -> dict:
    items = items_for(ctx.session, [str(c) for c in item_codes])
    return {"skills": required_skills(items), "departments": sorted({i.department for i in items})}
