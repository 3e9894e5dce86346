"""Tasks through the API: worklist scopes, a task with its form, claim, release, complete, and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy.orm import Session

from engine.errors import ConflictError, ExecutionError, NotFoundError, PermissionDeniedError
from engine.models import AuditEvent
from tests.support.api import ApiWorld, fields_of
from tests.support.protocol import COMPLAINT
from webapp.api import views

STEP = "police_report_to_court"


def first_step(api: ApiWorld) -> tuple[int, int]:
    """Register a case; return it and the id of its first police step."""
    case_id = api.register("health")
    return case_id, api.task_id(case_id, STEP)


def test_the_worklist_scopes_list_claimed_unclaimed_and_upcoming_tasks(api: ApiWorld) -> None:
    case_id, task_id = first_step(api)
    # Each detection gives the police several steps at once (complaint, assessment, safety plan): follow the complaint.
    assert api.call("police", "GET", "/api/v1/tasks").get_json()["items"] == []  # scope=mine by default
    agency = api.call("police", "GET", f"/api/v1/tasks?scope=agency&step={STEP}").get_json()
    assert agency["total"] == 1
    [item] = agency["items"]
    assert (item["id"], item["case"]["id"], item["element_id"], item["form"]) == (task_id, case_id, STEP,
                                                                                  "police_report")
    assert api.call("police", "POST", f"/api/v1/tasks/{task_id}/claim").status_code == 200
    mine = api.call("police", "GET", "/api/v1/tasks?scope=mine").get_json()
    assert [i["id"] for i in mine["items"]] == [task_id]
    assert mine["items"][0]["assignee"] == {"id": api.users["police"], "name": "police (prueba)"}
    assert api.call("police", "GET", f"/api/v1/tasks?scope=agency&step={STEP}").get_json()["total"] == 0
    assert api.call("police_2", "GET", "/api/v1/tasks?scope=mine").get_json()["total"] == 0
    first_list = api.audit("task.list", user_id=api.users["police"])[0]
    assert first_list.detail == {"scope": "mine", "count": 0}
    # An hour earlier, the step was not visible yet: it shows under "upcoming".
    with time_machine.travel(datetime.now(UTC) - timedelta(hours=1), tick=False):
        upcoming = api.call("police", "GET", f"/api/v1/tasks?scope=upcoming&step={STEP}").get_json()
    assert [i["id"] for i in upcoming["items"]] == [task_id]


def test_the_worklist_pages_and_filters(api: ApiWorld) -> None:
    for _ in range(3):
        first_step(api)
    page = api.call("police", "GET", f"/api/v1/tasks?scope=agency&step={STEP}&per_page=2&page=2").get_json()
    assert (page["page"], page["per_page"], page["total"], page["pages"], len(page["items"])) == (2, 2, 3, 2, 1)
    assert api.call("police", "GET", f"/api/v1/tasks?scope=agency&step={STEP}").get_json()["total"] == 3
    assert api.call("police", "GET", "/api/v1/tasks?scope=agency&step=otro").get_json()["total"] == 0
    assert api.call("police", "GET", "/api/v1/tasks?scope=agency&risk=alto").get_json()["total"] == 0
    here = api.territories["here"]
    in_here = api.call("police", "GET", f"/api/v1/tasks?scope=agency&step={STEP}&territory={here}").get_json()
    assert in_here["total"] == 3
    assert api.call("police", "GET", f"/api/v1/tasks?scope=agency&step={STEP}&due=week").get_json()["total"] == 3
    assert api.call("police", "GET", "/api/v1/tasks?scope=agency&due=overdue").get_json()["total"] == 0


def test_bad_worklist_arguments_are_422_per_field(api: ApiWorld) -> None:
    fields = fields_of(api.call("police", "GET", "/api/v1/tasks?scope=todo&per_page=500&page=x&colour=red"))
    assert set(fields) == {"scope", "per_page", "page", "colour"}
    assert fields["colour"] == ["Unknown field."]


def test_a_task_shows_its_form_and_draft_to_its_agency_and_is_audited(api: ApiWorld) -> None:
    case_id, task_id = first_step(api)
    response = api.call("police_2", "GET", f"/api/v1/tasks/{task_id}")
    assert response.status_code == 200
    task = response.get_json()
    assert (task["id"], task["version"], task["case"]["id"], task["element_id"]) == (task_id, 1, case_id, STEP)
    assert task["agency"] == {"id": api.agencies["police"], "name": "state_police here", "kind": "state_police"}
    assert (task["assignee"], task["draft"], task["form_name"]) == (None, None, "police_report")
    assert task["form"]["title"] == "Denuncia y atestado al juzgado"
    assert "report_number" in task["form"]["schema"]["required"]
    assert "sections" in task["form"]["ui"]
    assert task["visible_from"].endswith("+00:00")
    [read] = api.audit("task.read")
    assert (read.user_id, read.case_id, read.object_id) == (api.users["police_2"], case_id, task_id)


def test_a_task_of_another_agency_is_404_for_every_action_and_each_denial_is_audited(api: ApiWorld) -> None:
    case_id, task_id = first_step(api)
    calls = [("GET", "", None), ("POST", "/claim", None), ("POST", "/release", None),
             ("POST", "/complete", {"data": COMPLAINT, "version": 1})]
    for method, suffix, body in calls:
        hidden = api.call("health", method, f"/api/v1/tasks/{task_id}{suffix}", json=body)
        missing = api.call("health", method, f"/api/v1/tasks/999999{suffix}", json=body)
        assert hidden.status_code == missing.status_code == 404, suffix
        assert hidden.get_json() == missing.get_json()
    for action in ("task.read", "task.claim", "task.release", "task.complete"):
        denied = api.audit(action, outcome="denied")
        assert [(e.user_id, e.object_id, e.case_id) for e in denied] == [
            (api.users["health"], task_id, case_id), (api.users["health"], 999999, None)], action
    assert STEP in api.open_tasks(case_id)  # nothing happened
    assert api.call("police_there", "POST", f"/api/v1/tasks/{task_id}/claim").status_code == 404


def test_a_task_claimed_by_someone_else_cannot_be_completed_or_released_by_a_colleague(api: ApiWorld) -> None:
    _, task_id = first_step(api)
    claimed = api.call("police", "POST", f"/api/v1/tasks/{task_id}/claim", json={"version": 1}).get_json()
    assert claimed["version"] == 2
    complete = api.call("police_2", "POST", f"/api/v1/tasks/{task_id}/complete", json={"data": COMPLAINT, "version": 2})
    assert complete.status_code == 403
    assert complete.get_json()["error"]["code"] == "forbidden"
    [denied] = api.audit("task.complete", outcome="denied")
    assert (denied.user_id, denied.object_id) == (api.users["police_2"], task_id)
    assert api.call("police_2", "POST", f"/api/v1/tasks/{task_id}/release").status_code == 403
    assert api.call("police_2", "POST", f"/api/v1/tasks/{task_id}/claim").status_code == 409  # already claimed
    released = api.call("police_boss", "POST", f"/api/v1/tasks/{task_id}/release", json={"version": 2})
    assert released.status_code == 200
    assert (released.get_json()["assignee"], released.get_json()["version"]) == (None, 3)
    assert [e.outcome for e in api.audit("task.release")] == ["denied", "ok"]


def test_acting_on_a_stale_version_is_409(api: ApiWorld) -> None:
    _, task_id = first_step(api)
    assert api.call("police", "POST", f"/api/v1/tasks/{task_id}/claim", json={"version": 1}).status_code == 200
    stale = api.call("police", "POST", f"/api/v1/tasks/{task_id}/complete", json={"data": COMPLAINT, "version": 1})
    assert stale.status_code == 409
    assert stale.get_json()["error"]["code"] == "conflict"
    assert api.call("police", "POST", f"/api/v1/tasks/{task_id}/release", json={"version": 1}).status_code == 409


def test_the_second_completion_with_the_same_version_is_409(api: ApiWorld) -> None:
    case_id, task_id = first_step(api)
    body = {"data": COMPLAINT, "version": 1}
    first = api.call("police", "POST", f"/api/v1/tasks/{task_id}/complete", json=body)
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {"status": "completed", "case_id": case_id}
    second = api.call("police_2", "POST", f"/api/v1/tasks/{task_id}/complete", json=body)
    assert second.status_code == 409
    assert api.call("police", "GET", f"/api/v1/tasks/{task_id}").status_code == 404  # no longer open
    # The refused second completion is audited apart (the request's work is rolled back).
    assert [(e.outcome, e.user_id, e.detail) for e in api.audit("task.complete")] == [
        ("ok", api.users["police"], None), ("failed", api.users["police_2"], {"reason": "conflict"})]


def test_completing_with_bad_answers_is_422_per_field_and_changes_nothing(api: ApiWorld) -> None:
    case_id, task_id = first_step(api)
    url = f"/api/v1/tasks/{task_id}/complete"
    missing = {k: v for k, v in COMPLAINT.items() if k != "report_number"}
    assert fields_of(api.call("police", "POST", url, json={"data": missing, "version": 1})) == {
        "data/report_number": ["required"]}
    unknown = fields_of(api.call("police", "POST", url, json={"data": {**COMPLAINT, "extra": 1}, "version": 1}))
    assert unknown["data/extra"] == ["unknown field"]
    assert fields_of(api.call("police", "POST", url, json={"data": COMPLAINT})) == {
        "version": ["Missing data for required field."]}
    assert fields_of(api.call("police", "POST", url, json={"data": "todo", "version": "1"})) == {
        "data": ["Not a valid mapping type."], "version": ["Not a valid integer."]}
    assert api.open_tasks(case_id)[STEP].version == 1
    # The engine's refusals of the answers are audited (per field); the malformed requests never reach it.
    assert [(e.outcome, e.object_id, e.detail) for e in api.audit("task.complete")] == [
        ("failed", task_id, {"fields": ["report_number"]}), ("failed", task_id, {"fields": ["(form)", "extra"]})]


def test_designers_and_administrators_have_no_access_to_tasks(api: ApiWorld) -> None:
    _, task_id = first_step(api)
    assert api.call("designer", "GET", f"/api/v1/tasks/{task_id}").status_code == 403
    assert api.call("designer", "GET", "/api/v1/tasks").status_code == 403
    assert api.audit("task.read", outcome="denied")[0].user_id == api.users["designer"]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [(ConflictError("stale"), 409, "conflict"), (NotFoundError("gone"), 404, "not_found"),
     (PermissionDeniedError("no"), 403, "forbidden"), (ExecutionError("script failed"), 422, "workflow_error")],
)
def test_engine_errors_roll_back_and_answer_in_the_envelope(
    api: ApiWorld, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, code: str
) -> None:
    case_id, task_id = first_step(api)

    def failing(session: Session, *args: Any, **kwargs: Any) -> None:
        session.add(AuditEvent(at=datetime.now(UTC), action="half.done", outcome="ok"))  # work to be undone
        session.flush()
        raise error

    monkeypatch.setattr(views, "claim_task", failing)
    api.app.logger.disabled = True  # the workflow error is logged on purpose
    response = api.call("police", "POST", f"/api/v1/tasks/{task_id}/claim")
    assert response.status_code == status
    envelope = response.get_json()["error"]
    assert (envelope["status"], envelope["code"], set(envelope)) == (status, code, {"status", "code", "message"})
    assert api.audit("half.done") == []
    denials = [(e.user_id, e.object_id) for e in api.audit("task.claim", outcome="denied")]
    assert denials == ([(api.users["police"], task_id)] if status == 403 else [])
    assert api.open_tasks(case_id)[STEP].assignee_id is None
