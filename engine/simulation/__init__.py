"""The full-loop simulator (issue 4): a fresh registry, a trained model, the real process library on the
real engine, simulated officers who complete their tasks with valid form data, outcomes drawn from the
synthetic ground truth (``region.bayes_probability``), and a simulated clock that moves a day at a time
(timers fire through ``run_due``) until every instance has ended.

Everything is synthetic. The summary's keys are fixed by the issue (see :func:`summarise`).

An application on top of the supervision services (as ``regflow simulate``, ``bench/loop.py`` and the tests run
it), not one of them. Modules: :mod:`.options` (what a run is asked to do, the campaign plan, what-if decision
tables), :mod:`.officers` (the simulated office and parties), :mod:`.run` (setting up the registry, the run and
its summary).
"""
from __future__ import annotations

from .officers import GROUP_USER, OFFICE, Officers, OutcomeMix, work_day
from .options import DEFAULT_START, EVERY_CLASS, ITEMS, SH, Options, campaign_plan, library_with
from .run import prepare_run, simulate, summarise

__all__ = ["DEFAULT_START", "EVERY_CLASS", "GROUP_USER", "ITEMS", "OFFICE", "SH", "Officers", "Options",
           "OutcomeMix", "campaign_plan", "library_with", "prepare_run", "simulate", "summarise", "work_day"]
