"""The API's JSON Schema of the risk review lists the levels of the deployed scale, from the computed one up."""

from __future__ import annotations

from tests.support.api import ApiWorld, agency_queue
from tests.support.protocol import COMPLAINT, risk_answers


def test_the_review_schema_offers_the_deployed_levels_from_the_computed_one_up(api: ApiWorld) -> None:
    api.register("health")
    report = agency_queue(api, "police")["police_report_to_court"]
    api.call("police", "POST", f"/api/v1/tasks/{report['id']}/complete",
             json={"data": COMPLAINT, "version": report["version"]})
    assessment = agency_queue(api, "police")["police_risk_assessment"]
    api.call("police", "POST", f"/api/v1/tasks/{assessment['id']}/complete",
             json={"data": risk_answers("medio"), "version": assessment["version"]})
    review = agency_queue(api, "police")["reassessment_review"]
    schema = api.call("police", "GET", f"/api/v1/tasks/{review['id']}").get_json()["form"]["schema"]
    assert [(o["const"], o["title"]) for o in schema["properties"]["final_level"]["oneOf"]] == [
        ("medio", "Medio"), ("alto", "Alto"), ("extremo", "Extremo")]
