"""The forms catalog of FORMS_DIR, loaded once per app and kept on `app.extensions`."""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from forms import FormDefinition, load_catalog

EXTENSION_KEY = "coordina.forms"


def catalog() -> dict[str, FormDefinition]:
    """Return the app's valid forms, loading FORMS_DIR on first use (forms never change while it runs)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    forms = app.extensions.get(EXTENSION_KEY)
    if forms is None:
        forms, _problems = load_catalog(Path(app.config["FORMS_DIR"]))  # deploy reports the problems
        app.extensions[EXTENSION_KEY] = forms
    return forms  # type: ignore[no-any-return]
