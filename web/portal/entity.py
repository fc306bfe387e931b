"""The entity session in the browser: a business signed in with its access code, apart from the staff's.

The signed session cookie holds ``portal = {c: code id, u: USCC, v: the code's session version, iat: sign-in
time}`` and nothing of a staff session (signing in to either clears the other): a business never acts as a
user, a user never as a business. :func:`current_entity` checks it on every request against the code
(:func:`engine.supervision.portal.session_valid`: code neither revoked nor expired, version unchanged, younger
than ``REGFLOW_PORTAL_SESSION_HOURS``); :func:`entity_required` sends anyone else to the portal's sign-in page.
"""
from __future__ import annotations

import functools

from flask import g, redirect, request, session, url_for

from engine.runtime import clock
from engine.supervision import portal
from engine.supervision.portal import EntitySession
from web.extensions import read_session, settings


def start_entity_session(code_id: int, uscc: str, version: int) -> None:
    lang = session.get("lang")
    session.clear()
    session["portal"] = {"c": code_id, "u": uscc, "v": version, "iat": int(clock.now().timestamp())}
    if lang:
        session["lang"] = lang
    session.permanent = False
    g.pop("current_user", None)
    g.pop("current_entity", None)


def end_entity_session() -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    g.current_entity = None


def _held() -> EntitySession | None:
    doc = session.get("portal")
    if not isinstance(doc, dict):
        return None
    c, u, v, iat = doc.get("c"), doc.get("u"), doc.get("v"), doc.get("iat")
    if not (isinstance(c, int) and isinstance(u, str) and isinstance(v, int) and isinstance(iat, int)):
        return None
    return EntitySession(c, u, v, iat)


def current_entity() -> EntitySession | None:
    """The business signed in to the portal in this browser, or ``None``."""
    if "current_entity" in g:
        return g.current_entity
    held = _held()
    if held is not None and not portal.session_valid(read_session(), held, now=clock.now(),
                                                     max_hours=settings().portal_session_hours):
        end_entity_session()
        held = None
    g.current_entity = held
    return held


def entity_required(view):
    """Only a business signed in to the portal; anyone else goes to the portal's sign-in page."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_entity() is None:
            return redirect(url_for("portal.login", next=request.path))
        return view(*args, **kwargs)
    return wrapped
