"""Recording a read of a dossier, an evidence file or an instance's history (:mod:`engine.runtime.reads`).

A view calls :func:`record_read` after the policy allowed the read and before it shows anything: the row is
written in a small transaction of its own (not the request's read session, whose loaded rows stay valid), so a
read that cannot be recorded fails instead of being served unrecorded.
"""
from __future__ import annotations

from engine.runtime import reads
from web.extensions import services

from .access import current_user
from .client import client_address


def record_read(kind: str, ref) -> None:
    """Record that the signed-in user (or token owner) reads ``kind`` ``ref`` now, from this client."""
    user = current_user()
    factory = services().write_factory
    with factory() as s, s.begin():
        reads.record(s, user.username, kind, ref, via="api" if user.via_token else "web",
                     address=client_address())
