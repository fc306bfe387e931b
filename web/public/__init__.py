"""The public pages: published plans, results and penalties without sign-in, personal data masked."""
from web.public.views import bp

__all__ = ["bp"]
