"""The English catalogue: complete, faithful to its placeholders, current with the code, and used by the pages."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from flask import Flask

from tests.support.web import ROOT, AppFactory, Site, csrf_token_of

TRANSLATIONS = ROOT / "webapp" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
ENGLISH = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
# The Makefile's `translations` target extracts with exactly these arguments.
EXTRACT_ARGS = ["extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext"]
# %(name)s, %s, %d, %% and str.format's {name} / {0}.
PLACEHOLDER = re.compile(r"%(?:\([A-Za-z_]\w*\))?[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]"
                         r"|\{[A-Za-z_0-9]\w*(?:![rsa])?(?::[^{}]*)?\}")


def load(path: Path, locale: str | None = None) -> Catalog:
    """Read a .po or .pot file."""
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def messages(catalog: Catalog) -> dict[str | tuple[str, ...], Message]:
    """The catalogue's messages by id (the header entry left out)."""
    return {message.id: message for message in catalog if message.id}


def forms(message: Message) -> list[str]:
    """The msgid (and msgid_plural) of a message."""
    return list(message.id) if isinstance(message.id, tuple) else [message.id]


def translations(message: Message) -> list[str]:
    """The translated string, or each plural form."""
    if isinstance(message.string, tuple | list):
        return list(message.string)
    return [message.string or ""]


def placeholders(text: str) -> Counter[str]:
    """The format placeholders a string carries, with how often each occurs."""
    return Counter(PLACEHOLDER.findall(text))


def label(message: Message) -> str:
    """A message as a failure report names it: its msgid and where the code uses it."""
    where = ", ".join(f"{path}:{line}" for path, line in message.locations[:3])
    return f"{forms(message)[0]!r} ({where})" if where else repr(forms(message)[0])


@pytest.fixture(scope="module")
def english() -> Catalog:
    """The English catalogue."""
    return load(ENGLISH, locale="en")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The messages the code marks for translation today, extracted as `make translations` does."""
    output = tmp_path_factory.mktemp("extract") / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    result = subprocess.run([str(pybabel), *EXTRACT_ARGS, "-o", str(output), "."],  # noqa: S603 - fixed arguments
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return load(output)


def test_every_message_of_the_template_has_an_english_translation(english: Catalog) -> None:
    template = messages(load(TEMPLATE))
    translated = messages(english)
    missing = [label(m) for key, m in template.items() if key not in translated]
    assert not missing, f"not in the English catalogue (run `make translations`): {missing}"
    fuzzy = [label(translated[key]) for key in template if translated[key].fuzzy]
    assert not fuzzy, f"fuzzy (check and clear the flag): {fuzzy}"
    empty = [label(translated[key]) for key in template if not all(translations(translated[key]))]
    assert not empty, f"untranslated: {empty}"
    incomplete = [label(m) for key in template if (m := translated[key]).pluralizable
                  and len(translations(m)) != english.num_plurals]
    assert not incomplete, f"plural forms missing: {incomplete}"


def test_translations_keep_the_placeholders_of_their_msgid(english: Catalog) -> None:
    wrong = []
    for message in messages(english).values():
        sources = forms(message)
        for index, text in enumerate(translations(message)):
            # English form 0 is the singular (msgid), form 1 the plural (msgid_plural).
            source = sources[min(index, len(sources) - 1)]
            if text and placeholders(text) != placeholders(source):
                wrong.append(f"{label(message)} -> {text!r}")
    assert not wrong, f"placeholders differ from the msgid: {wrong}"


def test_the_catalogue_passes_babels_format_checks(english: Catalog) -> None:
    problems = [f"{label(message)}: {'; '.join(map(str, errors))}" for message, errors in english.check()]
    assert not problems, problems


def test_the_english_catalogue_is_up_to_date_with_the_code(extracted: Catalog, english: Catalog) -> None:
    translated = messages(english)
    missing = [label(m) for key, m in messages(extracted).items()
               if key not in translated or not all(translations(translated[key])) or translated[key].fuzzy]
    assert not missing, (f"strings marked for translation but not translated into English: {missing}; "
                         "run `make translations` and translate them in " + str(ENGLISH.relative_to(ROOT)))


def test_the_committed_template_matches_the_code(extracted: Catalog) -> None:
    assert set(messages(extracted)) == set(messages(load(TEMPLATE))), "run `make translations`"


def test_the_login_page_is_english_once_english_is_chosen(make_app: AppFactory) -> None:
    app: Flask = make_app(SESSION_COOKIE_SECURE=False)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert "Entrar en Coordina" in page
    token = csrf_token_of(page)
    response = client.post("/language", data={"language": "en", "next": "/login", "csrf_token": token})
    assert response.status_code == 302
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Sign in to Coordina" in page
    assert "Coordination Table (Mesa)" in page
    assert "Entrar en Coordina" not in page


def test_the_worklist_is_english_for_a_signed_in_user_who_chooses_english(site: Site) -> None:
    browser = site.browser("policia")
    assert "Mis tareas" in browser.get("/").get_data(as_text=True)
    response = browser.post("/language", {"language": "en", "next": "/"})
    assert response.status_code == 302
    page = browser.get("/", query_string={"tab": "agency"}).get_data(as_text=True)
    for english_text in ("My tasks", "My agency", "Upcoming", "Register a detection", "Sign out", "Filters"):
        assert english_text in page, english_text
    assert "Mis tareas" not in page
