"""The auditors' area (read only): instance search, the instance page (diagram with the path taken,
timeline, routing reasons, incidents, hash-chain verdict), the instance as it was at a past event, and
exports of an instance's history as JSON and CSV. Supervisors may read it too; nothing here changes data."""
from web.audit.views import bp

__all__ = ["bp"]
