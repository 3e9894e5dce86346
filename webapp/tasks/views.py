"""Task pages: the form of a step beside the case context; claim, release, save a draft, complete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.definitions import task_form
from engine.errors import ConflictError, TaskDataError
from engine.execution import complete_task
from engine.forms import FormDefinition
from engine.models import Case, OpenTask
from engine.tasks import can_act_on, claim_task, release_task, save_draft
from webapp import clock, form_html
from webapp.audit import audit, audit_page
from webapp.cases.queries import summary, timeline
from webapp.errors import audit_refusal
from webapp.extensions import db
from webapp.mesa.summaries import agreement_rows
from webapp.navigation import safe_next
from webapp.requests import act_as, deny, posted_version
from webapp.resources.hints import resource_notes
from webapp.tasks.queries import closed_task, step_data, visible_task

bp = Blueprint("tasks", __name__, template_folder="templates")

HISTORY_LIMIT = 8


@bp.get("/tareas/<id:task_id>")
@login_required
def show(task_id: int) -> ResponseReturnValue:
    """Show a step's form (pre-filled with its draft) beside what the user may know of the case."""
    task = visible_task(db.session(), current_user, task_id)
    if task is None:
        return _closed_or_404(task_id)
    return _page(task)


@bp.post("/tareas/<id:task_id>/reclamar")
@login_required
def claim(task_id: int) -> ResponseReturnValue:
    """Take an unclaimed task of one's agency."""
    task = _task_or_404(task_id, "task.claim")
    claim_task(db.session(), task_id, now=clock.now(), actor=current_user.actor, expected_version=posted_version())
    return _done(task, "task.claim", _("Tarea reclamada: ahora está en «Mis tareas»."))


@bp.post("/tareas/<id:task_id>/liberar")
@login_required
def release(task_id: int) -> ResponseReturnValue:
    """Give a claimed task back to the agency's queue."""
    task = _task_or_404(task_id, "task.release")
    release_task(db.session(), task_id, now=clock.now(), actor=current_user.actor, expected_version=posted_version())
    return _done(task, "task.release", _("Tarea liberada: vuelve a la lista de su organismo."))


@bp.post("/tareas/<id:task_id>/borrador")
@login_required
def draft(task_id: int) -> ResponseReturnValue:
    """Keep what was typed so far without completing the step."""
    task = _task_or_404(task_id, "task.draft")
    data = form_html.parse(form, request.form) if (form := _form_of(task)) else {}
    save_draft(db.session(), task_id, data, expected_version=posted_version(), now=clock.now(),
               actor=current_user.actor)
    return _done(task, "task.draft", _("Borrador guardado."), to=url_for("tasks.show", task_id=task_id))


@bp.post("/tareas/<id:task_id>/completar")
@login_required
def complete(task_id: int) -> ResponseReturnValue:
    """Complete the step with the submitted form; the workflow moves the case on."""
    task = _task_or_404(task_id, "task.complete")
    case_id = task.case_id
    data = form_html.parse(form, request.form) if (form := _form_of(task)) else {}
    try:
        complete_task(db.session(), task_id, data, expected_version=posted_version(), now=clock.now(),
                      actor=current_user.actor, form=form)
    except TaskDataError as exc:
        audit_refusal(exc)
        return _page(_task_or_404(task_id, "task.complete"), form=form, values=data, errors=exc.errors, status=422)
    return _done(task, "task.complete", _("Paso completado."), to=url_for("cases.show", case_id=case_id),
                 case_id=case_id)


@bp.errorhandler(ConflictError)
def conflict(error: ConflictError) -> ResponseReturnValue:
    """Answer a task changed meanwhile (409) with its current state, or its end, instead of a bare error page."""
    audit_refusal(error)
    task_id: int = (request.view_args or {})["task_id"]
    _flash_conflict()
    task = visible_task(db.session(), current_user, task_id)
    return _page(task, status=409) if task is not None else _closed_page(task_id, status=409)


# --- Helpers ------------------------------------------------------------------------------------
def _form_of(task: OpenTask) -> FormDefinition | None:
    """Return the version of the task's form that its process version pinned."""
    return task_form(db.session(), task)


def _flash_conflict() -> None:
    flash(_("Otra persona ha cambiado esta tarea mientras la tenía abierta: esta es su situación actual."), "error")


def _task_or_404(task_id: int, action: str) -> OpenTask:
    """Return the open task the user may act on; a task of theirs that ended meanwhile is a conflict (409).

    Names the request's audit action: a refusal by the engine is audited under it.
    """
    act_as(action)
    task = visible_task(db.session(), current_user, task_id)
    if task is not None:
        return task
    if closed_task(db.session(), current_user, task_id) is None:
        deny(404)
    _flash_conflict()
    abort(make_response(_closed_page(task_id, status=409)))


def _closed_or_404(task_id: int) -> ResponseReturnValue:
    if closed_task(db.session(), current_user, task_id) is None:
        deny(404, action="task.read")
    return _closed_page(task_id)


def _closed_page(task_id: int, *, status: int = 200) -> tuple[str, int]:
    """Show that a task of one's agency is no longer open (completed or cancelled), with a link to its case."""
    event = closed_task(db.session(), current_user, task_id)
    assert event is not None  # checked by the caller
    html = render_template("tasks/closed.html", event=event)
    audit_page(db.session(), "task.read", status, case_id=event.case_id, object_type="task", object_id=task_id)
    return html, status


def _done(
    task: OpenTask, action: str, message: str, *, to: str | None = None, case_id: int | None = None
) -> ResponseReturnValue:
    audit(db.session(), action, case_id=case_id or task.case_id, object_type="task", object_id=task.id)
    flash(message, "info")
    return redirect(safe_next(request.form.get("next"), to or url_for("tasks.show", task_id=task.id)))


def _page(
    task: OpenTask, *, form: FormDefinition | None = None, values: Mapping[str, Any] | None = None,
    errors: Mapping[str, Sequence[str]] | None = None, status: int = 200,
) -> ResponseReturnValue:
    """Render the task page: form, case context and step data; the read is on record with the page.

    `form` is the task's form when the caller resolved it already (a refused completion).
    """
    now = clock.now()
    case = db.session.get(Case, task.case_id)
    assert case is not None  # foreign key
    form = form or _form_of(task)
    context = summary(db.session(), case, now)
    values = dict(values if values is not None else (task.draft or {}))
    messages = form_html.messages(form, errors, values) if form and errors else {}
    fields = form_html.fields_of(form) if form else []
    html = render_template(
        "tasks/show.html", task=task, case=context, form=form,
        step=next(s for s in context.open_steps if s.task_id == task.id),
        form_html=form_html.render(form, values, messages,
                                      notes=resource_notes(db.session(), form, case.territory_id)) if form else None,
        errors=messages, agreement=next(iter(agreement_rows(db.session(), now, instance_id=task.instance_id)), None),
        anchors={f.name: (form_html.anchor(f), f.label) for f in fields},
        option_labels={o.value: o.label for f in fields for o in f.options},
        history=timeline(db.session(), case.id, limit=HISTORY_LIMIT), step_data=step_data(db.session(), task, form),
        others=[s for s in context.open_steps if s.agency_id != current_user.agency_id],
        can_work=can_act_on(task, current_user.actor),
    )
    audit_page(db.session(), "task.read", status, case_id=case.id, object_type="task", object_id=task.id)
    return html, status
