"""Bearer tokens on every API request, the roles that may touch case data, and the API's audit trail.

A request carries `Authorization: Bearer <token>`; the token names a user and her session
generation, so disabling her or resetting her password voids every token issued before. The
principal is rebuilt from the database on every request and kept on `g` for that request only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar, cast

from flask import abort, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from webapp.audit import audit, audit_now
from webapp.auth.principal import ROLE_PROFESSIONAL, ROLE_SUPERVISOR, Principal, load_principal
from webapp.auth.tokens import read_token
from webapp.extensions import db

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
            principal = load_principal(db.session(), *identity) if identity else None
            if principal is None:
                raise unauthorized("invalid_token")
            g.api_principal, g.api_action = principal, action
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


def _actor_fields() -> dict[str, Any]:
    principal: Principal | None = g.get("api_principal")
    if principal is None:
        return {}
    return {"user_id": principal.user_id, "username": principal.username, "agency_id": principal.agency_id}


def audit_api(action: str, **kwargs: Any) -> None:
    """Append an audit event by the request's principal to the request's transaction."""
    audit(db.session(), action, **_actor_fields(), **kwargs)


def record_denial(status: int, **kwargs: Any) -> None:
    """Undo the request's work and commit a denial audit of the view's action (on the URL's object)."""
    db.session().rollback()
    if "object_id" not in kwargs:
        kwargs.update(_object_of_request())
    audit_now(db.session(), g.get("api_action") or request.endpoint or "api", outcome="denied", **_actor_fields(),
              detail={"status": status}, **kwargs)


def deny(status: int = 404, **kwargs: Any) -> NoReturn:
    """Record a denial and answer `status`: 404 when not visible (never reveal existence), 403 when not allowed."""
    record_denial(status, **kwargs)
    abort(status)


def _object_of_request() -> dict[str, Any]:
    args = request.view_args or {}
    for name, object_type in (("task_id", "task"), ("case_id", "case")):
        if name in args:
            return {"object_type": object_type, "object_id": args[name]}
    return {}
