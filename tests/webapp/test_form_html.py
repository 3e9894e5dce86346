"""Forms rendered from form definitions, and posted forms read back into typed JSON (pure functions)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from engine.forms import FormCheck, FormDefinition, load_catalog, validate_data
from webapp import form_html

ROOT = Path(__file__).resolve().parents[2]
COLOURS = [{"const": c, "title": t} for c, t in
           (("red", "Rojo"), ("green", "Verde"), ("blue", "Azul"), ("black", "Negro"), ("white", "Blanco"))]

EVERY_WIDGET = FormDefinition(
    name="every_widget", title="Todos los controles",
    schema={
        "type": "object",
        "properties": {
            "name": {"type": "string", "title": "Nombre", "maxLength": 80, "description": "Como figura en el DNI."},
            "story": {"type": "string", "title": "Relato", "maxLength": 4000},
            "remark": {"type": "string", "title": "Nota", "maxLength": 100},
            "children": {"type": "integer", "title": "Menores", "minimum": 0, "maximum": 20},
            "weight": {"type": "number", "title": "Peso"},
            "seen_on": {"type": "string", "format": "date", "title": "Fecha"},
            "seen_at": {"type": "string", "format": "date-time", "title": "Fecha y hora"},
            "colour": {"type": "string", "title": "Color", "oneOf": COLOURS},
            "size": {"type": "string", "title": "Talla", "enum": ["s", "m", "l"]},
            "shade": {"type": "string", "title": "Tono", "oneOf": COLOURS},
            "level": {"type": "string", "title": "Nivel", "enum": ["bajo", "alto"]},
            "danger": {"type": "boolean", "title": "Peligro <inmediato>"},
            "agreed": {"type": "boolean", "title": "Conforme"},
            "measures": {"type": "array", "title": "Medidas", "uniqueItems": True,
                         "items": {"type": "string", "oneOf": COLOURS[:3]}},
            "extra": {"type": "string", "title": "Extra", "maxLength": 10},
        },
        "required": ["name", "danger", "colour", "measures"],
        "additionalProperties": False,
    },
    ui={
        "sections": [
            {"title": "Texto", "fields": ["name", "story", "remark"]},
            {"title": "Números y fechas", "fields": ["children", "weight", "seen_on", "seen_at"]},
            {"title": "Opciones", "fields": ["colour", "size", "shade", "level", "danger", "agreed", "measures"]},
        ],
        "widgets": {"remark": "textarea", "shade": "radio", "level": "select", "agreed": "checkbox"},
        "help": {"danger": "Avise a la policía."},
    },
    checks=(FormCheck("extra", "extra != 'mal'", "El extra no puede ser «mal»."),),
)

EXPECTED_WIDGETS = {
    "name": "text", "story": "textarea", "remark": "textarea", "children": "number", "weight": "number",
    "seen_on": "date", "seen_at": "datetime", "colour": "select", "size": "radio", "shade": "radio",
    "level": "select", "danger": "yesno", "agreed": "checkbox", "measures": "checkboxes", "extra": "text",
}


class Browser(HTMLParser):
    """Collect what a browser would submit for a form: the successful controls and their values."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input":
            if a.get("type") in ("radio", "checkbox") and "checked" not in a:
                return
            self.pairs.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.pairs.append((self._select, a["value"]))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.pairs.append((self._textarea, self._text))
            self._textarea = None


def submitted(html: str) -> MultiDict[str, str]:
    """Return what submitting the rendered form unchanged would post."""
    browser = Browser()
    browser.feed(html)
    return MultiDict(browser.pairs)


def test_every_property_gets_its_widget() -> None:
    widgets = {f.name: f.widget for f in form_html.fields_of(EVERY_WIDGET)}
    assert widgets == EXPECTED_WIDGETS


def test_sections_become_fieldsets_in_order_and_unsectioned_fields_come_last() -> None:
    sections = form_html.layout(EVERY_WIDGET)
    assert [s.title for s in sections] == ["Texto", "Números y fechas", "Opciones", "Otros datos"]
    assert [f.name for f in sections[-1].fields] == ["extra"]
    html = form_html.render(EVERY_WIDGET)
    legends = re.findall(r'<fieldset class="form-section"><legend>([^<]+)</legend>', html)
    assert legends == ["Texto", "Números y fechas", "Opciones", "Otros datos"]


