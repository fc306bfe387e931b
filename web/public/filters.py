"""The query parameters the public feeds share: a kind filter, the entity (a USCC), and for JSON the window
(``limit`` ≤ :data:`FEED_MAX`, ``offset``) — bad values are an :class:`~engine.errors.InvalidInput` naming the
parameter, answered as a JSON 400 by the ``.json`` endpoints (:func:`json_error`)."""
from __future__ import annotations

from collections.abc import Sequence

from flask import jsonify, request

from engine.errors import InvalidInput
from web import params
from web.i18n import gettext as _

FEED_MAX = 200


def kind_and_entity(param: str, kinds: Sequence[str]) -> tuple[str | None, str | None]:
    """``param`` (one of ``kinds``) and ``entity`` (also ``uscc``): each None when absent."""
    kind = (request.args.get(param) or "").strip() or None
    if kind and kind not in kinds:
        raise InvalidInput(_("The filter “{name}” must be one of {values}, not “{value}”.", name=param,
                             values=", ".join(kinds), value=kind[:40]))
    uscc = (request.args.get("entity") or request.args.get("uscc") or "").strip().upper() or None
    if uscc and (len(uscc) != 18 or not uscc.isalnum()):
        raise InvalidInput(_("The entity filter takes an 18-character unified social credit code (USCC), not "
                             "“{value}”.", value=uscc[:40]))
    return kind, uscc


def window() -> tuple[int, int]:
    """``limit`` (1–:data:`FEED_MAX`, 50 unless given) and ``offset`` (0 or more)."""
    return (params.int_arg("limit", 50, minimum=1, maximum=FEED_MAX), params.int_arg("offset", 0, minimum=0))


def json_error(exc: InvalidInput):
    return jsonify({"error": {"status": 400, "message": str(exc)}}), 400


def json_page(body: dict):
    """A public JSON page, cacheable for a minute."""
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "public, max-age=60"
    return resp
