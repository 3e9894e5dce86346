"""Keyboard users: a skip link to the content comes first, and a focused element is always outlined."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

CSS = Path(__file__).resolve().parents[2] / "webapp" / "static" / "coordina.css"


def test_the_first_focusable_element_skips_to_the_content(client: FlaskClient) -> None:
    page = client.get("/login", follow_redirects=True).get_data(as_text=True)
    body = page.split("<body>", 1)[1]
    first = re.search(r"<(a|button|input|select|textarea)\b[^>]*>", body)
    assert first is not None
    assert 'href="#contenido"' in first.group(0)
    assert "Saltar al contenido" in body
    assert re.search(r'<main id="contenido"', body)


def test_the_focus_ring_is_visible_and_at_least_two_pixels() -> None:
    rule = re.search(r":focus-visible\s*\{([^}]*)\}", CSS.read_text(encoding="utf-8"))
    assert rule is not None
    width = re.search(r"outline:\s*(\d+)px\s+solid\s+#[0-9a-f]{6}", rule.group(1))
    assert width is not None
    assert int(width.group(1)) >= 2
