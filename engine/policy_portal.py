"""The entity portal's part of the authorization policy, re-exported by :mod:`engine.policy` (call it as
``policy.check_portal_*``): a seam of its own, as ``engine/policy.py`` is at the size limit of a module.

- **A business** signed in to the portal with its access code (an entity session, :mod:`engine.supervision.portal`)
  sees and submits only for its own USCC: its notices, orders, cases, draws, submissions and receipts.
- **Officers** (:data:`PORTAL_OFFICERS`) read what businesses sent, mark a kept submission handled and issue a
  business its access code — for entities registered in their jurisdiction (a USCC of no registered entity is
  city-wide: for those without a district restriction).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotAllowed
from scoring.models import Entity

#: who read and handle the businesses' portal submissions and issue their access codes (within jurisdiction)
PORTAL_OFFICERS = ("officer", "team_leader", "supervisor")


def check_portal_entity(signed_in_uscc: str | None, uscc: str | None) -> None:
    """A business signed in as ``signed_in_uscc`` sees and submits only for its own USCC."""
    mine = (signed_in_uscc or "").strip().upper()
    if not mine or mine != (uscc or "").strip().upper():
        raise NotAllowed.fmt("A business sees and submits only for its own USCC.")


def may_handle_portal(session: Session, actor, uscc: str) -> bool:
    """Whether ``actor`` (an :class:`engine.policy.Actor`) reads and handles the portal matters of ``uscc``."""
    if not actor.has(*PORTAL_OFFICERS):
        return False
    district = session.scalar(select(Entity.district).where(Entity.uscc == uscc))
    return not actor.jurisdiction if district is None else actor.sees_district(district)


def check_portal_officer(session: Session, actor, uscc: str | None = None) -> None:
    """Read or handle a business's portal submission, issue its access code (:func:`may_handle_portal`);
    ``uscc`` None: the officers' list of submissions (each row then filtered by :func:`may_handle_portal`)."""
    if not actor.has(*PORTAL_OFFICERS):
        raise NotAllowed.fmt("The businesses' submissions are for officers, team leaders and supervisors.")
    if uscc is not None and not may_handle_portal(session, actor, uscc):
        raise NotAllowed.fmt("{user} may not handle the portal matters of {uscc} (jurisdiction).",
                             user=actor.username, uscc=uscc)
