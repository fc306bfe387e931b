from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response

from engine import policy
from engine.commands import documents as document_commands
from web.auth import current_actor, roles_required
from web.extensions import read_session

bp = Blueprint("documents", __name__, url_prefix="/documents")


@bp.route("/<int:document_id>.pdf")
@roles_required(*policy.DOCUMENT_READERS)
def pdf(document_id: int):
    name, data = document_commands.document_pdf(read_session(), current_actor(), document_id)
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f"inline; filename=\"document-{document_id}.pdf\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})
