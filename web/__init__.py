"""The regflow workbench: a Flask app factory (:mod:`web.app`) with one blueprint per area.

Only this package imports Flask. Routes stay thin: they read the request, call an ``engine/``,
``scoring/`` or ``forms/`` service with a session, and render. The package itself imports nothing: the
``regflow`` console script (:mod:`web.cli`) lives here, and a CLI command other than ``serve`` must not pay for
loading Flask and every blueprint.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from engine.config import Settings


def create_app(config: dict[str, Any] | None = None, settings: Settings | None = None) -> Flask:
    """Build the app (:func:`web.app.create_app`)."""
    from web.app import create_app as build  # noqa: PLC0415  (Flask and the blueprints load with the app only)

    return build(config, settings)
