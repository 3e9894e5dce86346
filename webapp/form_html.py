"""Render a form definition as accessible HTML, and read a posted form back into typed JSON.

Pure functions of a `FormDefinition` (no request, no database): the task page, the detection page
and the incident page all use them. Booleans are a yes/no radio pair, so that an unanswered
required question stays unanswered instead of silently becoming "no"; enums are radios (few
options) or a select; arrays of enums are checkboxes; `date` and `date-time` strings get date
and datetime-local inputs (a local time, sent back as ISO 8601 with its offset).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict

from engine.forms import FormDefinition
from engine.localtime import LOCAL_TZ

RADIO_MAX_OPTIONS = 4  # up to this many options show as radios, more as a select
TEXTAREA_FROM = 256  # strings allowed to be longer than this get a textarea
TRUE, FALSE = "true", "false"
FORM_ERRORS = "(form)"  # errors not about one field


@dataclass(frozen=True)
class Option:
    """One choice of an enum: the stored value and its label."""

    value: str
    label: str


@dataclass(frozen=True)
class Field:
    """One question of a form, as it is shown."""

    name: str
    label: str
    widget: str  # text | textarea | number | date | datetime | select | radio | yesno | checkboxes | checkbox
    kind: str  # the JSON type: string | boolean | integer | number | array
    required: bool = False
    help: str = ""
    options: tuple[Option, ...] = ()
    limits: dict[str, Any] = field(default_factory=dict)  # minimum, maximum, maxLength

    @property
    def grouped(self) -> bool:
        """Tell whether the field is a group of inputs (radios, checkboxes) under one legend."""
        return self.widget in ("radio", "yesno", "checkboxes")


@dataclass(frozen=True)
class Section:
    """A titled group of fields (a fieldset)."""

    title: str
    fields: tuple[Field, ...]


# --- Layout -------------------------------------------------------------------------------------
def layout(form: FormDefinition) -> list[Section]:
    """Return the form's sections in order, each field with its widget; unsectioned fields go last."""
    properties: dict[str, Any] = form.schema.get("properties", {})
    order = [name for name in form.ui.get("order", []) if name in properties]
    order += [name for name in properties if name not in order]
    fields = {name: make_field(form, name) for name in order}
    sections: list[Section] = []
    placed: set[str] = set()
    for section in form.ui.get("sections", []):
        names = [name for name in section.get("fields", []) if name in fields and name not in placed]
        placed.update(names)
        if names:
            sections.append(Section(str(section.get("title", "")), tuple(fields[name] for name in names)))
    rest = [fields[name] for name in order if name not in placed]
    if rest:
        sections.append(Section(_("Otros datos") if sections else form.title, tuple(rest)))
    return sections


def fields_of(form: FormDefinition) -> list[Field]:
    """Return every field of the form in display order."""
    return [f for section in layout(form) for f in section.fields]


def make_field(form: FormDefinition, name: str) -> Field:
    """Describe one property of the form's schema as a field."""
    prop: dict[str, Any] = form.schema["properties"][name]
    hint = form.ui.get("widgets", {}).get(name)
    kind = str(prop.get("type", "string"))
    help_parts = [str(prop.get("description", "")), str(form.ui.get("help", {}).get(name, ""))]
    items: dict[str, Any] = prop["items"] if isinstance(prop.get("items"), dict) else {}
    options = _options(items if kind == "array" else prop)
    limits: dict[str, Any] = {k: prop[k] for k in ("minimum", "maximum", "maxLength") if k in prop}
    return Field(
        name=name, label=str(prop.get("title") or name), widget=_widget(kind, prop, hint, options), kind=kind,
        required=name in form.schema.get("required", []), help=" ".join(p for p in help_parts if p),
        options=options, limits=limits,
    )


def _options(prop: Mapping[str, Any]) -> tuple[Option, ...]:
    if "oneOf" in prop:
        return tuple(Option(str(o["const"]), str(o.get("title", o["const"]))) for o in prop["oneOf"] if "const" in o)
    if "enum" in prop:
        return tuple(Option(str(v), str(v)) for v in prop["enum"])
    return ()


def _widget(kind: str, prop: Mapping[str, Any], hint: str | None, options: Sequence[Option]) -> str:
    if kind == "boolean":
        return "checkbox" if hint == "checkbox" else "yesno"
    if kind == "array":
        return "checkboxes"
    if options:
        if hint in ("radio", "select"):
            return hint
        return "radio" if len(options) <= RADIO_MAX_OPTIONS else "select"
    if kind in ("integer", "number"):
        return "number"
    if prop.get("format") == "date" or hint == "date":
        return "date"
    if prop.get("format") == "date-time" or hint == "datetime":
        return "datetime"
    if hint in ("text", "textarea"):
        return hint
    return "textarea" if int(prop.get("maxLength", 0)) > TEXTAREA_FROM else "text"


