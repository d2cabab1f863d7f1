"""API-key checks shared by the HTTP middleware and the WebSocket stream routes.

A key travels as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; platforms that
cannot set headers on their WebSocket (Twilio, Telnyx) send it as the stream's ``token``
custom parameter, or a ``?token=`` query parameter (docs/live.md). The owner of what a
key creates is a hash of the key, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs

from service.problems import Problem


def header_token(headers: Mapping[str, str]) -> str | None:
    """The key in ``Authorization: Bearer`` or ``X-API-Key`` (lower-case header names)."""
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or None


#: HTTP paths that also take the key as a ``token`` query parameter (GET only): the live
#: page and its events, which a browser opens without headers.
QUERY_TOKEN_PATHS = ("/v1/streams/",)


def query_token(query_string: bytes) -> str | None:
    """The ``token`` query parameter, if any."""
    values = parse_qs(query_string.decode("latin-1")).get("token")
    return values[0] if values else None


def owner_for(keys: Sequence[bytes], token: str | None) -> str | Problem:
    """The owner id for ``token`` ("" when the server has no keys), or the 401 problem."""
    if not keys:
        return ""
    if token is None:
        return Problem(
            "auth.missing",
            "send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="mirrorline"'},
        )
    given = token.encode()
    if not any(hmac.compare_digest(given, key) for key in keys):
        return Problem(
            "auth.invalid",
            "the API key is not valid",
            headers={"WWW-Authenticate": 'Bearer realm="mirrorline", error="invalid_token"'},
        )
    return hashlib.sha256(given).hexdigest()[:24]
