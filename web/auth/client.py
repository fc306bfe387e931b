"""Where a sign-in comes from: the client address and the browser's *known device* cookie.

The address is the TCP peer, or with ``REGFLOW_TRUSTED_PROXIES = n`` the address ``n`` hops from the right of
``X-Forwarded-For`` (werkzeug's ``ProxyFix``, installed by :func:`web.security.init_app`). An IPv6 address
counts as its /64 network: one machine usually holds a whole /64.

The known-device cookie (``regflow_device``, signed with the app's secret key, valid :data:`DEVICE_DAYS`) names
a random browser id and the accounts (at most :data:`DEVICE_ACCOUNTS`) that signed in successfully from this
browser. Sign-ins to one of those accounts from it are throttled on their own
(:mod:`engine.runtime.signin`), so strangers failing on the account elsewhere never slow its owner down here.
"""
from __future__ import annotations

import ipaddress
import secrets

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from web.extensions import settings

DEVICE_COOKIE = "regflow_device"
DEVICE_DAYS = 90
DEVICE_ACCOUNTS = 5
_SALT = "regflow-known-device"


def client_address() -> str:
    """The client's address for throttling and the audit chain (an IPv6 address as its /64)."""
    raw = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_SALT)


def _device() -> dict:
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw or len(raw) > 4096:
        return {}
    try:
        doc = _serializer().loads(raw, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return {}
    ok = (isinstance(doc, dict) and isinstance(doc.get("d"), str) and isinstance(doc.get("u"), list)
          and all(isinstance(u, str) for u in doc["u"]))
    return doc if ok else {}


def known_device(username: str) -> str | None:
    """The id of this browser if ``username`` signed in from it before, else ``None``."""
    doc = _device()
    return doc["d"] if doc and username in doc["u"] else None


def remember_device(response, username: str) -> None:
    """After a successful sign-in: this browser is known for ``username`` (the most recent accounts first)."""
    doc = _device() or {"d": secrets.token_urlsafe(16), "u": []}
    accounts = [username] + [u for u in doc["u"] if u != username]
    value = _serializer().dumps({"d": doc["d"], "u": accounts[:DEVICE_ACCOUNTS]})
    response.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_DAYS * 86400, path="/auth/", httponly=True,
                        samesite="Lax", secure=settings().secure_cookies)
