"""Routes of the designer area. Thin: reads go through :mod:`engine.runtime.modeling`; validating and deploying
are the commands of :mod:`engine.commands.definitions` (designers only, the engine's own deploy validation).
Who may open which page: the role lists of :mod:`engine.policy`."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from engine import policy
from engine.bootstrap import form_hasher, form_registry
from engine.commands import definitions, simulations
from engine.errors import DefinitionError, NotFound
from engine.runtime import modeling
from web.auth import current_actor, login_required, roles_required
from web.extensions import read_session, runtime, settings, write
from web.i18n import gettext as _
from web.params import int_arg

bp = Blueprint("designer", __name__, url_prefix="/designer")


def _form_hash():
    return form_hasher(settings())




# ----------------------------------------------------------------------------------------- pages
@bp.route("/")
@roles_required(*policy.DESIGN_READERS)
def index():
    s = read_session()
    files = modeling.library_files(s)
    return render_template("designer/index.html", processes=modeling.list_definitions(s),
                           dmn_files=[f for f in files if f.endswith(".dmn")],
                           simulation_entities=modeling.SIMULATION_ENTITIES)


@bp.route("/process/<process_id>/v<int:version>")
@roles_required(*policy.DESIGN_READERS)
def view(process_id: str, version: int):
    definition = modeling.get_definition(read_session(), process_id, version)
    return render_template("designer/view.html", definition=definition)


@bp.route("/process/<process_id>/v<int:version>.bpmn")
@roles_required(*policy.DESIGN_READERS)
def xml(process_id: str, version: int):
    definition = modeling.get_definition(read_session(), process_id, version)
    resp = Response(definition.bpmn_xml, mimetype="application/xml")
    if request.args.get("download"):
        resp.headers["Content-Disposition"] = f'attachment; filename="{process_id}-v{version}.bpmn"'
    return resp


@bp.route("/process/<process_id>/edit")
@roles_required(*policy.DESIGNERS)
def edit(process_id: str):
    s = read_session()
    definition = modeling.get_definition(s, process_id, int_arg("version", minimum=1))
    files = modeling.library_files(s)
    config = _editor_config(definition.source_file, url_for(".xml", process_id=process_id, version=definition.version))
    config.update(processId=process_id, version=definition.version,
                  operators=runtime().services.describe(),
                  forms=_form_ids(), decisions=modeling.decision_ids(files))
    return render_template("designer/modeler.html", definition=definition, config=config)


@bp.route("/file/<file_name>")
@roles_required(*policy.DESIGN_READERS)
def library_file(file_name: str):
    text = modeling.library_files(read_session()).get(file_name)
    if text is None:
        raise NotFound(f"no deployed file {file_name!r}")
    return Response(text, mimetype="application/xml")


@bp.route("/decision/<file_name>")
@roles_required(*policy.DESIGNERS)
def edit_decision(file_name: str):
    if not file_name.endswith(".dmn") or file_name not in modeling.library_files(read_session()):
        raise NotFound(f"no deployed DMN file {file_name!r}")
    config = _editor_config(file_name, url_for(".library_file", file_name=file_name))
    return render_template("designer/dmn.html", file_name=file_name, config=config)


@bp.route("/diff")
@roles_required(*policy.DESIGN_READERS)
def diff():
    process_id = request.args.get("process", "")
    s = read_session()
    a = modeling.get_definition(s, process_id, int_arg("a", minimum=1))
    b = modeling.get_definition(s, process_id, int_arg("b", minimum=1))
    changes = modeling.diff_versions(s, process_id, a.version, b.version)
    marks = {kind: [c.element_id for c in changes if c.change == kind] for kind in ("added", "removed", "changed")}
    return render_template("designer/diff.html", a=a, b=b, changes=changes,
                           left={"removed": marks["removed"], "changed": marks["changed"]},
                           right={"added": marks["added"], "changed": marks["changed"]})


# --------------------------------------------------------------------------------------- actions
@bp.route("/validate", methods=["POST"])
@roles_required(*policy.DESIGNERS)
def validate():
    file_name, text = request.form.get("file_name"), request.form.get("xml")
    issues = definitions.validate(runtime(), read_session(), current_actor(), file_name, text, _form_hash())
    body = {"ok": not issues, "readable": _readable(file_name, text), "issues": issues,
            "message": _("No problems found.") if not issues else _("{n} problem(s) found.", n=len(issues))}
    return jsonify(body), (200 if not issues else 400)


@bp.route("/deploy", methods=["POST"])
@roles_required(*policy.DESIGNERS)
def deploy():
    file_name, text = request.form.get("file_name"), request.form.get("xml")
    try:
        with write() as s:
            results = definitions.deploy_file(runtime(), s, current_actor(), file_name, text, _form_hash())
    except DefinitionError as exc:
        return jsonify({"ok": False, "readable": _readable(file_name, text), "issues": exc.issues,
                        "message": _("Not deployed: {n} problem(s) found.", n=len(exc.issues))}), 400
    created = [r for r in results if r.created]
    if created:
        message = _("Deployed: {what}.", what=", ".join(f"{r.process_id} v{r.version}" for r in created))
    else:
        message = _("Nothing deployed: the content is identical to the deployed versions.")
    return jsonify({"ok": True, "created": bool(created), "deployed": [r.to_dict() for r in results],
                    "message": message, "list_url": url_for(".index")})


@bp.route("/simulate", methods=["POST"])
@roles_required(*policy.SIMULATORS)
def simulate():
    """Queue a simulation for the worker (never run in the request) and show its page."""
    with write() as s:
        job = simulations.submit(s, current_actor(), settings(), entities=request.form.get("entities", "300"),
                                 seed=request.form.get("seed", "7"), decisions=_uploaded_decisions())
        job_id = job.id
    return redirect(url_for(".simulation", job_id=job_id), 303)


@bp.route("/simulations")
@roles_required(*policy.SIMULATORS)
def simulations_list():
    jobs = simulations.recent(read_session(), current_actor())
    return render_template("designer/simulations.html", jobs=jobs)


@bp.route("/simulations/<int:job_id>")
@login_required
def simulation(job_id: int):
    job = simulations.get(read_session(), current_actor(), job_id)
    params = job.params or {}
    return render_template("designer/simulation_job.html", job=job, summary=job.result,
                           entities=params.get("entities"), seed=params.get("seed"),
                           decisions=[d.get("name") for d in params.get("decisions", ())])


@bp.route("/simulations/<int:job_id>.json")
@login_required
def simulation_status(job_id: int):
    job = simulations.get(read_session(), current_actor(), job_id)
    return jsonify({"id": job.id, "status": job.status, "progress": job.progress or {}, "error": job.error,
                    "finished": job.status in ("done", "failed")})


# ------------------------------------------------------------------------------------------ helpers
def _uploaded_decisions() -> list[tuple[str, bytes]]:
    """What-if DMN files posted with the simulation form (``decisions``), as (file name, bytes); the command
    checks them. Reading stops past the command's size limit."""
    return [(upload.filename, upload.read(simulations.MAX_DECISION_BYTES + 1))
            for upload in request.files.getlist("decisions") if upload and upload.filename]


