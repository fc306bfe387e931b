"""``regflow``: one command-line contract for people, scripts and tests.

Exit codes: 0 done, 2 invalid input (what and where on stderr), 3 not found, 4 conflict, 5 not allowed.
With ``--json`` a command prints exactly one JSON document on stdout.

An edge over the engine, by seam: :mod:`.instances` and :mod:`.tasks` (what a person does to a process),
:mod:`.operations` (running an installation), one module per command group over the supervision services
(:mod:`.calendar`, :mod:`.case_files`, :mod:`.documents`, :mod:`.draw`, :mod:`.evidence`, :mod:`.hazards`,
:mod:`.lists`, :mod:`.publications`, :mod:`.registries`),
:mod:`.simulate` (the loop simulator) and scoring's groups; what they share is in :mod:`.support`.
``web.cli`` adds ``regflow serve``.
"""
from __future__ import annotations

import click

from scoring.cli import model, score

from . import (
    calendar,
    case_files,
    documents,
    draw,
    evidence,
    hazards,
    instances,
    lists,
    operations,
    portal,
    publications,
    registries,
    simulate,
    tasks,
    transfers,
)


@click.group()
@click.version_option(package_name="regflow")
def main() -> None:
    """regflow: BPMN workflow engine for risk-based market-supervision inspections."""


for _command in (*instances.COMMANDS, *tasks.COMMANDS, *operations.COMMANDS, calendar.calendar, case_files.cases,
                 documents.documents,
                 draw.draw, evidence.evidence, hazards.hazards, lists.lists, portal.portal,
                 publications.publications, simulate.simulate,
                 transfers.transfers_group,
                 *registries.COMMANDS,  # import, inspectors, items, team
                 model, score):
    main.add_command(_command)
