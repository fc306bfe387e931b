"""The one error hierarchy. Every error class carries its CLI exit code and its HTTP status; the edges read
them (``web.errors``, ``engine.cli.support.handle_errors``) and nothing else maps errors to statuses.

An error made with :meth:`EngineError.fmt` also keeps its English message template and parameters, so that an
edge can show it in the user's language (the web looks the template up in its catalog)."""
from __future__ import annotations

from typing import Any, Callable


class EngineError(Exception):
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details
        #: the message's English template and its parameters (``fmt``), for translation by an edge
        self.template: str | None = None
        self.params: dict[str, Any] = {}

    @classmethod
    def fmt(cls, template: str, /, *, details: dict | None = None, **params):
        """An error whose message is ``template.format(**params)``, translatable by :meth:`localized`."""
        exc = cls(template.format(**params), **(details or {}))
        exc.template, exc.params = template, params
        return exc

    def localized(self, translate: Callable[..., str]) -> str:
        """The message through ``translate(template, **params)`` (e.g. the web's gettext), else as is."""
        return translate(self.template, **self.params) if self.template else str(self)

    def __str__(self) -> str:
        return self.message


class InvalidInput(EngineError):
    """Bad data, malformed or invalid definitions: nothing was changed."""
    exit_code = 2
    http_status = 400


class DefinitionError(InvalidInput):
    """A BPMN/DMN file that cannot be deployed. ``issues`` lists (file, line, element id, message)."""

    def __init__(self, message: str, issues: list[dict] | None = None):
        super().__init__(message, issues=issues or [])
        self.issues = issues or []

    def __str__(self) -> str:
        lines = [self.message]
        for i in self.issues:
            where = ":".join(str(p) for p in (i.get("file"), i.get("line")) if p)
            elem = f" element {i['element_id']}" if i.get("element_id") else ""
            field = f" ({i['field']})" if i.get("field") else ""
            lines.append(f"  {where}{elem}{field}: {i['message']}")
        return "\n".join(lines)


class FormValidationError(InvalidInput):
    """Task input that its form refuses: ``field_errors`` maps each field path to a message."""
    http_status = 422

    def __init__(self, message: str, field_errors: dict[str, str]):
        super().__init__(message, field_errors=field_errors)
        self.field_errors = field_errors

    def __str__(self) -> str:
        return self.message + "".join(f"\n  {k}: {v}" for k, v in self.field_errors.items())


class NotFound(EngineError):
    exit_code = 3
    http_status = 404


class Conflict(EngineError):
    """Already completed, stale rev, instance not in a state that allows the action."""
    exit_code = 4
    http_status = 409


class NotAllowed(EngineError):
    exit_code = 5
    http_status = 403


class ServiceTaskError(EngineError):
    """A service task raised; carries the instance, task and stack."""


class ScriptError(EngineError):
    """A process script or expression that the sandbox refused or stopped (past its time budget, a forbidden
    operation, an unknown service operator, a compile error): inside a step it becomes an incident; at deploy or
    in a simulation it is the definition's fault (422)."""
    exit_code = 2
    http_status = 422
