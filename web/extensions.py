"""Per-app services (settings, runtime, session factories) and per-request database sessions.

Reads use one read-only session per request (on SQLite a plain ``BEGIN``, so page views never wait for
the write lock); every change runs in its own ``write()`` transaction, committed at the end of the
``with`` block or rolled back on error — the request is the edge where commits happen.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from engine import bootstrap
from engine.config import Settings
from engine.db import read_session_factory, session_factory


@dataclass
class Services:
    settings: Settings
    write_factory: sessionmaker[Session]
    read_factory: sessionmaker[Session]
    _runtime: object | None = field(default=None, repr=False)

    @property
    def runtime(self):
        """The engine runtime, built on first use (it imports the service operators and forms)."""
        if self._runtime is None:
            self._runtime = bootstrap.build_runtime(self.settings)
        return self._runtime


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["regflow"] = Services(settings, session_factory(settings.database_url),
                                         read_session_factory(settings.database_url))

    @app.teardown_appcontext
    def _close(_exc):
        s = g.pop("read_session", None)
        if s is not None:
            s.close()


def services() -> Services:
    return current_app.extensions["regflow"]


def settings() -> Settings:
    return services().settings


def runtime():
    return services().runtime


def form_registry():
    """The form definitions of the app's settings."""
    return bootstrap.form_registry(settings())


def read_session() -> Session:
    """The request's read-only session (closed at teardown; never commit through it)."""
    s = g.get("read_session")
    if s is None:
        s = g.read_session = services().read_factory()
    return s


@contextmanager
def write() -> Iterator[Session]:
    """One atomic change: commit when the block ends, roll back on any error."""
    factory = services().write_factory
    with factory() as session, session.begin():
        yield session
    # what the request read before the change is stale now
    s = g.get("read_session")
    if s is not None:
        s.rollback()
