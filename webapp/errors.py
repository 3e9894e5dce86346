"""Error responses: a Spanish page for people, one JSON envelope under /api/."""

from __future__ import annotations

from flask import jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

API_PREFIX = "/api/"
# Spanish titles and explanations of the errors people are likely to meet.
MESSAGES: dict[int, tuple[str, str]] = {
    400: ("Petición incorrecta", "La petición no se ha podido entender."),
    403: ("Acceso denegado", "No tiene permiso para ver esta página."),
    404: ("Página no encontrada", "La dirección solicitada no existe o ya no está disponible."),
    405: ("Método no permitido", "Esta dirección no admite esa operación."),
    409: ("Conflicto", "Otra persona ha modificado estos datos; vuelva a cargarlos."),
    500: ("Error interno", "Se ha producido un error inesperado. Ya se ha registrado; inténtelo más tarde."),
}
DEFAULT_MESSAGE = ("Error", "No se ha podido completar la petición.")


def handle_http_error(error: HTTPException) -> ResponseReturnValue:
    """Render an HTTP error as JSON for API paths, as a Spanish page otherwise."""
    status = error.code or 500
    title, detail = MESSAGES.get(status, DEFAULT_MESSAGE)
    if request.path.startswith(API_PREFIX):
        slug = (error.name or "error").lower().replace(" ", "_")
        return jsonify(error={"status": status, "code": slug, "message": title}), status
    return render_template("errors/error.html", status=status, title=title, detail=detail), status
