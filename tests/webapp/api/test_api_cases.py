"""Cases through the API: register a detection, read a case on need-to-know, report an incident."""

from __future__ import annotations

from typing import Any

from tests.support.api import ApiWorld, fields_of
from tests.support.protocol import detection


def new_case(api: ApiWorld, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"territory_id": api.territories["here"], "detection": detection()}
    body.update(overrides)
    return body


def test_a_professional_registers_a_detection_and_the_police_get_the_first_step(api: ApiWorld) -> None:
    response = api.call("health", "POST", "/api/v1/cases", json=new_case(api, victim={"name": "Persona ficticia V"}))
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert set(created) == {"id", "reference"}
    assert created["reference"].startswith("VG-")
    assert response.headers["Location"] == f"/api/v1/cases/{created['id']}"
    assert api.open_tasks(created["id"])["police_report_to_court"].agency_id == api.agencies["police"]
    [event] = api.audit("case.create")
    assert (event.user_id, event.case_id, event.outcome) == (api.users["health"], created["id"], "ok")


def test_a_detection_missing_an_answer_is_422_naming_the_field_and_leaves_no_case(api: ApiWorld) -> None:
    data = detection()
    del data["observed"]
    response = api.call("health", "POST", "/api/v1/cases", json=new_case(api, detection=data))
    assert fields_of(response) == {"detection/observed": ["required"]}
    assert api.call("health", "GET", "/api/v1/cases/1").status_code == 404  # rolled back: nothing was opened


def test_unknown_fields_and_wrong_types_are_422_per_field(api: ApiWorld) -> None:
    body = new_case(api, territory_id=str(api.territories["here"]), urgent=True,
                    victim={"name": "Persona ficticia V", "dni": "00000000T"})
    body["detection"] = {**detection(), "colour": "red"}
    fields = fields_of(api.call("health", "POST", "/api/v1/cases", json=body))
    assert fields == {"territory_id": ["Not a valid integer."], "urgent": ["Unknown field."],
                      "victim/dni": ["Unknown field."]}
    fields = fields_of(api.call("health", "POST", "/api/v1/cases", json=new_case(api, detection=body["detection"])))
    assert fields["detection/colour"] == ["unknown field"]
    assert fields_of(api.call("health", "POST", "/api/v1/cases", json=[1, 2])) == {"_schema": ["Invalid input type."]}


def test_registering_in_a_territory_the_agency_does_not_serve_is_403_and_audited(api: ApiWorld) -> None:
    response = api.call("health", "POST", "/api/v1/cases", json=new_case(api, territory_id=api.territories["there"]))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    [denied] = api.audit("case.create")
    assert (denied.outcome, denied.object_type, denied.object_id) == ("denied", "territory", api.territories["there"])
    assert api.call("nobody", "POST", "/api/v1/cases", json=new_case(api)).status_code == 403


def test_the_case_shows_status_steps_and_history_and_is_audited(api: ApiWorld) -> None:
    case_id = api.register("health")
    response = api.call("police", "GET", f"/api/v1/cases/{case_id}")
    assert response.status_code == 200
    case = response.get_json()
    assert (case["id"], case["status"], case["risk_level"]) == (case_id, "active", None)
    assert case["territory"] == {"id": api.territories["here"], "name": "Mancomunidad Vegas Bajas"}
    steps = {task["element_id"]: task for task in case["open_tasks"]}
    # Every line of work starts at the detection: the complaint, the assessment and the safety plan for the police,
    # the care plan for social services, the equality office's follow-up.
    assert {"police_report_to_court", "police_risk_assessment", "personal_safety_plan",
            "social_assessment_care_plan", "equality_office_followup"} <= set(steps)
    step = steps["police_report_to_court"]
    assert step["agency"]["id"] == api.agencies["police"]
    assert step["overdue"] is False
    assert step["due_at"].endswith("+00:00")
    assert {"case_opened", "instance_started"} <= {entry["action"] for entry in case["history"]}
    [read] = api.audit("case.read", outcome="ok")
    assert (read.user_id, read.case_id) == (api.users["police"], case_id)


def test_only_agencies_that_need_to_know_see_who_she_is(api: ApiWorld) -> None:
    case_id = api.register("health")
    registrant = api.call("health", "GET", f"/api/v1/cases/{case_id}").get_json()
    assert registrant["victim"] == {"name": "Persona ficticia V", "phone": "600000000"}
    assert registrant["aggressor"] == {"name": "Persona ficticia A"}
    # A supervisor of an agency with no step in the case sees it (territory oversight), not her identity.
    api.add_user("school_boss", "school", ["professional", "supervisor"])
    overseer = api.call("school_boss", "GET", f"/api/v1/cases/{case_id}").get_json()
    assert overseer["id"] == case_id
    assert "victim" not in overseer
    assert "aggressor" not in overseer


def test_a_case_of_other_agencies_is_404_like_a_missing_one_and_the_denial_is_audited(api: ApiWorld) -> None:
    case_id = api.register("health")
    hidden = api.call("school", "GET", f"/api/v1/cases/{case_id}")
    missing = api.call("school", "GET", "/api/v1/cases/999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json() == missing.get_json()
    denied = api.audit("case.read", outcome="denied")
    assert [(e.user_id, e.object_id, e.case_id) for e in denied] == [
        (api.users["school"], case_id, case_id), (api.users["school"], 999999, None)]
    assert api.call("police_there", "GET", f"/api/v1/cases/{case_id}").status_code == 404


def test_an_incident_starts_the_incident_process_on_the_case(api: ApiWorld) -> None:
    case_id = api.register("health")
    incident = {"reported_by_kind": "health_centre", "occurred_on": "2026-03-05", "description": "Nuevas amenazas.",
                "complaint_filed": False, "immediate_danger": False}
    response = api.call("health", "POST", f"/api/v1/cases/{case_id}/incidents", json={"data": incident})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["process_key"] == "incident"
    assert "incident_reassessment" in api.open_tasks(case_id)
    assert [e.outcome for e in api.audit("case.incident")] == ["ok"]

    del incident["description"]
    refused = api.call("health", "POST", f"/api/v1/cases/{case_id}/incidents", json={"data": incident})
    assert fields_of(refused) == {"data/description": ["required"]}
    assert api.call("school", "POST", f"/api/v1/cases/{case_id}/incidents", json={"data": incident}).status_code == 404
    assert api.audit("case.incident", outcome="denied")[0].user_id == api.users["school"]
