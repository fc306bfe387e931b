"""Process and task names in the page's language (``engine.runtime.labels``): Jinja globals
``process_label(process_id)`` and ``task_label(task)`` for anything with ``process_id``, ``bpmn_id``,
``name`` and ``form_id`` (a human task row or an inbox row)."""
from __future__ import annotations

from flask import Flask, g

from engine.bootstrap import form_registry
from engine.runtime.labels import Labels
from forms.loader import FormDefinitionError, UnknownForm
from web.extensions import read_session, settings
from web.i18n import current_locale

_LABELS = Labels()


def _index():
    """The deployed library's names, looked up once per request."""
    index = g.get("_regflow_labels")
    if index is None:
        index = g._regflow_labels = _LABELS.index(read_session())
    return index


def process_label(process_id: str | None) -> str:
    """The process' name in the page's language, else its id."""
    if not process_id:
        return ""
    return _index().process(process_id, current_locale()) or process_id


def _form_title(form_id: str | None, lang: str) -> str | None:
    if not form_id:
        return None
    try:
        title = form_registry(settings()).get(form_id).title
    except (UnknownForm, FormDefinitionError):
        return None
    return title.get(lang) if title is not None else None


def task_label(task) -> str:
    """The element's name for the page's language; in Chinese without a ``nameZh``, the task form's title.
    ``task``: an object or a dictionary with those keys."""
    get = task.get if isinstance(task, dict) else lambda key: getattr(task, key, None)
    lang = current_locale()
    fallback = _form_title(get("form_id"), lang) if lang != "en" else None
    return _index().element(get("process_id"), get("bpmn_id"), lang, fallback) or get("name") or get("bpmn_id")


def element_label(process_id: str | None, element_id: str | None, default: str | None = None) -> str:
    """Any element's name in the page's language (its ``nameZh``/``nameEn``), else ``default`` (the name the
    caller already has), else the id."""
    if not element_id:
        return default or ""
    return _index().element(process_id or "", element_id, current_locale()) or default or element_id


def init_app(app: Flask) -> None:
    app.jinja_env.globals["process_label"] = process_label
    app.jinja_env.globals["task_label"] = task_label
    app.jinja_env.globals["element_label"] = element_label
