"""Validate and coerce submitted data against a form definition.

Input is either JSON-like nested data or an HTML form: a flat mapping (or a Werkzeug ``MultiDict``) whose
names use brackets for nesting, as rendered by ``forms/templates/forms/macros.html``::

    findings[0][description]=...        table row 0, column description
    checklist[GSP-4.2][result]=...      checklist clause GSP-4.2

Error keys use the same bracket paths (``findings[0][description]``) so that the renderer can show each
message next to its input. Nothing is silently dropped: an unknown key is an error, and so is a value
given for a field that its ``visible_if`` hides (unless it equals the field's default). The only values
that are skipped are table rows whose cells are all empty (the blank row the renderer offers).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .coerce import Ambiguous, coerce_default, coerce_fields
from .errors import UnknownForm
from .messages import message
from .model import FormDefinition
from .schema import bind_clauses

__all__ = ["validate", "engine_hook", "nest", "bind_runtime"]

_NAME_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]+\])+)$")


# -- nesting HTML names ------------------------------------------------------------------------------
def nest(data: Any) -> dict:
    """HTML form data (``MultiDict`` or flat dict with bracket names) or JSON data → nested dict."""
    if hasattr(data, "getlist"):
        items = []
        for k in data.keys():
            vs = data.getlist(k)
            items.append((k, vs[0] if len(vs) == 1 else list(vs)))
    elif isinstance(data, Mapping):
        items = list(data.items())
    else:
        raise TypeError(f"form data must be a mapping, not {type(data).__name__}")
    out: dict = {}
    for key, value in items:
        m = _NAME_RE.match(key) if isinstance(key, str) else None
        if not m:
            out[key] = Ambiguous() if key in out else value
            continue
        parts = [m.group(1), *re.findall(r"\[([^\[\]]+)\]", m.group(2))]
        node = out
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict) or isinstance(nxt, Ambiguous):
                node[p] = nxt = Ambiguous()
                break
            node = nxt
        else:
            node[parts[-1]] = Ambiguous() if parts[-1] in node else value
    return out


# -- the entry points --------------------------------------------------------------------------------
def validate(form: FormDefinition, data: Any, *, lang: str = "zh") -> tuple[dict, dict[str, str]]:
    """``(clean_data, errors)``; ``errors`` maps a field path to a message in ``lang`` (empty when valid).
    ``clean_data`` holds every field of the form (``None``/``[]``/``{}`` when empty or hidden) with
    JSON-compatible values: dates as ``YYYY-MM-DD``, datetimes as ISO 8601 in UTC."""
    errors: dict[str, str] = {}
    try:
        nested = nest(data)
    except TypeError:
        return {}, {"": message("structure", lang)}
    clean = coerce_fields(form.fields, nested, None, errors, lang, top=True)
    return clean, errors


def bind_runtime(form: FormDefinition, task_data: Mapping | None) -> FormDefinition:
    """Fill every ``clauses_from`` checklist from the task data (e.g. the merged checklist) when present, and make
    the value of every ``default_from`` key the field's default (e.g. the method a decision table chose). A value
    that is not valid for its field binds nothing: the field keeps its static default."""
    for f in form.fields:
        if f.type == "checklist" and f.clauses is None and task_data and task_data.get(f.clauses_from):
            form = bind_clauses(form, f.name, task_data[f.clauses_from])
        if f.default_from and task_data and task_data.get(f.default_from) not in (None, "", [], {}):
            default, problem = coerce_default(f, task_data[f.default_from])
            if problem is None:
                form = form.with_default(f.name, default)
    return form


def engine_hook(registry, *, lang: str = "zh") -> Callable[..., tuple[dict, dict]]:
    """The engine's ``form_validator(form_id, data, task_data=None, lang=None) -> (clean, errors)``: the one
    place where a task's input is validated and coerced, whatever edge sent it (web form, API, CLI). ``data``
    is JSON-like (nested dicts and lists; HTML form names already nested by :func:`nest`); ``clean`` is what the
    engine stores; ``errors`` maps a field path to a message in ``lang`` (default: the hook's), empty when valid.

    ``task_data``, the task's current data, binds runtime checklists (``clauses_from``) so that every clause
    must be answered; without it each submitted clause is still checked.
    A definition that no longer parses raises ``FormDefinitionError`` (a deployment problem, not the user's).
    """
    default_lang = lang

    def form_validator(form_id: str, data: dict, task_data: Mapping | None = None,
                       lang: str | None = None) -> tuple[dict, dict]:
        lang = lang or default_lang
        try:
            form = registry.get(form_id)
        except UnknownForm:
            return {}, {"": message("unknown_form", lang, form_id=form_id)}
        return validate(bind_runtime(form, task_data), data, lang=lang)

    return form_validator
