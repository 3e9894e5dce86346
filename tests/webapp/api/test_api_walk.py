"""A case walked through the API alone: registered by the health centre, worked on by the police."""

from __future__ import annotations

from tests.support.api import ApiWorld, agency_queue, fields_of
from tests.support.protocol import COMPLAINT, risk_answers


def test_a_detection_goes_from_the_health_centre_to_the_police_and_on_to_social_services(api: ApiWorld) -> None:
    case_id = api.register("health")

    queue = agency_queue(api, "police")
    assert "police_report_to_court" in queue
    task = queue["police_report_to_court"]
    assert task["case"]["id"] == case_id

    claimed = api.call("police", "POST", f"/api/v1/tasks/{task['id']}/claim", json={"version": task["version"]})
    assert claimed.status_code == 200, claimed.get_json()
    assert claimed.get_json()["assignee"]["id"] == api.users["police"]
    mine = api.call("police", "GET", "/api/v1/tasks").get_json()["items"]
    assert [item["id"] for item in mine] == [task["id"]]

    detail = api.call("police", "GET", f"/api/v1/tasks/{task['id']}").get_json()
    assert detail["form"]["name"] == "police_report"
    assert "report_number" in detail["form"]["schema"]["properties"]
    version = detail["version"]

    incomplete = {k: v for k, v in COMPLAINT.items() if k != "report_number"}
    refused = api.call("police", "POST", f"/api/v1/tasks/{task['id']}/complete",
                       json={"data": incomplete, "version": version})
    assert fields_of(refused) == {"data/report_number": ["required"]}

    done = api.call("police", "POST", f"/api/v1/tasks/{task['id']}/complete",
                    json={"data": COMPLAINT, "version": version})
    assert done.status_code == 200, done.get_json()
    assert done.get_json() == {"status": "completed", "case_id": case_id}

    assessment = agency_queue(api, "police")["police_risk_assessment"]
    assert api.call("police", "POST", f"/api/v1/tasks/{assessment['id']}/complete",
                    json={"data": risk_answers("medio"), "version": assessment["version"]}).status_code == 200
    review = agency_queue(api, "police")["reassessment_review"]
    answers = {"final_level": "medio", "especial_relevancia": False, "minors_at_risk": False}
    assert api.call("police", "POST", f"/api/v1/tasks/{review['id']}/complete",
                    json={"data": answers, "version": review["version"]}).status_code == 200

    social = agency_queue(api, "social")
    assert "social_assessment_care_plan" in social
    assert social["social_assessment_care_plan"]["case"]["id"] == case_id
    case = api.call("social", "GET", f"/api/v1/cases/{case_id}").get_json()
    assert case["risk_level"] == "medio"
    assert case["level_rule"]
    assert {"completed"} <= {entry["action"] for entry in case["history"]}
