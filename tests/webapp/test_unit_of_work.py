"""The unit of work: a request's engine work is kept only when the answer succeeds; refusals are audited apart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from engine.errors import ConflictError, EngineError, ExecutionError, NotFoundError, PermissionDeniedError
from engine.models import AuditEvent, TaskEvent, UserAccount
from engine.tasks import claim_task
from tests.webapp.conftest import Site
from webapp.api import views as api_views
from webapp.auth.sessions import issue_api_token
from webapp.extensions import csrf, db
from webapp.tasks import views as task_views

REPORT, ASSESSMENT = "police_report_to_court", "police_risk_assessment"
COMPLAINT = {"complaint_received_at": "2026-03-02T10:00:00+01:00", "report_number": "AT-2026-001",
             "sent_to_court": True}
# Each engine refusal: its HTTP status, the API's error code, and how its audit row reads.
REFUSALS = [
    (PermissionDeniedError("no"), 403, "forbidden", "denied", {"status": 403}),
    (NotFoundError("gone"), 404, "not_found", "failed", {"reason": "not_found"}),
    (ConflictError("stale"), 409, "conflict", "failed", {"reason": "conflict"}),
    (ExecutionError("script failed"), 422, "workflow_error", "failed", {"reason": "workflow_error"}),
]


def at_assessment(site: Site) -> tuple[int, int]:
    """Open a case and file the complaint: the risk assessment waits for the police. Return case and task ids."""
    case_id = site.open_case()
    site.complete(case_id, REPORT, COMPLAINT)
    return case_id, site.task(case_id, ASSESSMENT).id


def claim_then_raise(error: BaseException) -> Any:
    """Return a stand-in for the views' claim_task: the real claim (written and flushed), then `error`."""

    def claim(*args: Any, **kwargs: Any) -> None:
        claim_task(*args, **kwargs)
        raise error

    return claim


def claims_on_record(app: Flask, task_id: int) -> list[str]:
    """Return what the task's history says happened to it (claims, releases...), oldest first."""
    with app.app_context():
        return list(db.session.execute(select(TaskEvent.action).where(TaskEvent.task_id == task_id)
                                       .order_by(TaskEvent.id)).scalars())


def audit_rows(site: Site, action: str) -> list[tuple[str, str | None, int | None, int | None, Any]]:
    """Return the audit rows of an action as (outcome, username, case, object, detail), oldest first."""
    return [(e.outcome, e.username, e.case_id, e.object_id, e.detail) for e in site.audit(action)]


def bearer(site: Site, username: str) -> dict[str, str]:
    """Return the API headers of a user."""
    with site.app.test_request_context():
        token = issue_api_token(db.session.get_one(UserAccount, site.users[username]), now=datetime.now(UTC))
        db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_a_page_that_crashes_after_the_engine_claimed_the_task_leaves_the_database_unchanged(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id, task_id = at_assessment(site)
    before = claims_on_record(site.app, task_id)
    monkeypatch.setattr(task_views, "claim_task", claim_then_raise(RuntimeError("after the engine")))
    with pytest.raises(RuntimeError, match="after the engine"):  # TESTING propagates the crash (a 500 live)
        site.browser("policia").post(f"/tareas/{task_id}/reclamar", {"version": "1"})
    task = site.task(case_id, ASSESSMENT)
    assert (task.assignee_id, task.version) == (None, 1)
    assert claims_on_record(site.app, task_id) == before
    assert site.audit("task.claim") == []


@pytest.mark.parametrize(("error", "status", "code", "outcome", "detail"), REFUSALS)
def test_a_page_refused_by_the_engine_after_its_work_rolls_it_back_and_audits_the_refusal(
    site: Site, monkeypatch: pytest.MonkeyPatch, error: EngineError, status: int, code: str, outcome: str,
    detail: dict[str, Any],
) -> None:
    case_id, task_id = at_assessment(site)
    before = claims_on_record(site.app, task_id)
    monkeypatch.setattr(task_views, "claim_task", claim_then_raise(error))
    site.app.logger.disabled = True  # the workflow error is logged on purpose
    response = site.browser("policia").post(f"/tareas/{task_id}/reclamar", {"version": "1"})
    assert response.status_code == status
    task = site.task(case_id, ASSESSMENT)
    assert (task.assignee_id, task.version) == (None, 1)
    assert claims_on_record(site.app, task_id) == before
    assert audit_rows(site, "task.claim") == [(outcome, "policia", case_id, task_id, detail)]


@pytest.mark.parametrize(("error", "status", "code", "outcome", "detail"), REFUSALS)
def test_an_api_call_refused_by_the_engine_after_its_work_rolls_it_back_and_audits_the_refusal(
    site: Site, monkeypatch: pytest.MonkeyPatch, error: EngineError, status: int, code: str, outcome: str,
    detail: dict[str, Any],
) -> None:
    case_id, task_id = at_assessment(site)
    before = claims_on_record(site.app, task_id)
    monkeypatch.setattr(api_views, "claim_task", claim_then_raise(error))
    site.app.logger.disabled = True
    response = site.app.test_client().post(f"/api/v1/tasks/{task_id}/claim", json={"version": 1},
                                           headers=bearer(site, "policia"))
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    task = site.task(case_id, ASSESSMENT)
    assert (task.assignee_id, task.version) == (None, 1)
    assert claims_on_record(site.app, task_id) == before
    assert audit_rows(site, "task.claim") == [(outcome, "policia", case_id, task_id, detail)]


def test_the_same_claim_without_a_failure_is_kept_with_its_audit(site: Site) -> None:
    case_id, task_id = at_assessment(site)
    response = site.browser("policia").post(f"/tareas/{task_id}/reclamar", {"version": "1"})
    assert response.status_code == 302
    task = site.task(case_id, ASSESSMENT)
    assert (task.assignee_id, task.version) == (site.users["policia"], 2)
    assert [row[:4] for row in audit_rows(site, "task.claim")] == [("ok", "policia", case_id, task_id)]


def test_an_error_answer_rolls_back_what_the_view_wrote(site: Site) -> None:
    """A view that answers 4xx without raising keeps nothing either: the answer decides, not the view."""
    case_id, task_id = at_assessment(site)

    def claim_and_answer_422(task_id: int) -> tuple[str, int]:
        claim_task(db.session(), task_id, now=site.clock.now(), actor=site.actor("policia"), expected_version=1)
        db.session.add(AuditEvent(at=site.clock.now(), action="half.done", outcome="ok"))
        return "refused", 422

    csrf.exempt(claim_and_answer_422)
    site.app.add_url_rule("/_test/claim-and-refuse/<id:task_id>", view_func=claim_and_answer_422, methods=["POST"])
    assert site.app.test_client().post(f"/_test/claim-and-refuse/{task_id}").status_code == 422
    assert site.task(case_id, ASSESSMENT).assignee_id is None
    assert site.audit("half.done") == []
