"""What a client sends, checked in one place before any view reads it: integers and nesting.

- **Integers in paths**: Flask's ``int`` URL converter is replaced by :class:`BoundedInt`, bounded to the
  signed 64-bit range every database column holds: ``/public/999…9`` (30 digits) is a 404 like any unknown
  id, never an overflow deep in a query.
- **Integers in query arguments**: :func:`int_arg` (and :func:`page_arg` for page numbers) answer 400 with a
  message naming the parameter when the value is not a whole number or lies outside its range (which never
  leaves ±2**62, and a page number times its page size stays below it).
- **Nesting**: a JSON body or a form whose field names nest deeper than :data:`MAX_DEPTH` levels is refused
  (400, naming the path of the first value too deep) before a view reads it; a JSON body nested too deeply to
  be parsed at all is refused the same way. Data already stored is shown cut at a depth by :func:`clip`.
- The size of a request body is limited by ``MAX_CONTENT_LENGTH`` (the upload size plus 64 KiB; 413).
"""
from __future__ import annotations

import json
from typing import Any

from flask import Flask, request
from werkzeug.routing import IntegerConverter, ValidationError

from engine.commands.nesting import MAX_DEPTH, too_deep
from engine.errors import InvalidInput
from web.i18n import gettext as _

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
#: the range of a query argument: any id fits, and an offset plus a limit still fits in 64 bits
ARG_MIN, ARG_MAX = -(2 ** 62), 2 ** 62
#: the depth at which stored data is cut when it is shown
SHOWN_DEPTH = 12
ELLIPSIS = "…"


class BoundedInt(IntegerConverter):
    """Flask's ``int`` converter bounded to the signed 64-bit range (a tighter ``min``/``max`` still applies):
    a larger value does not match the rule, so the answer is 404."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = None,
                 signed: bool = False) -> None:
        low = INT64_MIN if min is None or min < INT64_MIN else min
        high = INT64_MAX if max is None or max > INT64_MAX else max
        super().__init__(map, fixed_digits, low, high, signed)

    def to_python(self, value: str) -> Any:
        if len(value) > 20:  # longer than any 64-bit number: refused before it is converted
            raise ValidationError()
        return super().to_python(value)


def int_arg(name: str, default: int | None = None, *, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    """The query argument ``name`` as an integer (``default`` when absent or empty); 400 naming it when it is
    not a whole number or lies outside ``minimum``..``maximum`` (never outside :data:`ARG_MIN`..:data:`ARG_MAX`)."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return default
    low = ARG_MIN if minimum is None else max(minimum, ARG_MIN)
    high = ARG_MAX if maximum is None else min(maximum, ARG_MAX)
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidInput(_("The parameter “{name}” must be a whole number, not “{value}”.", name=name,
                             value=_shorten(raw)), field=name)
    value = int(raw) if len(digits) <= 20 else (high + 1 if raw[0] != "-" else low - 1)
    if not low <= value <= high:
        raise InvalidInput(_("The parameter “{name}” must be between {low} and {high}.", name=name, low=low,
                             high=high), field=name)
    return value


def page_arg(page_size: int, name: str = "page") -> int:
    """A page number, 1 by default: at least 1, and small enough that its offset fits in 64 bits."""
    return int_arg(name, 1, minimum=1, maximum=ARG_MAX // page_size)


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def clip(value: Any, limit: int = SHOWN_DEPTH) -> Any:
    """``value`` with everything nested deeper than ``limit`` levels replaced by ``…`` (for showing stored data)."""
    if isinstance(value, dict):
        return {k: clip(v, limit - 1) for k, v in value.items()} if limit > 0 else ELLIPSIS
    if isinstance(value, (list, tuple)):
        return [clip(v, limit - 1) for v in value] if limit > 0 else ELLIPSIS
    return value


def _refuse_deep(path: str) -> None:
    raise InvalidInput(_("The value at “{path}” is nested more than {n} levels deep; send flatter data.",
                         path=_shorten(path, 120), n=MAX_DEPTH), field=path)


def _check_nesting() -> None:
    """Refuse a JSON body or form nested deeper than :data:`MAX_DEPTH` (before a view reads it)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.is_json:
        try:
            body = json.loads(request.get_data(cache=True))
        except RecursionError:
            _refuse_deep("(body)")
        except ValueError:
            return  # not JSON: the view answers that
        path = too_deep(body)
        if path is not None:
            _refuse_deep(path)
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key in request.form.keys():
            if key.count("[") >= MAX_DEPTH:
                _refuse_deep(key)


def init_app(app: Flask) -> None:
    """Install the bounded ``int`` converter (before any blueprint adds its rules) and the nesting check."""
    app.url_map.converters["int"] = BoundedInt
    app.before_request(_check_nesting)
