"""Error responses: a Spanish page for people, one JSON envelope under /api/; engine refusals audited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import Conflict, Forbidden, HTTPException, NotFound, UnprocessableEntity

from engine.errors import ConflictError, EngineError, NotFoundError, PermissionDeniedError, TaskDataError
from webapp.audit import audit_apart
from webapp.requests import current_action, object_of_request

API_PREFIX = "/api/"
# Spanish titles and explanations of the errors people are likely to meet.
MESSAGES: dict[int, tuple[LazyString, LazyString]] = {
    400: (_l("Petición incorrecta"), _l("La petición no se ha podido entender.")),
    401: (_l("Identificación necesaria"), _l("Identifíquese para continuar.")),
    403: (_l("Acceso denegado"), _l("No tiene permiso para ver esta página.")),
    404: (_l("Página no encontrada"), _l("La dirección solicitada no existe o ya no está disponible.")),
    405: (_l("Método no permitido"), _l("Esta dirección no admite esa operación.")),
    409: (_l("Conflicto"), _l("Otra persona ha modificado estos datos; vuelva a cargarlos.")),
    413: (_l("Petición demasiado grande"), _l("Los datos enviados superan el tamaño máximo admitido.")),
    422: (_l("Datos no válidos"), _l("Revise los datos marcados.")),
    429: (_l("Demasiados intentos"), _l("Espere unos minutos antes de volver a intentarlo.")),
    500: (_l("Error interno"), _l("Se ha producido un error inesperado. Ya se ha registrado; inténtelo más tarde.")),
}
DEFAULT_MESSAGE = (_l("Error"), _l("No se ha podido completar la petición."))


class InvalidData(UnprocessableEntity):
    """Submitted data failed validation; `fields` maps each field (a/b for nested ones) to its messages."""

    slug = "invalid_data"

    def __init__(self, fields: Mapping[str, Sequence[str]]) -> None:
        super().__init__()
        # Each message once per field, fields in order: one failing rule may be reported by several validators.
        self.fields = {name: list(dict.fromkeys(str(m) for m in messages)) for name, messages in sorted(fields.items())}


class WorkflowFailed(UnprocessableEntity):
    """The workflow could not go on with these data (a script or expression of the model failed)."""

    slug = "workflow_error"


def handle_http_error(error: HTTPException) -> ResponseReturnValue:
    """Render an HTTP error as JSON for API paths, as a Spanish page otherwise."""
    status = error.code or 500
    title, detail = MESSAGES.get(status, DEFAULT_MESSAGE)
    if request.path.startswith(API_PREFIX):
        slug = getattr(error, "slug", None) or (error.name or "error").lower().replace(" ", "_")
        body: dict[str, object] = {"status": status, "code": slug, "message": str(title)}
        fields = getattr(error, "fields", None)
        if fields:
            body["fields"] = fields
        # Keep the headers the error defines (WWW-Authenticate on 401, Allow on 405), not its HTML type.
        headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
        return jsonify(error=body), status, headers
    detail = getattr(error, "explanation", None) or detail  # an error that says more than its status
    return render_template("errors/error.html", status=status, title=title, detail=detail), status


def handle_engine_error(error: EngineError) -> ResponseReturnValue:
    """Answer an engine refusal with its status (403/404/409/422), as a page or in the API's envelope.

    The request's work is rolled back (a 4xx answer) and the refusal is audited in its own transaction.
    """
    http = http_error_of(error)
    audit_refusal(error)
    return handle_http_error(http)


def http_error_of(error: EngineError) -> HTTPException:
    """Return the HTTP error that answers an engine error."""
    if isinstance(error, PermissionDeniedError):
        return Forbidden()
    if isinstance(error, ConflictError):
        return Conflict()
    if isinstance(error, NotFoundError):
        return NotFound()
    if isinstance(error, TaskDataError):
        return InvalidData(error.errors)
    # A model's script or expression failed: the protocol designers must hear of it.
    current_app.logger.error("workflow error on %s: %s", request.path, error)
    return WorkflowFailed()


def audit_refusal(error: EngineError, **audit_fields: Any) -> None:
    """Audit an engine refusal of this request's action apart: denied (403), or failed and why."""
    fields: dict[str, Any] = {**object_of_request(), **audit_fields}
    if isinstance(error, PermissionDeniedError):
        fields.update(outcome="denied", detail={"status": 403})
    elif isinstance(error, TaskDataError):
        fields.update(outcome="failed", detail={"fields": sorted(error.errors)})
    else:
        reason = ("conflict" if isinstance(error, ConflictError) else "not_found" if isinstance(error, NotFoundError)
                  else "workflow_error")
        fields.update(outcome="failed", detail={"reason": reason})
    audit_apart(current_action(), **fields)
