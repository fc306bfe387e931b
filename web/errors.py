"""One place that turns engine errors and HTTP errors into pages (HTML) or ``{"error": …}`` (API)."""
from __future__ import annotations

from flask import Flask, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from engine.errors import EngineError
from web.i18n import gettext as _

TITLES = {
    400: "The request is not valid", 401: "Please sign in", 403: "You are not allowed to do this",
    404: "Not found", 405: "Method not allowed", 409: "Conflict", 413: "The upload is too large",
    415: "This file type is not accepted", 422: "The data is not valid", 500: "Internal error",
    503: "The service is not available",
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def status_of(exc: EngineError) -> int:
    """The HTTP status an engine error carries (its class's ``http_status``): the one mapping."""
    return exc.http_status


def error_response(status: int, message: str, **extra):
    if wants_json():
        body = {"error": {"status": status, "message": message, **extra}}
        return jsonify(body), status
    return render_template("errors/error.html", status=status, title=_(TITLES.get(status, "Error")),
                           message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(EngineError)
    def _engine_error(exc: EngineError):
        extra = {k: v for k, v in (exc.details or {}).items() if k in ("field", "field_errors", "task_status", "rev")}
        return error_response(status_of(exc), exc.localized(_), **(extra if wants_json() else {}))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.code == 400 and exc.description == "csrf":
            return error_response(400, _("The form has expired or did not come from this site (CSRF check failed). "
                                         "Reload the page and try again."))
        if exc.code == 401 and not wants_json():
            return redirect(url_for("auth.login", next=request.full_path))
        desc = exc.description if exc.description and exc.description != type(exc).description else ""
        return error_response(exc.code or 500, desc or _(TITLES.get(exc.code or 500, exc.name)))

    @app.errorhandler(OverflowError)
    def _overflow(exc: OverflowError):
        """A number too large for the database that got past :mod:`web.params` (a safety net: 400, not 500)."""
        app.logger.warning("number out of range in %s %s", request.method, request.path, exc_info=exc)
        return error_response(400, _("A number in the request is too large."))

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError):
        """Data nested too deeply to be read or shown (stored before :mod:`web.params` refused such input)."""
        app.logger.warning("data nested too deeply in %s %s", request.method, request.path, exc_info=exc)
        return error_response(422, _("The data is nested too deeply to be processed or shown."))

    @app.errorhandler(500)
    def _internal(exc):
        return error_response(500, "internal error")
