"""The workbench's Flask app factory, one blueprint per area (``web.create_app`` calls it)."""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from flask import Flask

from engine.config import Settings, load_settings
from web import auth, errors, extensions, home, i18n, labels, params, security


def create_app(config: dict[str, Any] | None = None, settings: Settings | None = None) -> Flask:
    """Build the app. ``settings`` overrides the environment (tests pass their database URL);
    ``config`` is merged into ``app.config`` last."""
    settings = settings or load_settings()
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.from_mapping(
        SECRET_KEY=security.secret_key(settings),
        MAX_CONTENT_LENGTH=int(settings.max_upload_mb * 1024 * 1024) + 64 * 1024,  # the file plus form fields
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="regflow_session",
        JSON_SORT_KEYS=False,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if config:
        app.config.update(config)
    extensions.init_app(app, settings)
    i18n.init_app(app)
    security.init_app(app)
    params.init_app(app)  # the bounded int converter before any rule is added; after security's body limits
    labels.init_app(app)
    errors.init_app(app)
    app.register_blueprint(auth.bp)
    auth.init_app(app)
    app.register_blueprint(home.bp)
    for name in ("inbox", "designer", "audit", "supervise", "admin", "public", "portal", "documents", "api"):
        _register_optional(app, name)
    app.jinja_env.globals["endpoints"] = app.view_functions  # for "is this area installed?" checks in nav
    return app


def _register_optional(app: Flask, name: str) -> None:
    """Areas are packages ``web/<name>/`` exporting ``bp`` (and optionally ``init_app``)."""
    if importlib.util.find_spec(f"web.{name}") is None:
        return
    module = importlib.import_module(f"web.{name}")
    app.register_blueprint(module.bp)
    if hasattr(module, "init_app"):
        module.init_app(app)