# --- Parsing ------------------------------------------------------------------------------------
def parse(form: FormDefinition, formdata: MultiDict[str, str]) -> dict[str, Any]:
    """Turn posted form data into typed JSON; empty answers are left out, unreadable ones kept as text.

    Keeping an unreadable answer (a number field holding "abc") lets validation put an error next
    to its field, and the page shows what was typed.
    """
    data: dict[str, Any] = {}
    for f in fields_of(form):
        if f.widget == "checkboxes":
            chosen = [str(v) for v in formdata.getlist(f.name) if str(v).strip()]
            if chosen:
                data[f.name] = chosen
            continue
        if f.widget == "checkbox":
            data[f.name] = formdata.get(f.name) == TRUE
            continue
        raw = formdata.get(f.name)
        if raw is None or not str(raw).strip():
            continue
        data[f.name] = _typed(f, str(raw))
    return data


def _typed(f: Field, raw: str) -> Any:
    if f.kind == "boolean":
        return {TRUE: True, FALSE: False}.get(raw, raw)
    if f.kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            return raw
    if f.kind == "number":
        try:
            number = float(raw.strip())
        except ValueError:
            return raw
        return int(number) if number.is_integer() else number
    if f.widget == "datetime":
        return local_to_iso(raw)
    return raw


def local_to_iso(raw: str) -> str:
    """Read a datetime-local value as local time and return ISO 8601 with its offset (else as given)."""
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        return raw
    if when.tzinfo is None:
        when = when.replace(tzinfo=LOCAL_TZ)
    return when.isoformat()


def iso_to_local(value: str) -> str:
    """Show an ISO 8601 date-time as a datetime-local value in local time (else as given)."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    if when.tzinfo is not None:
        when = when.astimezone(LOCAL_TZ)
    return when.strftime("%Y-%m-%dT%H:%M:%S" if when.second else "%Y-%m-%dT%H:%M")


# --- Error messages -----------------------------------------------------------------------------
def messages(
    form: FormDefinition, errors: Mapping[str, Sequence[str]], values: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Say in Spanish what is wrong with each field; errors not about a field go under FORM_ERRORS.

    The engine reports schema errors in the validator's English; a form's own checks already
    carry their Spanish message.
    """
    known = {f.name: f for f in fields_of(form)}
    own = {check.message for check in form.checks}
    result: dict[str, list[str]] = {}
    for key, found in errors.items():
        target = key if key in known else FORM_ERRORS
        for message in found:
            if message in own:
                text = message
            elif target == FORM_ERRORS:
                text = _("Hay datos que no son válidos.")
            else:
                text = _field_message(known[target], message, values.get(target))
            if text not in result.get(target, []):
                result.setdefault(target, []).append(text)
    return result


def _field_message(f: Field, message: str, value: Any) -> str:
    if message == "required":
        grouped = f.grouped or f.widget == "select"
        return str(_("Responda a esta pregunta.") if grouped else _("Este dato es obligatorio."))
    if message == "unknown field":
        return str(_("Este dato no forma parte del formulario."))
    if f.widget == "number":
        if "minimum" in f.limits and "maximum" in f.limits:
            low, high = f.limits["minimum"], f.limits["maximum"]
            return str(_("Escriba un número entre %(low)s y %(high)s.", low=low, high=high))
        return str(_("Escriba un número válido."))
    if f.widget == "date":
        return str(_("Escriba una fecha válida."))
    if f.widget == "datetime":
        return str(_("Escriba una fecha y hora válidas."))
    if f.options or f.kind == "boolean":
        return str(_("Elija una de las opciones."))
    if "maxLength" in f.limits and isinstance(value, str) and len(value) > f.limits["maxLength"]:
        limit = f.limits["maxLength"]
        return str(_("El texto es demasiado largo (como máximo %(count)s caracteres).", count=limit))
    return str(_("El valor no es válido."))


# --- Rendering ----------------------------------------------------------------------------------
def field_id(name: str, prefix: str = "f") -> str:
    """Return the id of a field's input (the first input of a group): what error links point to."""
    return f"{prefix}-{name}"


def anchor(f: Field, prefix: str = "f") -> str:
    """Return the id of the first focusable input of a field."""
    return f"{field_id(f.name, prefix)}-0" if f.grouped else field_id(f.name, prefix)


