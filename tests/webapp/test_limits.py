"""Limits on client input: request size, ids, JSON nesting; and no 500 on any route for hostile input."""

from __future__ import annotations

import io
import json
import time
from typing import Any

from flask import Flask
from werkzeug.datastructures import MultiDict
from werkzeug.routing import Rule
from werkzeug.test import TestResponse, create_environ, run_wsgi_app

from tests.support.protocol import COMPLAINT
from tests.support.web import PASSWORD, Browser, Site
from webapp.limits import MAX_ID, MAX_JSON_DEPTH

MB = 1024 * 1024
HOSTILE_IDS = (2**31, 2**63, 2**64)
# Query and form values no id or number may be: too big for the database, for int(), or not ASCII digits.
HOSTILE_VALUES = (str(2**63), "9" * 5000, "²", "-1", "1e9", " 1")
# Every query or form argument the views read as a number or an id.
NUMBER_ARGUMENTS = ("territory", "territory_id", "page", "per_page", "period", "de", "a", "caso", "case_id",
                    "agency", "assignee", "to_mesa", "interval", "version", "task", "tab", "identidad")
HOSTILE_JSON = {"version": 2**63, "territory_id": 2**64, "data": {"x": 2**64}, "detection": {}}
SIGNED_IN = ("policia.jefa", "admin", "disenadora")  # a supervisor, an administrator, a designer
# Endpoints the sweep leaves alone: signing out would end the sweep's session.
SKIPPED = {"auth.logout"}


class CountingStream(io.RawIOBase):
    """A request body of `size` bytes that counts how many of them were read."""

    def __init__(self, size: int) -> None:
        self.size, self.consumed = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.size - self.consumed)
        buffer[:count] = b"{" * count
        self.consumed += count
        return count


def file_upload(size: int) -> dict[str, Any]:
    """Return the body of a form posting a file of `size` bytes (built here: the test client spools big ones)."""
    boundary = "coordina-limite"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bpmn"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n")
    body = head.encode() + b"x" * size + f"\r\n--{boundary}--\r\n".encode()
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def declared(body: CountingStream) -> dict[str, Any]:
    """Return the WSGI environ of a request carrying `body` with its length declared (as a browser sends it)."""
    return {"wsgi.input": body, "CONTENT_LENGTH": str(body.size)}


def nested(depth: int) -> str:
    """Return a JSON document of `depth` nested arrays."""
    return "[" * depth + "]" * depth


def api_token(site: Site, username: str) -> str:
    """Return a bearer token of a user, bought with the password."""
    response = site.app.test_client().post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["token"])


# --- Size ------------------------------------------------------------------------------------------
def test_a_50_mb_body_is_refused_from_its_length_without_being_read(site: Site) -> None:
    browser = site.browser("policia")
    targets = (("/api/v1/auth/token", "application/json"), ("/login", "application/x-www-form-urlencoded"),
               ("/designer/subir", "multipart/form-data; boundary=x"))
    for path, content_type in targets:
        body = CountingStream(50 * MB)
        started = time.monotonic()
        response = browser.client.post(path, content_type=content_type, environ_overrides=declared(body))
        assert response.status_code == 413, path
        assert body.consumed == 0, path
        assert time.monotonic() - started < 2
        if path.startswith("/api/"):
            assert response.get_json()["error"] == {"status": 413, "code": "request_entity_too_large",
                                                    "message": "Petición demasiado grande"}
        else:
            assert "superan el tamaño máximo admitido" in response.get_data(as_text=True)


def test_a_body_without_a_length_is_read_only_up_to_the_limit(site: Site) -> None:
    body = CountingStream(50 * MB)
    environ = create_environ("/api/v1/auth/token", method="POST", content_type="application/json")
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": body, "wsgi.input_terminated": True})  # chunked: the server ends the stream
    _, status, _ = run_wsgi_app(site.app, environ, buffered=True)
    assert status.startswith(("400", "413"))  # cut at the limit: what was read is not JSON
    assert body.consumed <= 2 * MB + 64 * 1024


def test_the_limits_are_configurable_and_uploads_have_their_own(make_app: Any, tmp_path: Any) -> None:
    app = make_app(MAX_CONTENT_LENGTH="1000", MAX_UPLOAD_BYTES=3 * MB)
    assert (app.config["MAX_CONTENT_LENGTH"], app.config["MAX_UPLOAD_BYTES"]) == (1000, 3 * MB)
    client = app.test_client()
    assert client.post("/login", data={"username": "x" * 2000}).status_code == 413
    # The designer's upload takes up to MAX_UPLOAD_BYTES: past the size check, then refused for its CSRF token.
    assert client.post("/designer/subir", **file_upload(2 * MB)).status_code == 400
    assert client.post("/designer/subir", **file_upload(4 * MB)).status_code == 413


