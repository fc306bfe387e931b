"""Restricting the supervisor's read models to districts (:mod:`.dashboard`, :mod:`.dashboard_campaigns`).

Every read model takes ``districts`` (district codes; empty = no restriction, the default). Given, it counts
and lists only rows whose entity — the ``entity`` row with the row's USCC (hazards, orders, cases, drawn
entities, recorded results) or its instance's business key (instances, tasks, incidents) — is registered in
one of those districts: a correlated ``EXISTS`` on the entity's unique USCC and its district, so the row's own
index still drives the query and the entity is one unique-key probe (or, on PostgreSQL, a semi-join from
``ix_entity_district``). Rows with no registered entity (a campaign's own instance, its tasks and incidents, a
plan in preparation, an order whose USCC is not in the registry) are city-wide: they are shown only to users
without a jurisdiction restriction.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import aliased

from engine.runtime.models import ProcessInstance
from scoring.models import Entity


def in_districts(key, districts: Sequence[str]):
    """``EXISTS`` an entity whose USCC is ``key`` (a column: a row's USCC or an instance's business key)
    registered in one of ``districts``. False for a key without a registered entity. (An alias of the
    entity table, never correlated: the outer query may join the entity table itself.)"""
    ent = aliased(Entity)
    return (select(ent.id).where(ent.uscc == key, ent.district.in_(sorted(set(districts))))
            .correlate_except(ent).exists())


def scope(key, districts: Sequence[str]) -> list:
    """The conditions restricting rows keyed by ``key`` to ``districts`` (none when empty)."""
    return [in_districts(key, districts)] if districts else []


def instance_in_districts(instance_id, districts: Sequence[str]) -> list:
    """Rows of an instance (its id in ``instance_id``) whose business key is an entity in ``districts``."""
    if not districts:
        return []
    return [select(ProcessInstance.id).where(ProcessInstance.id == instance_id,
                                             in_districts(ProcessInstance.business_key, districts)).exists()]
