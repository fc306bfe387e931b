"""Wiring: build the one Runtime a process uses, with every service operator, helper and form hook."""
from __future__ import annotations

import importlib
import time
from pathlib import Path

import engine.service_tasks  # noqa: F401  (registers the built-in operators)
from engine.commands import simulations
from engine.config import Settings, load_settings
from engine.policy import TaskGuard
from engine.runtime import patches
from engine.runtime.periodic import daily, register_periodic, yearly
from engine.runtime.runtime import Runtime
from engine.runtime.services import registry
from engine.runtime.worker import register_background
from engine.supervision import calendar, enforcement, hazards, list_jobs, publication_deadlines, teams
from forms.loader import FormRegistry
from forms.validate import engine_hook


def load_plugins(settings: Settings) -> None:
    for name in filter(None, (m.strip() for m in settings.plugins.split(","))):
        importlib.import_module(name)


_form_registries: dict[str, object] = {}


def form_registry(settings: Settings):
    """The form definitions under ``REGFLOW_FORMS_DIR`` (one registry per folder per process)."""
    reg = _form_registries.get(settings.forms_dir)
    if reg is None:
        reg = _form_registries[settings.forms_dir] = FormRegistry(Path(settings.forms_dir))
    return reg


def form_hasher(settings: Settings):
    """``form_id -> sha256`` of its definition (``None`` if there is no such form; a broken one raises)."""
    return form_registry(settings).form_hash


def build_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or load_settings()
    patches.install(settings)
    load_plugins(settings)
    runtime = Runtime(settings, registry, form_validator=engine_hook(form_registry(settings)),
                      task_guard=TaskGuard(),
                      before_step=[_calendar_refresher(settings.calendar_check_s)],
                      serializer_hooks=[calendar.register_serializer],
                      terminate_hooks=[teams.release_for_instance, hazards.note_terminated_instance,
                                       enforcement.note_terminated_instance])
    calendar.register_script_helpers(runtime.helpers)
    register_background(simulations.SIMULATION, simulations.job_runner(settings))  # the designer's simulations
    # the lists' periodic work (China time): the daily 3-year escalation, the daily end of the serious list's 3-year
    # term, the 1 July annual-report default job
    register_periodic("lists.escalation", list_jobs.escalation_job, schedule=daily(calendar.SHANGHAI))
    register_periodic("lists.serious_expiry", list_jobs.expiry_job, schedule=daily(calendar.SHANGHAI))
    register_periodic("lists.annual_report_defaults", list_jobs.annual_report_job,
                      schedule=yearly(*list_jobs.JOB_DAY, calendar.SHANGHAI))
    # publication deadlines (20 working days to publish, 3 to withdraw) and the end of publicity: checked daily
    register_periodic("publication.deadlines", _deadline_monitor(settings), schedule=daily(calendar.SHANGHAI))
    return runtime


def _deadline_monitor(settings: Settings):
    def job(session, now) -> dict:
        return publication_deadlines.monitor_deadlines(
            session, now, low_fine_yuan=settings.publicity_low_fine_yuan).to_dict()
    return job


def _calendar_refresher(interval_s: float):
    """Reload the working-day calendar before a step when this process changed it, or at most every
    ``interval_s`` seconds to pick up a year another process loaded (a check costs two queries)."""
    last = [float("-inf")]

    def hook(session) -> None:
        now = time.monotonic()
        if calendar.needs_refresh() or now - last[0] >= interval_s:
            calendar.refresh(session)
            last[0] = now

    return hook
