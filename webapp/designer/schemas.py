"""Payloads of the designer's JSON endpoints (the modeller and the form editor call them)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.limits import MAX_ID


class DraftSave(Schema):
    """Save the draft of a file: its text and the row version the editor loaded (null: no draft then)."""

    content = fields.String(required=True, validate=validate.Length(max=5 * 1024 * 1024))
    version = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_ID))


class FormPreview(Schema):
    """Render a form definition as the task page would."""

    content = fields.String(required=True, validate=validate.Length(max=1024 * 1024))


class ProblemOut(Schema):
    """One problem: which file, which element, which line, what."""

    file = fields.String()
    element_id = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)
    message = fields.String()
