"""Limits on what a client may send: request size, ids, JSON nesting; beyond them a 4xx, never a 500.

- Size: a request body over MAX_CONTENT_LENGTH (COORDINA_MAX_REQUEST_BYTES, 2 MB) is refused with a 413
  from its Content-Length, before anything reads it; a body without one is cut off at the limit while
  read. A view marked `@accepts_upload` has MAX_UPLOAD_BYTES (COORDINA_MAX_UPLOAD_BYTES) instead.
- Ids: every id in a URL uses the `id` converter (`<id:case_id>`), 1…2³¹−1 (a PostgreSQL integer);
  beyond, the URL matches nothing (404). Ids in query strings and forms go through `parse_id`.
- JSON: a body nested deeper than MAX_JSON_DEPTH is refused with a 422 naming the limit, before any
  view, schema or the engine walks it (they recurse); `too_deep` checks other JSON (uploaded files).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from flask.wrappers import Request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge, UnprocessableEntity
from werkzeug.routing import IntegerConverter, Map

# The largest id: PostgreSQL's integer, SQLite's rows fit in it too.
MAX_ID = 2**31 - 1
MAX_JSON_DEPTH = 32
DEFAULT_MAX_REQUEST_BYTES = 2 * 1024 * 1024
# The designer takes files of up to 5 MB (webapp/designer/views.py), plus the form that carries them.
DEFAULT_MAX_UPLOAD_BYTES = 6 * 1024 * 1024
_ID_TEXT = re.compile(r"[0-9]{1,10}")
_UPLOAD_ATTRIBUTE = "accepts_upload"

F = TypeVar("F", bound=Callable[..., Any])


def numbers_up_to(limit: int) -> str:
    """Return a regular expression of the decimal numbers 1…`limit` (no sign, no leading zero)."""
    text = str(limit)
    shorter = [f"[1-9][0-9]{{0,{len(text) - 2}}}"] if len(text) > 1 else []
    # As long as `limit`: its first i digits, then a smaller digit, then any digits.
    same_length = [f"{text[:i]}[{1 if i == 0 else 0}-{int(digit) - 1}][0-9]{{{len(text) - i - 1}}}"
                   for i, digit in enumerate(text) if int(digit) > (1 if i == 0 else 0)]
    return "(?:" + "|".join([*shorter, *same_length, text]) + ")"


class IdConverter(IntegerConverter):
    """A database id in a URL: 1…2³¹−1 in digits; anything else matches no rule, whatever the method (404).

    The range is in the pattern itself: an out-of-range number that matched the pattern and failed
    the converter's check would make Werkzeug answer 405 where a same-path rule of another method exists.
    """

    regex = numbers_up_to(MAX_ID)

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


class TooDeep(UnprocessableEntity):
    """A JSON document nested deeper than the limit: 422, naming it (in the API's `fields`, on the page)."""

    slug = "too_deep"

    def __init__(self, field: str = "body") -> None:
        super().__init__()
        self.fields = {field: [str(depth_message())]}
        self.explanation = depth_message()


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading at most MAX_JSON_DEPTH levels of nesting (TooDeep otherwise)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text; a document nested too deep is a TooDeep, whatever reads it (request.get_json)."""
        value = load_bounded(s, **kwargs)
        if value is TOO_DEEP:
            raise TooDeep()
        return value


class LimitedRequest(Request):
    """A request whose body limit is the upload limit on views marked `@accepts_upload`."""

    @property
    def max_content_length(self) -> int | None:
        """Return the body limit: the view's own if set, the upload limit on upload views, else the app's."""
        if self._max_content_length is None and current_app and self.endpoint:
            view = current_app.view_functions.get(self.endpoint)
            if getattr(view, _UPLOAD_ATTRIBUTE, False):
                return int(current_app.config["MAX_UPLOAD_BYTES"])
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def init_limits(app: Flask) -> None:
    """Install the limits: size defaults and the early refusal, the `id` converter, bounded JSON.

    Call it before the blueprints are registered: their rules use the `id` converter.
    """
    sizes = {"MAX_CONTENT_LENGTH": DEFAULT_MAX_REQUEST_BYTES, "MAX_UPLOAD_BYTES": DEFAULT_MAX_UPLOAD_BYTES}
    for key, default in sizes.items():
        app.config[key] = int(app.config.get(key) or default)  # Flask's own default is None: no limit
    app.request_class = LimitedRequest
    app.json_provider_class = BoundedJSONProvider
    app.json = BoundedJSONProvider(app)
    app.url_map.converters["id"] = IdConverter
    app.before_request(refuse_oversized_body)


def accepts_upload(view: F) -> F:
    """Mark a view that takes file uploads: its requests may carry MAX_UPLOAD_BYTES."""
    setattr(view, _UPLOAD_ATTRIBUTE, True)
    return view


def refuse_oversized_body() -> None:
    """Answer 413 to a request whose declared body is over its limit, without reading any of it."""
    limit = request.max_content_length
    length = request.content_length
    if limit is not None and length is not None and length > limit:
        raise RequestEntityTooLarge()


def parse_id(value: object) -> int | None:
    """Return `value` (a query or form argument) as an id, or None if it is not one (1…2³¹−1, ASCII digits)."""
    number = parse_count(value)
    return number if number else None


def parse_count(value: object) -> int | None:
    """Return `value` (a query or form argument) as a whole number 0…2³¹−1, or None if it is not one."""
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) else ""
    if not _ID_TEXT.fullmatch(text):
        return None
    number = int(text)
    return number if number <= MAX_ID else None


def depth_message() -> Any:
    """Return the message of a JSON document nested too deep (it names the limit)."""
    return _l("Los datos JSON tienen más de %(limit)s niveles de anidamiento.", limit=MAX_JSON_DEPTH)


TOO_DEEP = object()  # what load_bounded returns for a document nested too deep


def load_bounded(text: str | bytes, **kwargs: Any) -> Any:
    """Parse JSON text, returning the TOO_DEEP marker for a document nested deeper than MAX_JSON_DEPTH.

    The parser itself recurses (RecursionError on very deep documents); what it can parse is then
    measured without recursion.
    """
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:
        return TOO_DEEP
    return TOO_DEEP if nesting_exceeds(value, MAX_JSON_DEPTH) else value


def too_deep(text: str | bytes) -> bool:
    """Tell whether JSON text is nested deeper than MAX_JSON_DEPTH (invalid JSON is not: its parser says why)."""
    try:
        return load_bounded(text) is TOO_DEEP
    except ValueError:
        return False


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Tell whether a parsed JSON value has more than `limit` levels of arrays and objects (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
