"""Routes of the designer area. Thin: every check and change goes through
:mod:`engine.runtime.modeling` (which reuses the engine's own deploy validation)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request, url_for

from engine.bootstrap import form_hasher, form_registry
from engine.errors import DefinitionError, InvalidInput, NotFound
from engine.runtime import modeling
from web.auth import current_user, roles_required
from web.extensions import read_session, runtime, settings, write
from web.i18n import gettext as _

bp = Blueprint("designer", __name__, url_prefix="/designer")

#: who may look at definitions without changing them
READERS = ("designer", "auditor", "supervisor")


def _form_hash():
    return form_hasher(settings())


def _int_arg(name: str, default: int | None = None) -> int | None:
    raw = request.values.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}") from None


# ----------------------------------------------------------------------------------------- pages
@bp.route("/")
@roles_required(*READERS)
def index():
    s = read_session()
    files = modeling.library_files(s)
    return render_template("designer/index.html", processes=modeling.list_definitions(s),
                           dmn_files=[f for f in files if f.endswith(".dmn")],
                           simulation_entities=modeling.SIMULATION_ENTITIES)


@bp.route("/process/<process_id>/v<int:version>")
@roles_required(*READERS)
def view(process_id: str, version: int):
    definition = modeling.get_definition(read_session(), process_id, version)
    return render_template("designer/view.html", definition=definition)


@bp.route("/process/<process_id>/v<int:version>.bpmn")
@roles_required(*READERS)
def xml(process_id: str, version: int):
    definition = modeling.get_definition(read_session(), process_id, version)
    resp = Response(definition.bpmn_xml, mimetype="application/xml")
    if request.args.get("download"):
        resp.headers["Content-Disposition"] = f'attachment; filename="{process_id}-v{version}.bpmn"'
    return resp


@bp.route("/process/<process_id>/edit")
@roles_required("designer")
def edit(process_id: str):
    s = read_session()
    definition = modeling.get_definition(s, process_id, _int_arg("version"))
    files = modeling.library_files(s)
    config = _editor_config(definition.source_file, url_for(".xml", process_id=process_id, version=definition.version))
    config.update(processId=process_id, version=definition.version,
                  operators=runtime().services.describe(),
                  forms=_form_ids(), decisions=modeling.decision_ids(files))
    return render_template("designer/modeler.html", definition=definition, config=config)


@bp.route("/file/<file_name>")
@roles_required(*READERS)
def library_file(file_name: str):
    text = modeling.library_files(read_session()).get(file_name)
    if text is None:
        raise NotFound(f"no deployed file {file_name!r}")
    return Response(text, mimetype="application/xml")


@bp.route("/decision/<file_name>")
@roles_required("designer")
def edit_decision(file_name: str):
    if not file_name.endswith(".dmn") or file_name not in modeling.library_files(read_session()):
        raise NotFound(f"no deployed DMN file {file_name!r}")
    config = _editor_config(file_name, url_for(".library_file", file_name=file_name))
    return render_template("designer/dmn.html", file_name=file_name, config=config)


@bp.route("/diff")
@roles_required(*READERS)
def diff():
    process_id = request.args.get("process", "")
    s = read_session()
    a = modeling.get_definition(s, process_id, _int_arg("a"))
    b = modeling.get_definition(s, process_id, _int_arg("b"))
    changes = modeling.diff_versions(s, process_id, a.version, b.version)
    marks = {kind: [c.element_id for c in changes if c.change == kind] for kind in ("added", "removed", "changed")}
    return render_template("designer/diff.html", a=a, b=b, changes=changes,
                           left={"removed": marks["removed"], "changed": marks["changed"]},
                           right={"added": marks["added"], "changed": marks["changed"]})


# --------------------------------------------------------------------------------------- actions
@bp.route("/validate", methods=["POST"])
@roles_required("designer")
def validate():
    file_name, text = _posted_file()
    issues = modeling.validate_file(runtime(), read_session(), file_name, text, _form_hash())
    readable = not modeling.syntax_issues(file_name, text)
    body = {"ok": not issues, "readable": readable, "issues": issues,
            "message": _("No problems found.") if not issues else _("{n} problem(s) found.", n=len(issues))}
    return jsonify(body), (200 if not issues else 400)


@bp.route("/deploy", methods=["POST"])
@roles_required("designer")
def deploy():
    file_name, text = _posted_file()
    try:
        with write() as s:
            results = modeling.deploy_file(runtime(), s, file_name, text, current_user().username, _form_hash())
    except DefinitionError as exc:
        readable = not modeling.syntax_issues(file_name, text)
        return jsonify({"ok": False, "readable": readable, "issues": exc.issues,
                        "message": _("Not deployed: {n} problem(s) found.", n=len(exc.issues))}), 400
    created = [r for r in results if r.created]
    if created:
        message = _("Deployed: {what}.", what=", ".join(f"{r.process_id} v{r.version}" for r in created))
    else:
        message = _("Nothing deployed: the content is identical to the deployed versions.")
    return jsonify({"ok": True, "created": bool(created), "deployed": [r.to_dict() for r in results],
                    "message": message, "list_url": url_for(".index")})


@bp.route("/simulate", methods=["POST"])
@roles_required("designer", "supervisor")
def simulate():
    entities = _int_arg("entities", 300)
    seed = _int_arg("seed", 7)
    decisions = _uploaded_decisions()
    summary = modeling.run_simulation(entities=entities, seed=seed, decisions=decisions)
    return render_template("designer/simulation.html", summary=summary, entities=entities, seed=seed,
                           decisions=[name for name, _text in decisions])


# ------------------------------------------------------------------------------------------ helpers
def _uploaded_decisions() -> list[tuple[str, str]]:
    """What-if DMN files posted with the simulation form (``decisions``), as (file name, text)."""
    out = []
    for upload in request.files.getlist("decisions"):
        if not upload or not upload.filename:
            continue
        try:
            out.append((upload.filename, upload.read().decode("utf-8")))
        except UnicodeDecodeError:
            raise InvalidInput(f"{upload.filename}: not UTF-8 text") from None
    return out


def _posted_file() -> tuple[str, str]:
    """The ``file_name`` and ``xml`` form fields (the name is checked by the modeling service)."""
    text = request.form.get("xml")
    if text is None:
        raise InvalidInput("the request carries no xml field")
    return request.form.get("file_name", "").strip(), text


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
