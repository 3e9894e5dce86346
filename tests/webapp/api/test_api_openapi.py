"""The OpenAPI document: built from the real routes and schemas, every /api/v1 route in it."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from tests.support.web import AppFactory
from webapp.api.openapi import build_spec


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_every_api_route_is_documented_with_its_methods(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    routes = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")]
    assert len(routes) >= 11
    for rule in routes:
        path = document["paths"].get(openapi_path(rule.rule))
        assert path is not None, f"{rule.rule} is not documented"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operation = path.get(method.lower())
            assert operation is not None, f"{method} {rule.rule} is not documented"
            assert operation["summary"]
            assert operation["responses"]
        for argument in rule.arguments:
            schema = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}  # ids: beyond them a 404
            assert {"in": "path", "name": argument, "required": True, "schema": schema} in path["parameters"]


def test_the_document_declares_bearer_security_schemas_and_the_error_envelope(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    components = document["components"]
    assert components["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    envelope = components["schemas"]["ErrorEnvelope"]
    assert envelope["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(components["schemas"]["ErrorBody"]["properties"]) == {"status", "code", "message", "fields"}

    complete = document["paths"]["/api/v1/tasks/{task_id}/complete"]["post"]
    assert complete["security"] == [{"bearerAuth": []}]
    assert complete["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CompleteRequest"}
    assert complete["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CompletedOut"}
    assert set(complete["responses"]) == {"200", "400", "401", "403", "404", "409", "422"}
    assert complete["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"}
    assert set(components["schemas"]["CompleteRequest"]["required"]) == {"data", "version"}

    token = document["paths"]["/api/v1/auth/token"]["post"]
    assert token["security"] == []
    assert {"401", "429"} <= set(token["responses"])
    tasks = document["paths"]["/api/v1/tasks"]["get"]
    assert {p["name"] for p in tasks["parameters"]} == {"scope", "page", "per_page", "step", "risk", "due",
                                                          "territory"}


def test_an_undocumented_api_route_breaks_the_document(make_app: AppFactory) -> None:
    app = make_app()
    app.add_url_rule("/api/v1/undocumented", endpoint="undocumented", view_func=lambda: "")
    with pytest.raises(LookupError, match="/api/v1/undocumented"):
        build_spec(app)