def render(
    form: FormDefinition, values: Mapping[str, Any] | None = None, errors: Mapping[str, Sequence[str]] | None = None,
    *, prefix: str = "f", notes: Mapping[str, Markup] | None = None,
) -> Markup:
    """Render the form's sections as fieldsets of labelled inputs, with values and error messages.

    `notes` puts ready-made HTML right after a field (the territory's resources next to a referral).
    """
    values, errors, notes = values or {}, errors or {}, notes or {}
    html = []
    for section in layout(form):
        inner = "".join(render_field(f, values.get(f.name), errors.get(f.name, ()), prefix=prefix)
                        + str(notes.get(f.name, "")) for f in section.fields)
        html.append(f'<fieldset class="form-section"><legend>{escape(section.title)}</legend>{inner}</fieldset>')
    return Markup("".join(html))  # noqa: S704 - every piece of text inside was escaped above


def render_field(f: Field, value: Any, errors: Sequence[str] = (), *, prefix: str = "f") -> str:
    """Render one field: label (or legend), help, error messages next to it, and its input(s)."""
    base = field_id(f.name, prefix)
    described = []
    help_html = error_html = ""
    if f.help:
        described.append(f"{base}-help")
        help_html = f'<p class="help" id="{base}-help">{escape(f.help)}</p>'
    if errors:
        described.append(f"{base}-error")
        error_html = f'<p class="field-error" id="{base}-error">{escape(" ".join(errors))}</p>'
    attrs = {"aria-describedby": " ".join(described) or None, "aria-invalid": TRUE if errors else None}
    classes = "field invalid" if errors else "field"
    required_mark = f' <span class="required">({escape(_("obligatorio"))})</span>' if f.required else ""
    if f.grouped:
        inputs = _choices(f, value, base, attrs)
        return (f'<fieldset class="{classes} choices" id="{base}-field"><legend>{escape(f.label)}{required_mark}'
                f"</legend>{help_html}{error_html}{inputs}</fieldset>")
    if f.widget == "checkbox":
        checkbox = _tag("input", {"type": "checkbox", "id": base, "name": f.name, "value": TRUE,
                                  "checked": value is True, **attrs})
        return (f'<div class="{classes} option" id="{base}-field">{checkbox} <label for="{base}">{escape(f.label)}'
                f"</label>{help_html}{error_html}</div>")
    label = f'<label for="{base}">{escape(f.label)}{required_mark}</label>'
    control = _control(f, value, base, attrs)
    return f'<div class="{classes}" id="{base}-field">{label}{help_html}{error_html}{control}</div>'


def _control(f: Field, value: Any, base: str, attrs: dict[str, Any]) -> str:
    common = {"id": base, "name": f.name, "required": f.required, **attrs}
    text = "" if value is None else str(value)
    if f.widget == "textarea":
        return _tag("textarea", {**common, "maxlength": f.limits.get("maxLength"), "rows": 5}, content=text)
    if f.widget == "select":
        chosen = text
        options = [_tag("option", {"value": ""}, content=_("Elija una opción"))]
        options += [_tag("option", {"value": o.value, "selected": o.value == chosen}, content=o.label)
                    for o in f.options]
        return _tag("select", common, content=Markup("".join(options)))  # noqa: S704 - built with _tag, escaped
    if f.widget == "number":
        step = 1 if f.kind == "integer" else "any"
        return _tag("input", {"type": "number", **common, "value": text, "step": step,
                              "min": f.limits.get("minimum"), "max": f.limits.get("maximum"),
                              "inputmode": "numeric" if f.kind == "integer" else None})
    if f.widget == "date":
        return _tag("input", {"type": "date", **common, "value": text})
    if f.widget == "datetime":
        return _tag("input", {"type": "datetime-local", **common, "value": iso_to_local(text) if text else ""})
    return _tag("input", {"type": "text", **common, "value": text, "maxlength": f.limits.get("maxLength")})


def _choices(f: Field, value: Any, base: str, attrs: dict[str, Any]) -> str:
    if f.widget == "yesno":
        options: tuple[Option, ...] = (Option(TRUE, _("Sí")), Option(FALSE, _("No")))
        chosen = {TRUE if value is True else FALSE if value is False else str(value)}
    elif f.widget == "checkboxes":
        options = f.options
        chosen = {str(v) for v in value} if isinstance(value, list) else set()
    else:
        options = f.options
        chosen = {"" if value is None else str(value)}
    kind = "checkbox" if f.widget == "checkboxes" else "radio"
    html = []
    for number, option in enumerate(options):
        option_id = f"{base}-{number}"
        box = _tag("input", {"type": kind, "id": option_id, "name": f.name, "value": option.value,
                             "checked": option.value in chosen, "required": f.required and kind == "radio", **attrs})
        html.append(f'<div class="option">{box} <label for="{option_id}">{escape(option.label)}</label></div>')
    return "".join(html)


def _tag(name: str, attrs: Mapping[str, Any], content: str | None = None) -> str:
    parts = [name]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        parts.append(str(escape(key)) if value is True else f'{escape(key)}="{escape(str(value))}"')
    opening = f"<{' '.join(parts)}>"
    if content is None:
        return opening
    return f"{opening}{escape(content)}</{name}>"
