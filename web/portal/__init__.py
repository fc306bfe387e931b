"""The entity portal: businesses sign in with an access code and submit; officers see what was kept for them.
The routes: :mod:`.views`; the entity session in the browser: :mod:`.entity`."""
from web.portal.views import bp

__all__ = ["bp"]