def test_the_default_limit_is_2_mb(app: Flask) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == 2 * MB
    assert app.config["MAX_UPLOAD_BYTES"] > 5 * MB  # the designer takes files of up to 5 MB


# --- Ids -------------------------------------------------------------------------------------------
def id_rules(app: Flask) -> list[Rule]:
    """Every rule of the app with an id (an argument named *_id) in its URL."""
    return [rule for rule in app.url_map.iter_rules() if any(name.endswith("_id") for name in rule.arguments)]


def test_every_id_in_a_url_uses_the_id_converter(app: Flask) -> None:
    rules = id_rules(app)
    assert len(rules) >= 30
    others = [rule.rule for rule in rules for name, converter in rule._converters.items()
              if name.endswith("_id") and type(converter).__name__ != "IdConverter"]
    assert others == []


def fill(rule: Rule, value: int) -> str:
    """Return the rule's path with every id `value` and every other argument a plain word."""
    path = rule.rule
    for name in rule.arguments:
        path = _replace_argument(path, name, str(value) if name.endswith("_id") else "x")
    return path


def _replace_argument(path: str, name: str, text: str) -> str:
    start = path.index("<")
    while start != -1:
        end = path.index(">", start)
        if path[start + 1:end].split(":")[-1] == name:
            return path[:start] + text + path[end + 1:]
        start = path.find("<", end)
    raise AssertionError(name)


