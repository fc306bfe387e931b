from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response

from engine import policy
from engine.commands import case_files as case_file_commands
from engine.commands import documents as document_commands
from web.auth import current_actor, record_read, roles_required
from web.extensions import read_session, settings

bp = Blueprint("documents", __name__, url_prefix="/documents")


@bp.route("/<int:document_id>.pdf")
@roles_required(*policy.DOCUMENT_READERS)
def pdf(document_id: int):
    doc, name, data = document_commands.document_pdf(read_session(), current_actor(), document_id)
    record_read("document", doc.number)  # the PDF names the party: its download is in the read log
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f"inline; filename=\"document-{document_id}.pdf\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})


@bp.route("/cases/<int:instance_id>.zip")
@roles_required(*policy.CASE_FILE_READERS)
def case_file(instance_id: int):
    """The case file (案卷) of an instance as one signed ZIP, for whoever may read the instance; the export is
    recorded in the read log before it is built."""
    s, actor, cfg = read_session(), current_actor(), settings()
    case_file_commands.check_export(s, actor, instance_id)
    record_read("instance", instance_id)
    made = case_file_commands.export(s, actor, instance_id, keys_dir=cfg.keys_dir, upload_dir=cfg.upload_dir,
                                     record=False)
    return Response(made.data, mimetype="application/zip", headers={
        "Content-Disposition": f"attachment; filename=\"{made.file_name}\"",
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})
