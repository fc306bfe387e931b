"""The transaction-scoped read cache: kept while nothing it depends on changes, dropped when it may be stale."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update

import engine.supervision.registry_models  # noqa: F401
from engine import txcache
from engine.supervision.registry_models import Department, Skill

NOW = datetime(2026, 3, 5, 2, 0, tzinfo=timezone.utc)


def _codes(s, calls):
    def load():
        calls.append(1)
        return tuple(s.scalars(select(Skill.code).order_by(Skill.code)))
    return txcache.get(s, "skills", ("skill",), load)


def test_cached_until_a_dependency_changes(db):
    calls: list = []
    with db.tx() as s:
        s.add(Skill(code="general", name="general"))
        s.flush()
        assert _codes(s, calls) == ("general",)
        assert _codes(s, calls) == ("general",) and len(calls) == 1
        s.add(Department(code="amr", name="market"))  # another table: the entry stays
        s.flush()
        assert _codes(s, calls) == ("general",) and len(calls) == 1
        s.add(Skill(code="pricing", name="pricing"))  # its table: dropped, the next read sees the new row
        s.flush()
        assert _codes(s, calls) == ("general", "pricing") and len(calls) == 2
        s.execute(update(Skill).where(Skill.code == "pricing").values(name="price"))
        assert txcache.peek(s, "skills") is None
        assert _codes(s, calls) == ("general", "pricing") and len(calls) == 3


def test_savepoints_and_transaction_end(db):
    calls: list = []
    with db.factory() as s:
        with s.begin():
            s.add(Skill(code="general", name="general"))
            s.flush()
            _codes(s, calls)
            with s.begin_nested():  # a committed savepoint (every service call runs in one) keeps the entry
                s.add(Department(code="amr", name="market"))
            assert txcache.peek(s, "skills") == ("general",)
            sp = s.begin_nested()
            s.add(Skill(code="pricing", name="pricing"))
            s.flush()
            assert _codes(s, calls) == ("general", "pricing")
            sp.rollback()  # the entry held a row the rollback took back
            assert txcache.peek(s, "skills") is None
            assert _codes(s, calls) == ("general",)
        assert txcache.peek(s, "skills") is None  # committed: nothing outlives the transaction
        with s.begin():
            assert _codes(s, calls) == ("general",) and len(calls) == 4


def test_core_writes_need_an_explicit_invalidate(db):
    calls: list = []
    with db.tx() as s:
        _codes(s, calls)
        s.connection().execute(Skill.__table__.insert(), [{"code": "pricing", "name": "pricing"}])
        assert _codes(s, calls) == ()  # documented: Core on the connection bypasses the session
        txcache.invalidate(s, ["skill"])
        assert _codes(s, calls) == ("pricing",)
