"""Refused Mesa and transfer changes keep nothing: what the operation wrote before refusing is discarded.

With the request owning its transaction a redirect commits, so the views that answer a refusal with a flash
and a redirect (or re-render the page from what is stored) must discard the operation's partial work first.
Each test lets the real operation write and flush, then refuses, and reads the database afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.errors import ConflictError, PermissionDeniedError
from engine.models import Case, CaseTransfer, Meeting, MeetingNote, OpenTask
from tests.support.web import Browser, Site
from tests.webapp.mesa_world import MesaWorld, build_mesa_world, version_of
from webapp.extensions import db
from webapp.mesa import operations as mesa_ops
from webapp.mesa.views import mesas as mesa_views
from webapp.transfers import operations as transfer_ops
from webapp.validation import InvalidInput

PAST = InvalidInput({"scheduled_at": ["La reunión no puede convocarse en el pasado."]})


@pytest.fixture
def world(site: Site, password_hash: str) -> MesaWorld:
    """Two territories, each with its Mesa; coordinators `mesa` (here) and `mesa.madrid` (there)."""
    return build_mesa_world(site, password_hash)


def written_then(operation: Callable[..., Any], error: Exception) -> Callable[..., Any]:
    """Return a stand-in for `operation`: the real one (written and flushed), then `error`."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        operation(*args, **kwargs)
        raise error

    return refuse


def count(site: Site, model: type[Any], *where: Any) -> int:
    """Return how many rows of `model` the database holds (matching `where`)."""
    with site.app.app_context():
        return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def post_minutes(browser: Browser, meeting_id: int, path: str, data: dict[str, str]) -> tuple[int, str]:
    """Post a minutes form with the version the meeting page carries; return the status and the page."""
    action = f"/mesa/reuniones/{meeting_id}{path}"
    page = browser.get(f"/mesa/reuniones/{meeting_id}").get_data(as_text=True)
    response = browser.post(action, {"version": version_of(page, action), **data})
    return response.status_code, response.get_data(as_text=True)


def test_a_refused_convening_redirects_with_its_message_and_keeps_no_meeting(
    world: MesaWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = world.site
    case_id = world.through_intake("medio")
    world.incident(case_id)
    extraordinary = (Meeting.kind == "extraordinary",)
    before = count(site, Meeting)
    monkeypatch.setattr(mesa_views, "convene_extraordinary", written_then(mesa_views.convene_extraordinary, PAST))
    coordinator = world.browser("mesa")
    response = coordinator.post(f"/mesa/{world.here}/extraordinarias",
                                {"case_id": str(case_id), "trigger": "incident", "scheduled_at": "2026-03-03T10:00"})
    assert response.status_code == 302  # where she lands is unchanged: back to the Mesa, with the message
    assert response.headers["Location"] == f"/mesa/{world.here}"
    assert "La reunión no puede convocarse en el pasado." in coordinator.get(response.headers["Location"]).get_data(
        as_text=True)
    assert (count(site, Meeting), count(site, Meeting, *extraordinary)) == (before, 0)
    assert site.audit("mesa.convene") == []


def test_a_refused_note_answers_422_keeps_no_note_and_audits_the_failure(
    world: MesaWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = world.site
    case_id = world.through_intake("medio")
    coordinator = world.browser("mesa")
    meeting_id = world.next_meeting()
    assert post_minutes(coordinator, meeting_id, "/abrir", {})[0] == 302
    with site.app.app_context():
        version = db.session.get(Meeting, meeting_id).version  # type: ignore[union-attr]
    refused = InvalidInput({f"note-{case_id}": ["Demasiado largo."]})
    monkeypatch.setattr(mesa_ops, "save_note", written_then(mesa_ops.save_note, refused))
    status, page = post_minutes(coordinator, meeting_id, f"/notas/{case_id}", {"note": "Vive con el agresor."})
    assert status == 422
    assert "Demasiado largo." in page
    assert "Vive con el agresor." not in page  # the page shows the minutes as stored
    assert count(site, MeetingNote) == 0
    with site.app.app_context():
        assert db.session.get(Meeting, meeting_id).version == version  # type: ignore[union-attr]
    failed = site.audit("mesa.note", outcome="failed")
    assert [(e.case_id, e.object_id, e.detail) for e in failed] == [
        (case_id, meeting_id, {"fields": [f"note-{case_id}"]})]
    assert site.audit("mesa.note", outcome="ok") == []
    assert site.audit("case.read", case_id=case_id, object_type="case")  # the summary shown on the 422 page


def test_a_transfer_decision_refused_after_moving_the_case_redirects_and_moves_nothing(
    world: MesaWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = world.site
    case_id = site.open_case()
    here, there = site.territories["here"], site.territories["there"]
    sent = world.browser("mesa").post(f"/mesa/{world.here}/traslados",
                                      {"case_id": str(case_id), "to_mesa": str(world.there), "reason": "Mudanza"})
    assert sent.status_code == 302
    with site.app.app_context():
        transfer_id = db.session.execute(select(CaseTransfer.id)).scalar_one()
    steps_here = count(site, OpenTask, OpenTask.case_id == case_id, OpenTask.territory_id == here)
    assert steps_here > 0
    monkeypatch.setattr(transfer_ops, "decide_transfer",
                        written_then(transfer_ops.decide_transfer, ConflictError("the case moved meanwhile")))
    receiving = world.browser("mesa.madrid")
    response = receiving.post(f"/mesa/traslados/{transfer_id}/aceptar")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/mesa/{world.there}#transfers"
    assert "Ese traslado ya se ha decidido" in receiving.get(response.headers["Location"]).get_data(as_text=True)
    with site.app.app_context():
        transfer, case = db.session.get(CaseTransfer, transfer_id), db.session.get(Case, case_id)
        assert transfer is not None
        assert case is not None
        assert (transfer.status, transfer.decided_at, case.territory_id) == ("requested", None, here)
    assert count(site, OpenTask, OpenTask.case_id == case_id, OpenTask.territory_id == here) == steps_here
    assert count(site, OpenTask, OpenTask.case_id == case_id, OpenTask.territory_id == there) == 0
    assert [e.detail["step"] for e in site.audit("case.transfer")] == ["requested"]  # type: ignore[index]


def test_an_engine_refusal_of_a_minutes_edit_is_the_app_wide_403_audited_on_the_meeting(
    world: MesaWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = world.site
    case_id = world.through_intake("medio")
    coordinator = world.browser("mesa")
    meeting_id = world.next_meeting()
    assert post_minutes(coordinator, meeting_id, "/abrir", {})[0] == 302
    refused = PermissionDeniedError("the agreement process may not start")
    monkeypatch.setattr(mesa_ops, "save_note", written_then(mesa_ops.save_note, refused))
    status, page = post_minutes(coordinator, meeting_id, f"/notas/{case_id}", {"note": "Vive con el agresor."})
    assert status == 403
    assert "Acceso denegado" in page
    assert count(site, MeetingNote) == 0
    denied = site.audit("mesa.note", outcome="denied")
    assert [(e.username, e.object_type, e.object_id, e.detail) for e in denied] == [
        ("mesa", "meeting", meeting_id, {"status": 403})]
