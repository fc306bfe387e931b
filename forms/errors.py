"""Errors of form *definitions* (bad YAML). Errors in submitted *data* are returned, never raised."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FormIssue:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class FormDefinitionError(ValueError):
    """A form definition that cannot be used. ``issues`` names file, line and key of every problem found."""

    def __init__(self, issues: list[FormIssue]):
        self.issues = list(issues)
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"invalid form definition ({len(self.issues)} problem{'s' if len(self.issues) != 1 else ''})"
        return "\n".join([head, *(f"  {i}" for i in self.issues)])


class UnknownForm(LookupError):
    """No definition file for this form id."""
