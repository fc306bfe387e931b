"""Secret key, CSRF protection and security headers.

CSRF: a random token per session, sent back by every state-changing browser request as the form
field ``csrf_token`` or the ``X-CSRF-Token`` header (htmx requests get the header from ``base.html``).
API requests authenticated by a bearer token carry no cookie and are exempt.
"""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from flask import Flask, abort, request, session

from engine.config import PROJECT_ROOT, Settings

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


def secret_key(settings: Settings) -> str:
    """``REGFLOW_SECRET_KEY``, else a random key created once in ``var/secret_key`` (shared by every
    web process on the machine, so sessions survive restarts)."""
    if settings.secret_key:
        return settings.secret_key
    path = PROJECT_ROOT / "var" / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return Path(path).read_text().strip()


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

    @app.before_request
    def _check_csrf():
        if request.method in SAFE_METHODS or app.config.get("CSRF_DISABLED"):
            return None
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return None  # machine clients: token auth, no ambient cookie to forge
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
