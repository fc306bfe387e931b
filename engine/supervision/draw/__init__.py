"""Campaigns and their stratified, verifiable random draw, from the plan to the joint visits.

A campaign goes through these steps, each in the module named:

1. plan a draft, 2. approve it and record the public randomness value — :mod:`.campaigns`;
3. freeze the eligible population (registry in scope, logged exclusions) — :mod:`.eligibility`, the list
   and its hash being a :class:`~.population.Population`;
4. draw — :mod:`.algorithm` (pure: the specification of ``regflow-draw/1`` and its implementation, what
   anyone can recompute from the published inputs), stored once by :mod:`.results`; ``regflow draw
   verify`` recomputes a stored draw in :mod:`.verification`;
5. merge the visits of an entity drawn by campaigns with overlapping windows — :mod:`.joint`.

(Step 6, the inspection team of each visit, is :mod:`engine.supervision.teams`.) A campaign's population is
frozen once (``campaign_population``) and its draw written once (``draw_result``): drawing again returns the
stored result, never a new random one. :mod:`.rawsql` holds the plain-DBAPI bulk reads and inserts.
"""
from __future__ import annotations

from .algorithm import (
    ALGORITHM,
    DEFAULT_CONTROL_SHARE,
    DEFAULT_RATIOS,
    DrawnRow,
    DrawOutcome,
    compare_rows,
    compute_seed,
    draw_population,
    entity_keys,
    normalize_ratios,
    parse_decimal,
    sround,
)
from .campaigns import DRAWN_STATUSES, approve_campaign, create_campaign, get_campaign, record_public_value
from .eligibility import (
    EXCLUSION_COLUMNS,
    INSPECTION_PROCESS_IDS,
    POPULATION_FORMAT,
    TERMINAL_STATUSES,
    UNCLASSIFIED_AS,
    ExclusionRule,
    PopulationSummary,
    freeze_population,
    load_population,
    register_exclusion_rule,
)
from .joint import JointCheck, joint_check_for, joint_checks, prefetch_joint_checks
from .population import Population
from .results import DrawSummary, draw_campaign, drawn_entities, drawn_rows
from .verification import VerifyResult, verify

__all__ = [
    # the algorithm (pure)
    "ALGORITHM", "DEFAULT_CONTROL_SHARE", "DEFAULT_RATIOS", "DrawnRow", "DrawOutcome", "Population",
    "compare_rows", "compute_seed", "draw_population", "entity_keys", "normalize_ratios", "parse_decimal",
    "sround",
    # campaigns
    "DRAWN_STATUSES", "approve_campaign", "create_campaign", "get_campaign", "record_public_value",
    # the eligible population
    "EXCLUSION_COLUMNS", "INSPECTION_PROCESS_IDS", "POPULATION_FORMAT", "TERMINAL_STATUSES", "UNCLASSIFIED_AS",
    "ExclusionRule", "PopulationSummary", "freeze_population", "load_population", "register_exclusion_rule",
    # the stored draw and its verification
    "DrawSummary", "draw_campaign", "drawn_entities", "drawn_rows", "VerifyResult", "verify",
    # joint checks
    "JointCheck", "joint_check_for", "joint_checks", "prefetch_joint_checks",
]
