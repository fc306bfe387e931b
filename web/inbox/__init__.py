"""The officers' area: the inbox (my tasks and my groups' tasks), the task page with its form or merged
checklist and evidence upload, and the entity dossier."""
from web.inbox import portal_codes  # noqa: F401  (registers the portal-code routes on the blueprint)
from web.inbox.views import bp

__all__ = ["bp"]