def _readable(file_name, text) -> bool:
    """Whether the posted text is well-formed XML (the modeler then shows the issues on the diagram)."""
    return not modeling.syntax_issues((file_name or "").strip(), text or "")


def _form_ids() -> list[str]:
    return form_registry(settings()).ids()


def _editor_config(file_name: str, xml_url: str) -> dict:
    return {
        "fileName": file_name,
        "xmlUrl": xml_url,
        "validateUrl": url_for(".validate"),
        "deployUrl": url_for(".deploy"),
        "listUrl": url_for(".index"),
        "text": {
            "validating": _("Validating…"), "deploying": _("Deploying…"),
            "invalidXml": _("The pasted XML was not imported; nothing changed."),
            "imported": _("Imported. Validate to see the engine's checks."),
            "importFailed": _("The diagram could not be imported; nothing changed."),
            "line": _("line"), "element": _("element"), "requestFailed": _("The request failed"),
            "unknownOperator": _("unknown"), "none": _("(none)"),
            "operator": _("Service operator"), "resultVariable": _("Result variable"), "required": _("required"),
            "formId": _("Form (forms/)"), "decision": _("Decision (DMN)"),
            "candidateGroups": _("Candidate groups"),
            "candidateGroupsHelp": _("Comma-separated group names; without it the lane's name is the group."),
            "assignee": _("Assignee"),
            "assigneeHelp": _("A Python expression over task data giving a user name or a list of names."),
            "dueIn": _("Due in"), "dueInHelp": _("A Python expression, e.g. workdays(5)."),
            "priority": _("Priority"), "priorityHelp": _("A whole number; higher comes first."),
            "notCompletedBy": _("Not completed by"),
            "notCompletedByHelp": _("Comma-separated ids of user tasks in this process: whoever completed one of "
                                    "them may not complete this one (four eyes)."),
            "nameZh": _("Chinese name"),
            "nameZhHelp": _("Shown instead of the name when the workbench speaks Chinese (inbox, task page)."),
            "nameEn": _("English name"),
            "nameEnHelp": _("Shown when the workbench speaks English, if the name is not in English."),
            "startableBy": _("Startable by"),
            "startableByHelp": _("Comma-separated groups whose members may start this process; empty: only the "
                                 "engine starts it (a parent's call activity or a service task)."),
            "deployed": _("Open the process library"),
            "importWarnings": _("The diagram was read with warnings: what is listed below would be lost on save."),
        },
    }
