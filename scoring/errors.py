"""Errors raised by ``scoring``. Every message names what was wrong, so a CLI or web handler can show it as is.

They belong to regflow's one error hierarchy (:class:`engine.errors.EngineError`): each class carries its CLI
exit code and HTTP status, which the edges read."""
from __future__ import annotations

from engine.errors import EngineError


class ScoringError(EngineError):
    """Base class of every error ``scoring`` raises on purpose: the model cannot be used (503)."""

    exit_code = 2
    http_status = 503


class EntityNotFound(ScoringError):
    exit_code = 3
    http_status = 404

    def __init__(self, entity_id):
        self.entity_id = entity_id
        super().__init__(f"entity {entity_id!r} not found")


class InvalidFactors(ScoringError):
    """A factor is missing, out of range or of an unknown category.

    ``entity`` is the entity id (or row index when there is no id yet), ``field`` the factor name and ``value``
    the offending value.
    """

    exit_code = 2
    http_status = 422

    def __init__(self, entity, field: str, value, reason: str):
        self.entity = entity
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"entity {entity!r}: invalid {field}={value!r}: {reason}")
        self.details = {"field": field, "field_errors": {field: reason}}


class ModelLoadError(ScoringError):
    """A model artifact is corrupted, tampered with, or not one regflow produced. ``source`` names the file or row."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"cannot load model from {source}: {reason}")


class NoActiveModel(ScoringError):
    exit_code = 3

    def __init__(self):
        super().__init__("no active model version: run `regflow model train` or `regflow model activate VERSION`")


class ModelVersionNotFound(ScoringError):
    exit_code = 3
    http_status = 404

    def __init__(self, version: str):
        self.version = version
        super().__init__(f"model version {version!r} not found")
