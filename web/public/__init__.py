"""The public pages: published plans, results and penalties without sign-in, personal data masked; the public
draw pages (:mod:`web.public.draws`)."""
from web.public import (
    draws,  # noqa: F401  (registers the draw pages on the blueprint)
    list_views,  # noqa: F401  (registers the two lists' pages on the blueprint)
)
from web.public.views import bp

__all__ = ["bp"]
