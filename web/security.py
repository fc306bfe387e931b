"""Secret key, CSRF protection, security headers, the client address behind proxies and small bodies.

CSRF: a random token per session, sent back by every state-changing browser request as the form
field ``csrf_token`` or the ``X-CSRF-Token`` header (htmx requests get the header from ``base.html``).
API requests authenticated by a bearer token carry no cookie and are exempt.

Behind ``REGFLOW_TRUSTED_PROXIES = n`` reverse proxies, werkzeug's ``ProxyFix`` takes the client address and
scheme ``n`` hops from the right of ``X-Forwarded-For`` / ``-Proto``; with 0 those headers are ignored (a client
could write anything in them). Requests to ``/auth/`` and the portal's sign-in carry a few form fields: their
bodies are limited to :data:`AUTH_BODY_LIMIT` (413 past it) before any field is read — the app's limit is the
upload size.
"""
from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.config import Settings, app_secret

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
#: the largest request body of the sign-in, password and language forms
AUTH_BODY_LIMIT = 16 * 1024

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


def secret_key(settings: Settings) -> str:
    """``REGFLOW_SECRET_KEY``, else a random key created once in ``var/secret_key`` (shared by every
    web process on the machine, so sessions survive restarts)."""
    return app_secret(settings)


def csrf_token() -> str:
    token = session.get("csrf_token")
    if not token:
        token = session["csrf_token"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get("csrf_token")
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    return bool(expected) and bool(sent) and hmac.compare_digest(expected, sent)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token
    proxies = app.extensions["regflow"].settings.trusted_proxies
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    @app.before_request
    def _small_bodies():
        if request.blueprint == "auth" or request.endpoint in ("portal.login", "portal.logout"):
            request.max_content_length = AUTH_BODY_LIMIT

    @app.before_request
    def _check_csrf():
        if request.method in SAFE_METHODS or app.config.get("CSRF_DISABLED"):
            return None
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return None  # machine clients: token auth, no ambient cookie to forge
        if request.blueprint == "api" and not session.get("uid"):
            return None  # no signed-in browser session to ride on: the API answers 401 itself
        if not _csrf_ok():
            abort(400, description="csrf")
        return None

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.endpoint != "static" and "Cache-Control" not in resp.headers:
            resp.headers["Cache-Control"] = "no-store"
        return resp