def test_a_form_without_sections_is_one_fieldset_in_the_order_given() -> None:
    form = FormDefinition("plain", "Sencillo", {"type": "object", "properties": {
        "b": {"type": "string", "title": "Be"}, "a": {"type": "string", "title": "A"}}}, {"order": ["a", "b"]})
    [section] = form_html.layout(form)
    assert (section.title, [f.name for f in section.fields]) == ("Sencillo", ["a", "b"])


def test_every_input_has_a_label_and_help_is_linked() -> None:
    html = form_html.render(EVERY_WIDGET)
    ids = re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for input_id in ids:
        assert f'<label for="{input_id}">' in html
    assert '<label for="f-name">Nombre <span class="required">(obligatorio)</span></label>' in html
    assert '<p class="help" id="f-name-help">Como figura en el DNI.</p>' in html
    assert re.search(r'<input type="text" id="f-name" name="name" required aria-describedby="f-name-help"', html)
    assert '<p class="help" id="f-danger-help">Avise a la policía.</p>' in html


def test_booleans_are_a_yes_no_pair_under_a_legend_and_text_is_escaped() -> None:
    html = form_html.render(EVERY_WIDGET, {"danger": False})
    assert "<legend>Peligro &lt;inmediato&gt; <span" in html
    assert re.search(r'<input type="radio" id="f-danger-0" name="danger" value="true" required[^>]*> '
                     r'<label for="f-danger-0">Sí</label>', html)
    assert re.search(r'<input type="radio" id="f-danger-1" name="danger" value="false" checked', html)
    unanswered = form_html.render(EVERY_WIDGET)
    assert not re.search(r'name="danger" value="(true|false)" checked', unanswered)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("story", r'<textarea id="f-story" name="story" maxlength="4000" rows="5">Érase &lt;una&gt; vez</textarea>'),
        ("children", r'<input type="number" id="f-children" name="children" value="3" step="1" min="0" max="20"'),
        ("weight", r'<input type="number" id="f-weight" name="weight" value="61.5" step="any"'),
        ("seen_on", r'<input type="date" id="f-seen_on" name="seen_on" value="2026-03-02">'),
        ("seen_at", r'<input type="datetime-local" id="f-seen_at" name="seen_at" value="2026-03-02T10:30">'),
        ("colour", r'<select id="f-colour" name="colour" required><option value="">Elija una opción</option>'
                   r'<option value="red">Rojo</option><option value="green" selected>Verde</option>'),
        ("size", r'<input type="radio" id="f-size-1" name="size" value="m" checked> <label for="f-size-1">m</label>'),
        ("agreed", r'<input type="checkbox" id="f-agreed" name="agreed" value="true" checked>'),
        ("measures", r'<input type="checkbox" id="f-measures-2" name="measures" value="blue" checked> '
                     r'<label for="f-measures-2">Azul</label>'),
    ],
)
def test_each_widget_shows_its_value(name: str, pattern: str) -> None:
    values = {"story": "Érase <una> vez", "children": 3, "weight": 61.5, "seen_on": "2026-03-02",
              "seen_at": "2026-03-02T10:30:00+01:00", "colour": "green", "size": "m", "agreed": True,
              "measures": ["red", "blue"]}
    assert re.search(pattern, form_html.render(EVERY_WIDGET, values)), name


def test_errors_sit_next_to_their_field_and_are_announced() -> None:
    html = form_html.render(EVERY_WIDGET, {}, {"name": ["Este dato es obligatorio."],
                                                  "danger": ["Responda a esta pregunta."]})
    assert ('<div class="field invalid" id="f-name-field"><label for="f-name">Nombre <span class="required">'
            '(obligatorio)</span></label><p class="help" id="f-name-help">Como figura en el DNI.</p>'
            '<p class="field-error" id="f-name-error">Este dato es obligatorio.</p>') in html
    assert 'aria-describedby="f-name-help f-name-error" aria-invalid="true"' in html
    assert '<p class="field-error" id="f-danger-error">Responda a esta pregunta.</p>' in html
    assert 'id="f-danger-0" name="danger" value="true" required aria-describedby="f-danger-help f-danger-error"' in html
    assert form_html.anchor(form_html.make_field(EVERY_WIDGET, "danger")) == "f-danger-0"
    assert form_html.anchor(form_html.make_field(EVERY_WIDGET, "name")) == "f-name"


