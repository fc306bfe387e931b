"""The administration area: users, roles, groups, jurisdictions, API tokens and the system audit chain."""
from web.admin.views import bp

__all__ = ["bp"]
