"""Wiring: build the one Runtime a process uses, with every service operator, helper and form hook."""
from __future__ import annotations

import hashlib
import importlib
import time
from pathlib import Path

from engine.config import Settings, load_settings
from engine.runtime.runtime import Runtime
from engine.runtime.services import registry


def load_plugins(settings: Settings) -> None:
    for name in filter(None, (m.strip() for m in settings.plugins.split(","))):
        importlib.import_module(name)


def form_hasher(settings: Settings):
    """``form_id -> sha256`` of ``forms/definitions/<form_id>.yaml`` (``None`` if there is no such form)."""
    root = Path(settings.forms_dir)

    def digest(form_id: str) -> str | None:
        if "/" in form_id or "\\" in form_id or form_id.startswith("."):
            return None
        path = root / f"{form_id}.yaml"
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

    return digest


def build_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or load_settings()
    import engine.service_tasks  # noqa: F401  (registers the built-in operators)
    from engine.supervision import calendar

    load_plugins(settings)
    calendar.register_script_helpers()
    return Runtime(settings, registry, before_step=[_calendar_refresher(settings.calendar_check_s)],
                   serializer_hooks=[calendar.register_serializer])


def _calendar_refresher(interval_s: float):
    """Reload the working-day calendar before a step when this process changed it, or at most every
    ``interval_s`` seconds to pick up a year another process loaded (a check costs two queries)."""
    from engine.supervision import calendar

    last = [float("-inf")]

    def hook(session) -> None:
        now = time.monotonic()
        if calendar.needs_refresh() or now - last[0] >= interval_s:
            calendar.refresh(session)
            last[0] = now

    return hook
