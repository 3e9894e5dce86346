"""API bearer tokens: signed, expiring, and void once the user's session generation moves on."""

from __future__ import annotations

from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

TOKEN_LIFETIME = timedelta(hours=8)
_SALT = "coordina-api-token"


def issue_token(secret_key: str, user_id: int, generation: int) -> str:
    """Return a bearer token for a user (valid for TOKEN_LIFETIME)."""
    return str(URLSafeTimedSerializer(secret_key, salt=_SALT).dumps({"u": user_id, "g": generation}))


def read_token(secret_key: str, token: str, *, now: datetime | None = None) -> tuple[int, int] | None:
    """Return (user id, generation) of a valid, unexpired token, else None."""
    serializer = URLSafeTimedSerializer(secret_key, salt=_SALT)
    try:
        data = serializer.loads(token, max_age=int(TOKEN_LIFETIME.total_seconds()))
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("g"), int):
        return None
    return data["u"], data["g"]