def test_posted_data_becomes_typed_json_and_empty_answers_are_left_out() -> None:
    posted = MultiDict([
        ("name", "Ana"), ("story", "  "), ("children", "2"), ("weight", "61.5"), ("seen_on", "2026-03-02"),
        ("seen_at", "2026-03-02T10:30"), ("colour", "green"), ("size", ""), ("danger", "false"),
        ("measures", "red"), ("measures", "blue"), ("csrf_token", "x"), ("version", "3"), ("intruder", "1"),
    ])
    assert form_html.parse(EVERY_WIDGET, posted) == {
        "name": "Ana", "children": 2, "weight": 61.5, "seen_on": "2026-03-02",
        "seen_at": "2026-03-02T10:30:00+01:00", "colour": "green", "danger": False, "agreed": False,
        "measures": ["red", "blue"],
    }


def test_unreadable_answers_are_kept_so_validation_can_point_at_them() -> None:
    data = form_html.parse(EVERY_WIDGET, MultiDict([("children", "dos"), ("danger", "quizás")]))
    assert data["children"] == "dos"
    assert data["danger"] == "quizás"
    errors = validate_data(EVERY_WIDGET, data)
    assert {"children", "danger"} <= set(errors)


@pytest.mark.parametrize(
    ("local", "iso", "utc"),
    [("2026-01-15T08:00", "2026-01-15T08:00:00+01:00", "2026-01-15T07:00:00Z"),
     ("2026-07-15T08:00", "2026-07-15T08:00:00+02:00", "2026-07-15T06:00:00Z")],
)
def test_datetime_local_values_are_madrid_time_with_their_offset(local: str, iso: str, utc: str) -> None:
    assert form_html.local_to_iso(local) == iso
    assert form_html.iso_to_local(iso) == local
    assert form_html.iso_to_local(utc) == local
    assert form_html.local_to_iso("mañana") == "mañana"


def test_what_is_rendered_comes_back_unchanged_when_posted() -> None:
    values: dict[str, Any] = {
        "name": "Ana & Eva", "story": "Línea uno\nLínea dos", "remark": "corta", "children": 2, "weight": 61.5,
        "seen_on": "2026-03-02", "seen_at": "2026-03-02T10:30:00+01:00", "colour": "black", "size": "l",
        "shade": "white", "level": "alto", "danger": True, "agreed": True, "measures": ["green"], "extra": "bien",
    }
    assert validate_data(EVERY_WIDGET, values) == {}
    html = form_html.render(EVERY_WIDGET, values)
    assert form_html.parse(EVERY_WIDGET, submitted(html)) == values
    assert form_html.parse(EVERY_WIDGET, submitted(form_html.render(EVERY_WIDGET, {"danger": False}))) == {
        "danger": False, "agreed": False}


def test_every_real_form_renders_and_round_trips_its_empty_state() -> None:
    catalog, problems = load_catalog(ROOT / "forms")
    assert problems == []
    for form in catalog.values():
        html = form_html.render(form)
        for f in form_html.fields_of(form):
            assert f'<label for="{form_html.anchor(f)}">' in html, (form.name, f.name)
        parsed = form_html.parse(form, submitted(html))
        assert all(v is False for v in parsed.values()), form.name  # only unchecked single checkboxes


def test_messages_are_spanish_and_a_form_check_keeps_its_own() -> None:
    values = {"children": 30, "extra": "mal", "story": "x" * 4001}
    errors = {"name": ["required"], "danger": ["required"], "children": ["30 is greater than the maximum of 20"],
              "story": ["'xxx' is too long"], "seen_on": ["'ayer' is not a 'date'"],
              "extra": ["El extra no puede ser «mal»."],
              "colour": ["'pink' is not valid under any of the given schemas"],
              "intruder": ["unknown field"], "(form)": ["something odd"]}
    assert form_html.messages(EVERY_WIDGET, errors, values) == {
        "name": ["Este dato es obligatorio."],
        "danger": ["Responda a esta pregunta."],
        "children": ["Escriba un número entre 0 y 20."],
        "story": ["El texto es demasiado largo (como máximo 4000 caracteres)."],
        "seen_on": ["Escriba una fecha válida."],
        "extra": ["El extra no puede ser «mal»."],
        "colour": ["Elija una de las opciones."],
        form_html.FORM_ERRORS: ["Hay datos que no son válidos."],
    }
