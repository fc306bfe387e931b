"""Simplified Chinese by default, English on request; dates shown in Asia/Shanghai.

Message ids are the English texts. Each area keeps its Chinese catalog in
``web/translations/zh/<area>.yaml`` (``English text: 中文``); a missing entry falls back to English and
``tests/web/test_i18n.py`` fails on it. ``_("Due {date}", date=d)`` formats after translating.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from flask import Flask, g, request, session
from markupsafe import Markup

LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
TIMEZONE = ZoneInfo("Asia/Shanghai")
CATALOG_DIR = Path(__file__).resolve().parent / "translations"


@lru_cache(maxsize=None)
def catalog(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    folder = CATALOG_DIR / locale
    if folder.is_dir():
        for path in sorted(folder.glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for key, value in data.items():
                merged[str(key)] = str(value)
    return merged


def current_locale() -> str:
    loc = g.get("locale")
    if loc is None:
        loc = request.args.get("lang") if request else None
        if loc not in LOCALES:
            loc = session.get("lang") if request else None
        if loc not in LOCALES:
            loc = DEFAULT_LOCALE
        g.locale = loc
    return loc


def gettext(message: str, **kw) -> str:
    loc = current_locale()
    text = message if loc == "en" else catalog(loc).get(message, message)
    if isinstance(message, Markup):
        text = Markup(text)
    return text.format(**kw) if kw else text


_ = gettext


def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(TIMEZONE).strftime(fmt)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["_"] = gettext
    app.jinja_env.globals["current_locale"] = current_locale
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["localdate"] = lambda v: localtime(v, "%Y-%m-%d")
