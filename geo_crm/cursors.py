"""Opaque keyset-paging cursors: a small JSON object, base64url-encoded without padding.

Clients must treat them as opaque; a cursor that does not decode is an `InvalidInput`
on the field `cursor` (422 in the API).
"""
from __future__ import annotations

import base64
import binascii
import json

from geo_crm.errors import InvalidInput


def encode_cursor(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict:
    """The cursor's object ({} for no cursor)."""
    if not cursor:
        return {}
    try:
        pad = "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(cursor + pad))
        if not isinstance(data, dict):
            raise ValueError
        return data
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor", "invalid cursor") from None
