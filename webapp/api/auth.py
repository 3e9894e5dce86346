"""Bearer tokens on every API request, the roles that may touch case data, and the API's audit trail.

A request carries `Authorization: Bearer <token>`; the token names a user, her session generation
and a server-side session (webapp/auth/sessions.py), so disabling her, changing her password or roles,
or her closing that session voids the token. The
principal is rebuilt from the database on every request and kept on `g` for that request only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import current_app, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from webapp.audit import audit
from webapp.auth.principal import ROLE_PROFESSIONAL, ROLE_SUPERVISOR, Principal
from webapp.auth.sessions import load_api_principal
from webapp.auth.tokens import read_token
from webapp.extensions import db
from webapp.requests import act_as, deny

# Need-to-know by role too: designers and administrators manage models and accounts, not cases.
CASEWORK_ROLES = frozenset({ROLE_PROFESSIONAL, ROLE_SUPERVISOR})
BEARER_AUTH = "api_bearer_auth"  # view attributes the OpenAPI document reads
CASEWORK_ONLY = "api_casework_only"

F = TypeVar("F", bound=Callable[..., Any])


def unauthorized(error: str | None = None) -> Unauthorized:
    """Return a 401 that tells the client to authenticate with a bearer token (RFC 6750)."""
    return Unauthorized(www_authenticate=WWWAuthenticate("bearer", {"error": error} if error else None))


def bearer_token() -> str | None:
    """Return the token of the request's `Authorization: Bearer` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_required(*, action: str | None = None, casework: bool = True) -> Callable[[F], F]:
    """Require a valid bearer token (401 otherwise) and, with `casework`, a casework role (403).

    `action` names the audit action of the view: a refusal is audited under it.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = bearer_token()
            if token is None:
                raise unauthorized()
            identity = read_token(str(current_app.config["SECRET_KEY"]), token)
            principal = load_api_principal(*identity) if identity else None
            if principal is None:
                raise unauthorized("invalid_token")
            g.api_principal = principal
            if action is not None:
                act_as(action)
            if casework and not principal.roles & CASEWORK_ROLES:
                deny(403)
            return view(*args, **kwargs)

        setattr(wrapper, BEARER_AUTH, True)
        setattr(wrapper, CASEWORK_ONLY, casework)
        return cast(F, wrapper)

    return decorate


def current_principal() -> Principal:
    """Return the principal of this API request (set by `token_required`)."""
    principal: Principal = g.api_principal
    return principal


def audit_api(action: str, **kwargs: Any) -> None:
    """Append an audit event by the request's principal to the request's transaction."""
    audit(db.session(), action, **kwargs)
