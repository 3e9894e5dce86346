"""The API's contract is honest: what the document says validates is what the server accepts, and back."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.support.api import ApiWorld, agency_queue, fields_of
from tests.support.protocol import COMPLAINT, detection, risk_answers

REVIEW = "reassessment_review"
LEVELS = ["no_apreciado", "bajo", "medio", "alto", "extremo"]


def document(api: ApiWorld) -> dict[str, Any]:
    response = api.call(None, "GET", "/api/v1/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def resolved(doc: dict[str, Any], component: str) -> dict[str, Any]:
    """Return a component schema with its references resolvable (the document's components beside it)."""
    return {**doc["components"]["schemas"][component], "components": doc["components"]}


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    root = {**schema, "components": doc["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def review_task(api: ApiWorld, computed: str) -> dict[str, Any]:
    """Register a case and take it to the police's review of a level computed as `computed`."""
    api.register("health")
    report = agency_queue(api, "police")["police_report_to_court"]
    api.call("police", "POST", f"/api/v1/tasks/{report['id']}/complete",
             json={"data": COMPLAINT, "version": report["version"]})
    assessment = agency_queue(api, "police")["police_risk_assessment"]
    done = api.call("police", "POST", f"/api/v1/tasks/{assessment['id']}/complete",
                    json={"data": risk_answers(computed), "version": assessment["version"]})
    assert done.status_code == 200, done.get_json()
    return agency_queue(api, "police")[REVIEW]


def test_task_list_items_carry_the_case_id_the_agency_and_the_due_date(api: ApiWorld) -> None:
    case_id = api.register("health")
    item = agency_queue(api, "police")["police_report_to_court"]
    assert item["case_id"] == case_id
    assert item["agency"] == {"id": api.agencies["police"], "name": "state_police here", "kind": "state_police"}
    assert item["due_at"]
    listed = document(api)["components"]["schemas"]["TaskListItemOut"]["properties"]
    assert {"case_id", "agency", "due_at"} <= set(listed)


def test_a_422_lists_each_message_once_per_field(api: ApiWorld) -> None:
    body = {"territory_id": api.territories["here"], "detection": {}}
    fields = fields_of(api.call("health", "POST", "/api/v1/cases", json=body))
    assert fields["detection/observed"] == ["required"]
    assert all(len(messages) == len(set(messages)) == 1 for messages in fields.values()), fields
    assert len(fields) == 9


def test_the_document_holds_every_form_and_the_detection_body_is_its_form(api: ApiWorld) -> None:
    doc = document(api)
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    forms = {path.stem for path in (api.app.config["FORMS_DIR"]).glob("*.json")}
    assert {f"Form_{name}" for name in forms} <= set(schemas)
    detection_field = schemas["CaseCreateRequest"]["properties"]["detection"]
    assert detection_field == {"$ref": "#/components/schemas/Form_detection"}
    assert schemas["IncidentRequest"]["properties"]["data"] == {"$ref": "#/components/schemas/Form_incident"}
    task_forms = {ref["$ref"].rsplit("/", 1)[-1] for ref in schemas["CompleteRequest"]["properties"]["data"]["anyOf"]}
    assert {"Form_police_report", "Form_risk_review"} <= task_forms
    # What the document says is a valid detection is accepted, and an invalid one is refused.
    good = {"territory_id": api.territories["here"], "detection": detection()}
    validator(doc, schemas["CaseCreateRequest"]).validate(good)
    assert api.call("health", "POST", "/api/v1/cases", json=good).status_code == 201
    bad = {**good, "detection": {**detection(), "observed": ""}}
    assert not validator(doc, schemas["CaseCreateRequest"]).is_valid(bad)
    assert "detection/observed" in fields_of(api.call("health", "POST", "/api/v1/cases", json=bad))


@pytest.mark.parametrize("computed", ["medio", "alto"])
def test_the_review_schema_of_a_task_offers_exactly_the_levels_the_server_accepts(
    api: ApiWorld, computed: str,
) -> None:
    review = review_task(api, computed)
    schema = api.call("police", "GET", f"/api/v1/tasks/{review['id']}").get_json()["form"]["schema"]
    offered = [option["const"] for option in schema["properties"]["final_level"]["oneOf"]]
    check = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    url = f"/api/v1/tasks/{review['id']}/complete"
    accepted = []
    # Every level but the computed one first (a refusal changes nothing), the computed one last (it completes).
    for level in sorted(LEVELS, key=lambda code: code == computed):
        answers = {"final_level": level, "especial_relevancia": False, "minors_at_risk": False}
        response = api.call("police", "POST", url, json={"data": answers, "version": review["version"]})
        if response.status_code == 200:
            assert check.is_valid(answers)
            accepted.append(level)
            continue
        refused = fields_of(response)
        assert not check.is_valid(answers), refused
        if "data/final_level" not in refused:  # the level is accepted, with the reason a raise needs
            assert refused == {"data/raise_reason": ["Indique el motivo para elevar el nivel."]}
            assert check.is_valid({**answers, "raise_reason": "Motivo de prueba"})
            assert not check.is_valid({**answers, "raise_reason": "  "})
            accepted.append(level)
    assert sorted(accepted, key=LEVELS.index) == offered
    assert offered[0] == computed


def test_text_holding_nul_is_refused_per_field_and_the_document_says_so(api: ApiWorld) -> None:
    body = {"territory_id": api.territories["here"], "detection": {**detection(), "observed": "a\x00b"}}
    assert fields_of(api.call("health", "POST", "/api/v1/cases", json=body)) == {
        "detection/observed": ["NUL character not allowed"]}
    assert "username" in fields_of(api.call(None, "POST", "/api/v1/auth/token",
                                            json={"username": "\x00", "password": "x"}))
    assert "step" in fields_of(api.call("police", "GET", "/api/v1/tasks?step=%00"))
    doc = document(api)
    observed = doc["components"]["schemas"]["Form_detection"]["properties"]["observed"]
    assert not validator(doc, observed).is_valid("a\x00b")


@pytest.mark.parametrize("path", ["/api/v1/cases/{}", "/api/v1/tasks/{}", "/api/v1/tasks/{}/complete",
                                  "/api/v1/tasks/{}/claim", "/api/v1/cases/{}/incidents"])
def test_ids_beyond_the_documented_range_are_404(api: ApiWorld, path: str) -> None:
    method = "POST" if path.endswith(("complete", "claim", "incidents")) else "GET"
    body = {"data": {}, "version": 1} if method == "POST" else None
    for huge in (2**31, 2**63, 10**30):
        assert api.call("police", method, path.format(huge), json=body).status_code == 404
    documented = document(api)["paths"][path.format("{case_id}" if "cases" in path else "{task_id}")]
    [parameter] = documented["parameters"]
    assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def test_nan_and_infinity_are_refused_per_field(api: ApiWorld) -> None:
    case_id = api.register("health")
    task_id = api.task_id(case_id, "police_report_to_court")
    body = '{"version": 1, "data": {"report_number": NaN, "x": [Infinity]}}'
    response = api.call("police", "POST", f"/api/v1/tasks/{task_id}/complete", data=body,
                        headers={"Content-Type": "application/json"})
    assert fields_of(response) == {"data/report_number": ["not a finite number"], "data/x/0": ["not a finite number"]}
