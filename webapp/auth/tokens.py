"""API bearer tokens: signed, expiring, naming a server-side session; void once it or the generation ends."""

from __future__ import annotations

from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

TOKEN_LIFETIME = timedelta(hours=8)
_SALT = "coordina-api-token"


def issue_token(secret_key: str, user_id: int, generation: int, key: str) -> str:
    """Return a bearer token for a user's API session `key` (valid for TOKEN_LIFETIME)."""
    payload = {"u": user_id, "g": generation, "s": key}
    return str(URLSafeTimedSerializer(secret_key, salt=_SALT).dumps(payload))


def read_token(secret_key: str, token: str, *, now: datetime | None = None) -> tuple[int, int, str] | None:
    """Return (user id, generation, session key) of a valid, unexpired token, else None."""
    serializer = URLSafeTimedSerializer(secret_key, salt=_SALT)
    try:
        data = serializer.loads(token, max_age=int(TOKEN_LIFETIME.total_seconds()))
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("g"), int):
        return None
    if not isinstance(data.get("s"), str):
        return None  # a token from before server-side sessions: no session to check, so none
    return data["u"], data["g"], data["s"]
