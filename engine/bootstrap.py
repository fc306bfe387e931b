"""Wiring: build the one Runtime a process uses, with every service operator, helper and form hook."""
from __future__ import annotations

import hashlib
import importlib
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
    return Runtime(settings, registry, before_step=[calendar.refresh],
                   serializer_hooks=[calendar.register_serializer])
