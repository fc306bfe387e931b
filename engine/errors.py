"""The error hierarchy. Every error maps to one CLI exit code and one HTTP status."""
from __future__ import annotations


class EngineError(Exception):
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details

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
