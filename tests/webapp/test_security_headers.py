"""Security headers on every response, templates without inline script, a server that hides its version."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from flask import Flask
from werkzeug.test import TestResponse

from tests.support.web import AppFactory, Site
from webapp.headers import CONTENT_SECURITY_POLICY

ROOT = Path(__file__).resolve().parents[2]
SIGNED_IN = (None, "policia.jefa", "admin", "disenadora")  # anonymous, a supervisor, an administrator, a designer
DIRECTIVES = {
    "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "object-src": "'none'",
    "base-uri": "'none'", "frame-ancestors": "'none'", "form-action": "'self'",
}


def page_paths(app: Flask) -> list[str]:
    """Every GET route of the app, its ids 1 and its other arguments a plain word."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        paths.append(re.sub(r"<(?:([a-z]+)(?:\([^)]*\))?:)?[a-z_]+>",
                            lambda m: "1" if m.group(1) == "id" else "x", rule.rule))
    return sorted(paths)


def policy(response: TestResponse) -> dict[str, str]:
    """Return the response's Content-Security-Policy by directive."""
    directives = (part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    return {name: value for name, value in directives}


def assert_secured(response: TestResponse, where: str) -> None:
    headers = response.headers
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") == "same-origin", where
    assert "camera=()" in headers.get("Permissions-Policy", ""), where
    directives = policy(response)
    for name, value in DIRECTIVES.items():
        assert directives.get(name) == value, (where, name, directives.get(name))


def test_every_page_and_answer_carries_the_security_headers(site: Site) -> None:
    paths = page_paths(site.app)
    assert len(paths) > 40
    seen = set()
    for username in SIGNED_IN:
        client = site.browser(username).client
        for path in paths:
            response = client.get(path)
            assert_secured(response, f"{username} GET {path} ({response.status_code})")
            seen.add(response.status_code)
        # Refusals and errors too: a POST without its CSRF token, an unknown address, an API call without token.
        for method, path in (("POST", "/casos"), ("GET", "/no-existe"), ("GET", "/api/v1/me"), ("DELETE", "/estado")):
            response = client.open(path, method=method)
            assert_secured(response, f"{username} {method} {path} ({response.status_code})")
            seen.add(response.status_code)
    assert {200, 302, 400, 401, 404, 405} <= seen


def test_hsts_is_sent_only_when_session_cookies_are_https_only(make_app: AppFactory) -> None:
    secure = make_app(SESSION_COOKIE_SECURE=True).test_client().get("/login")
    assert secure.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    plain = make_app(SESSION_COOKIE_SECURE=False).test_client().get("/login")
    assert "Strict-Transport-Security" not in plain.headers


def test_only_the_decision_editor_may_apply_inline_styles(site: Site) -> None:
    designer = site.browser("disenadora")
    decision = designer.get("/designer/editar/police_measures.dmn")
    assert decision.status_code == 200
    assert policy(decision)["style-src"] == "'self' 'unsafe-inline'"
    assert policy(decision)["script-src"] == "'self'"
    process = designer.get("/designer/editar/intake.bpmn")
    assert process.status_code == 200
    assert policy(process)["style-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_no_template_has_inline_script_event_handlers_or_style_attributes() -> None:
    inline_script = re.compile(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", re.IGNORECASE)
    handler = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
    style = re.compile(r"\sstyle\s*=|<style", re.IGNORECASE)
    found = []
    for template in sorted((ROOT / "webapp").rglob("*.html")):
        text = template.read_text(encoding="utf-8")
        for pattern in (inline_script, handler, style):
            found += [f"{template.relative_to(ROOT)}: {match.group(0)}" for match in pattern.finditer(text)]
    assert found == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_gunicorn_names_itself_without_a_version(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "COORDINA_DATABASE_URL": f"sqlite:///{tmp_path / 'coordina.sqlite'}",
           "COORDINA_SECRET_KEY": "test-only"}
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}", "webapp.wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as answer:
                    headers = answer.headers
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert headers.get_all("Server") == ["gunicorn"]  # no version, and not Werkzeug's
    assert headers["X-Frame-Options"] == "DENY"
