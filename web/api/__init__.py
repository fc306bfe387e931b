"""The JSON API ``/api/v1`` for machine clients (bearer tokens), with its OpenAPI document."""
from web.api.views import bp

__all__ = ["bp"]