def call(site: Site, browser: Browser, token: str, method: str, path: str, **kwargs: Any) -> TestResponse:
    """Call `path` as the browser's user: with her bearer token under /api/, with the CSRF token otherwise."""
    if path.startswith("/api/"):
        return browser.client.open(path, method=method, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    if method == "POST" and "json" not in kwargs and not isinstance(kwargs.get("data", {}), str):
        data = MultiDict(kwargs.pop("data", None) or {})
        data.add("csrf_token", browser.token)
        return browser.client.post(path, data=data, **kwargs)
    return browser.client.open(path, method=method, **kwargs)


def methods_of(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def test_ids_beyond_the_database_range_are_404_on_every_route(site: Site) -> None:
    case_id = site.open_case()
    failures = []
    for username in SIGNED_IN:
        browser, token = site.browser(username), api_token(site, username)
        for rule in id_rules(site.app):
            for method in methods_of(rule):
                for value in HOSTILE_IDS:
                    response = call(site, browser, token, method, fill(rule, value))
                    if response.status_code != 404:
                        failures.append((username, method, rule.rule, value, response.status_code))
        # A real id still answers as before (the case's page: 200 to its territory's supervisor).
        if username == "policia.jefa":
            assert browser.get(f"/casos/{case_id}").status_code == 200
    assert failures == []


def test_an_id_at_the_top_of_the_range_is_an_ordinary_unknown_id(site: Site) -> None:
    browser = site.browser("policia.jefa")
    assert browser.get(f"/casos/{MAX_ID}").status_code == 404
    token = api_token(site, "policia.jefa")
    response = site.app.test_client().get(f"/api/v1/tasks/{MAX_ID}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404


def test_hostile_numbers_in_api_bodies_are_refused_never_a_500(site: Site) -> None:
    case_id = site.open_case()
    task = site.task(case_id, "police_report_to_court")
    client, token = site.app.test_client(), api_token(site, "policia")
    headers = {"Authorization": f"Bearer {token}"}
    for path, body in ((f"/api/v1/tasks/{task.id}/claim", {"version": 2**63}),
                       (f"/api/v1/tasks/{task.id}/complete", {"version": 2**64, "data": COMPLAINT}),
                       ("/api/v1/cases", {"territory_id": 2**63, "detection": {}})):
        response = client.post(path, json=body, headers=headers)
        assert 400 <= response.status_code < 500, (path, response.get_json())
    assert site.task(case_id, "police_report_to_court").version == task.version


def test_hostile_numbers_in_query_strings_are_ignored_or_refused_never_a_500(site: Site) -> None:
    browser, token = site.browser("policia.jefa"), api_token(site, "policia.jefa")
    failures = []
    for value in HOSTILE_VALUES:
        for path in ("/", "/supervision", "/supervision/export/tareas.csv", "/recursos", "/recursos/nuevo", "/avisos",
                     "/mesa/1/traslados", "/designer/process/intake/cambios", "/api/v1/tasks"):
            response = call(site, browser, token, "GET", path, query_string={"territory": value, "page": value,
                                                                           "caso": value, "period": value})
            if response.status_code >= 500:
                failures.append((path, value[:20], response.status_code))
    assert failures == []
    api = call(site, browser, token, "GET", "/api/v1/tasks", query_string={"territory": str(2**63)})
    assert api.status_code == 422
    assert "territory" in api.get_json()["error"]["fields"]


# --- JSON nesting ----------------------------------------------------------------------------------
def test_deeply_nested_json_is_refused_with_422_naming_the_limit(site: Site) -> None:
    case_id = site.open_case()
    task = site.task(case_id, "police_report_to_court")
    token = api_token(site, "policia")
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        body = f'{{"version": {task.version}, "data": {nested(depth)}}}'
        response = site.app.test_client().post(f"/api/v1/tasks/{task.id}/complete", data=body,
                                               content_type="application/json",
                                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 422, response.get_data(as_text=True)[:300]
        error = response.get_json()["error"]
        assert error["code"] == "too_deep"
        assert error["fields"] == {"body": [f"Los datos JSON tienen más de {MAX_JSON_DEPTH} niveles de anidamiento."]}
    assert site.task(case_id, "police_report_to_court").version == task.version  # the step is untouched
    # Nesting within the limit is read as before: here the form refuses the answers, naming the field.
    body = {"version": task.version, "data": {**COMPLAINT, "court": json.loads(nested(MAX_JSON_DEPTH - 2))}}
    response = site.app.test_client().post(f"/api/v1/tasks/{task.id}/complete", json=body,
                                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_data"


def test_a_designer_upload_of_deeply_nested_json_is_refused_naming_the_limit(site: Site) -> None:
    browser = site.browser("disenadora")
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        content = f'{{"title": "Formulario", "properties": {nested(depth)}}}'
        upload = {"file": (io.BytesIO(content.encode()), "profundo.json")}
        response = browser.post("/designer/subir", data=upload, content_type="multipart/form-data")
        assert response.status_code == 422
        assert f"nested deeper than {MAX_JSON_DEPTH} levels" in response.get_data(as_text=True)


def test_a_designer_trial_scenario_nested_too_deep_is_refused(site: Site) -> None:
    browser = site.browser("disenadora")
    response = browser.post("/designer/probar", data={"process": "intake", "territory": str(site.territories["here"]),
                                                      "scenario": nested(100_000)})
    assert response.status_code < 500
    assert f"más de {MAX_JSON_DEPTH} niveles" in response.get_data(as_text=True)


# --- No 500 for client input, anywhere -------------------------------------------------------------
def test_no_route_answers_500_to_hostile_ids_queries_or_bodies(site: Site) -> None:
    failures = []
    for username in SIGNED_IN:
        browser, token = site.browser(username), api_token(site, username)
        for rule in sorted(site.app.url_map.iter_rules(), key=lambda r: r.rule):
            if rule.endpoint in SKIPPED:
                continue
            for method in methods_of(rule):
                path = fill(rule, 2**63)
                real = fill(rule, 1)
                attempts: list[tuple[str, dict[str, Any]]] = [(path, {})]
                for value in HOSTILE_VALUES[:3]:
                    fields = {name: value for name in NUMBER_ARGUMENTS}
                    if method == "GET":
                        attempts.append((real, {"query_string": fields}))
                    else:
                        attempts.append((real, {"data": fields}))
                if method == "POST":
                    attempts.append((real, {"data": nested(100_000), "content_type": "application/json"}))
                    attempts.append((real, {"json": HOSTILE_JSON}))
                for target, kwargs in attempts:
                    response = call(site, browser, token, method, target, **kwargs)
                    if response.status_code >= 500:
                        failures.append((username, method, target[:60], str(kwargs)[:60], response.status_code))
    assert failures == []


def test_a_designer_draft_nested_too_deep_is_refused_naming_the_limit(site: Site) -> None:
    browser = site.browser("disenadora")
    headers = {"X-CSRFToken": browser.token}
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        content = f'{{"title": "Formulario", "properties": {nested(depth)}}}'
        message = f"Los datos JSON tienen más de {MAX_JSON_DEPTH} niveles de anidamiento."
        preview = browser.client.post("/designer/formularios/vista-previa?file=profundo.json",
                                      json={"content": content}, headers=headers)
        assert (preview.status_code, preview.get_json()["error"]["message"]) == (422, message)
        saved = browser.client.post("/designer/borradores/profundo.json", json={"content": content, "version": None},
                                    headers=headers)
        assert (saved.status_code, saved.get_json()["error"]["message"]) == (422, message)
        validated = browser.client.post("/designer/validar", headers=headers)
        assert validated.status_code < 500, validated.get_data(as_text=True)[:300]
        browser.client.post("/designer/borradores/profundo.json/descartar", headers=headers)
