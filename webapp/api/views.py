"""API v1 views: load the body, check access, call one operation, audit, dump the answer (the request commits)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound, TooManyRequests

from engine.clock import SystemClock
from engine.errors import ConflictError, NotFoundError, PermissionDeniedError
from engine.execution import complete_task, start_case, start_process
from engine.models import Case
from engine.persistence import lock_case
from engine.tasks import claim_task, release_task
from webapp.access import can_see_case
from webapp.api import queries, schemas
from webapp.api.auth import audit_api, current_principal, token_required, unauthorized
from webapp.api.errors import form_errors_at, load_args, load_body
from webapp.api.openapi import documented, openapi_document, with_forms
from webapp.api.queries import TaskAccess
from webapp.auth.mfa import record_second_factor_failure, token_refusal
from webapp.auth.mfa_step import configured_roles, mfa_key
from webapp.auth.operations import authenticate
from webapp.auth.sessions import end_api_session, issue_api_token
from webapp.auth.tokens import TOKEN_LIFETIME
from webapp.extensions import db
from webapp.requests import deny
from webapp.transaction import apart
from webapp.worklist.queries import Filters, worklist

bp = Blueprint("api", __name__, url_prefix="/api/v1")

INTAKE, INCIDENT = "intake", "incident"
REVOKED = {"type": "object", "properties": {"revoked": {"type": "boolean"}}, "required": ["revoked"],
           "additionalProperties": False}  # the answer to signing a token out
# The request fields that carry the start form of a process.
FORM_FIELDS = {"CaseCreateRequest/detection": INTAKE, "IncidentRequest/data": INCIDENT}


def _now() -> datetime:
    return SystemClock().now()


def _session() -> Session:
    return db.session()


@bp.post("/auth/token")
@documented(body=schemas.TokenRequest, responses={200: schemas.TokenOut}, errors=(401, 429), tags=["auth"])
def token() -> ResponseReturnValue:
    """Exchange a username and password for a bearer token.

    Failed attempts make this address (for this name) and the account wait a while, doubling each time: 429
    with Retry-After. A flood of failures from one address only slows it; the right password still works.
    """
    body, now = load_body(schemas.TokenRequest()), _now()
    with apart() as session:  # the audit rows and failure counters are kept, whatever the outcome
        result = authenticate(session, body["username"], body["password"], now=now, ip=request.remote_addr)
    if result.user is None:
        if result.reason in ("locked", "throttled"):
            raise TooManyRequests(retry_after=result.retry_after)
        raise unauthorized("invalid_credentials")
    # Multi-factor sign-in (webapp/auth/mfa.py): a user with a second factor gives a current code too.
    refusal = token_refusal(db.session(), result.user, body.get("code"), mfa_key(), defaults=configured_roles(),
                            now=now)
    if refusal is not None:
        if body.get("code"):
            with apart() as session:
                record_second_factor_failure(session, result.user.id, now=now)
        raise unauthorized(refusal)
    issued = issue_api_token(result.user, now=now)  # a revocable server-side session
    answer = {"token": issued, "token_type": "Bearer", "expires_at": now + TOKEN_LIFETIME}
    return jsonify(schemas.TokenOut().dump(answer))


@bp.delete("/auth/token")
@documented(responses={200: REVOKED}, tags=["auth"])
@token_required(casework=False)
def revoke_token() -> ResponseReturnValue:
    """Sign out: end the bearer token of this request, which answers 401 from then on."""
    end_api_session()
    audit_api("logout")
    return jsonify({"revoked": True})


@bp.get("/me")
@documented(responses={200: schemas.MeOut}, tags=["auth"])
@token_required(casework=False)
def me() -> ResponseReturnValue:
    """Describe the signed-in user: agency, roles and the territories it serves."""
    return jsonify(schemas.MeOut().dump(queries.me(_session(), current_principal())))


@bp.post("/cases")
@documented(body=schemas.CaseCreateRequest, responses={201: schemas.CaseCreatedOut}, tags=["cases"])
@token_required(action="case.create")
def create_case() -> ResponseReturnValue:
    """Register a detection: open a case in a territory your agency serves and start its intake."""
    principal, session = current_principal(), _session()
    body = load_body(schemas.CaseCreateRequest())
    if body["territory_id"] not in principal.territory_ids:
        deny(403, object_type="territory", object_id=body["territory_id"])
    with form_errors_at("detection"):
        case, _ = start_case(session, territory_id=body["territory_id"], process_key=INTAKE,
                             data=body["detection"], now=_now(), actor=principal.actor, victim=body.get("victim"),
                             aggressor=body.get("aggressor"), check_form=True)
    audit_api("case.create", case_id=case.id, object_type="case", object_id=case.id)
    location = url_for(".get_case", case_id=case.id)
    return jsonify(schemas.CaseCreatedOut().dump(case)), 201, {"Location": location}


@bp.get("/cases/<id:case_id>")
@documented(responses={200: schemas.CaseOut}, errors=(404,), tags=["cases"])
@token_required(action="case.read")
def get_case(case_id: int) -> ResponseReturnValue:
    """Show a case: status, level and why, open steps, history; who she is only to those who need to know."""
    principal, session = current_principal(), _session()
    _visible_case(case_id)
    case = session.get_one(Case, case_id)
    detail = queries.case_detail(session, principal, case, _now())
    audit_api("case.read", case_id=case.id, object_type="case", object_id=case.id,
              detail={"identity": "victim" in detail})
    return jsonify(schemas.CaseOut().dump(detail))


@bp.post("/cases/<id:case_id>/incidents")
@documented(body=schemas.IncidentRequest, responses={201: schemas.IncidentOut}, errors=(404,), tags=["cases"])
@token_required(action="case.incident")
def report_incident(case_id: int) -> ResponseReturnValue:
    """Report a new incident: starts the incident process (immediate re-assessment) on the case."""
    principal, session = current_principal(), _session()
    _visible_case(case_id)
    body = load_body(schemas.IncidentRequest())
    case = lock_case(session, case_id)
    with form_errors_at("data"):
        instance = start_process(session, case, INCIDENT, body["data"], now=_now(), actor=principal.actor,
                                 check_form=True)
    audit_api("case.incident", case_id=case.id, object_type="case", object_id=case.id)
    answer = {"case_id": case.id, "reference": case.reference, "instance_id": instance.id, "process_key": INCIDENT}
    return jsonify(schemas.IncidentOut().dump(answer)), 201


@bp.get("/tasks")
@documented(query=schemas.TaskListQuery, responses={200: schemas.TaskPageOut}, tags=["tasks"])
@token_required(action="task.list")
def list_tasks() -> ResponseReturnValue:
    """List the tasks of a scope: mine (claimed by me), agency (unclaimed) or upcoming (not yet visible)."""
    args = load_args(schemas.TaskListQuery())
    filters = Filters(step=args.get("step"), risk=args.get("risk"), due=args.get("due"),
                      territory=args.get("territory"))
    session = _session()
    page = worklist(session, current_principal(), args["scope"], filters, page=args["page"],
                    per_page=args["per_page"], now=_now())
    audit_api("task.list", detail={"scope": args["scope"], "count": len(page.rows)})
    return jsonify(schemas.TaskPageOut().dump(page))


@bp.get("/tasks/<id:task_id>")
@documented(responses={200: schemas.TaskDetailOut}, errors=(404,), tags=["tasks"])
@token_required(action="task.read")
def get_task(task_id: int) -> ResponseReturnValue:
    """Show an open task of your agency with its form (JSON Schema and UI hints) and draft answers."""
    access, session = _visible_task(task_id), _session()
    task = queries.task_view(session, task_id, _now(), with_form=True)
    if task is None:
        raise NotFound()  # completed or cancelled meanwhile
    audit_api("task.read", case_id=access.case_id, object_type="task", object_id=task_id)
    return jsonify(schemas.TaskDetailOut().dump(task))


@bp.post("/tasks/<id:task_id>/claim")
@documented(body=schemas.VersionRequest, body_required=False, responses={200: schemas.TaskOut},
            errors=(404, 409), tags=["tasks"])
@token_required(action="task.claim")
def claim(task_id: int) -> ResponseReturnValue:
    """Claim an unclaimed task of your agency (409 if someone else claimed it)."""
    access = _visible_task(task_id)
    body = load_body(schemas.VersionRequest())
    claim_task(_session(), task_id, now=_now(), actor=current_principal().actor, expected_version=body.get("version"))
    return _task_changed("task.claim", access, task_id)


@bp.post("/tasks/<id:task_id>/release")
@documented(body=schemas.VersionRequest, body_required=False, responses={200: schemas.TaskOut},
            errors=(404, 409), tags=["tasks"])
@token_required(action="task.release")
def release(task_id: int) -> ResponseReturnValue:
    """Give a claimed task back to the agency queue (its assignee, or a supervisor of the agency)."""
    access = _visible_task(task_id)
    body = load_body(schemas.VersionRequest())
    release_task(_session(), task_id, now=_now(), actor=current_principal().actor,
                 expected_version=body.get("version"))
    return _task_changed("task.release", access, task_id)


@bp.post("/tasks/<id:task_id>/complete")
@documented(body=schemas.CompleteRequest, responses={200: schemas.CompletedOut}, errors=(404, 409),
            tags=["tasks"])
@token_required(action="task.complete")
def complete(task_id: int) -> ResponseReturnValue:
    """Complete a task with its form's answers, given on the task version you loaded; the workflow goes on."""
    session = _session()
    body = load_body(schemas.CompleteRequest())
    try:
        with form_errors_at("data"):
            instance = complete_task(session, task_id, body["data"], expected_version=body["version"],
                                     now=_now(), actor=current_principal().actor)
    except (PermissionDeniedError, ConflictError, NotFoundError):
        # The engine checked the task in the same statement that locked it; only a refusal pays for
        # telling a stranger's task (404, audited) from the user's own (403 / 409).
        _visible_task(task_id)
        raise
    audit_api("task.complete", case_id=instance.case_id, object_type="task", object_id=task_id)
    return jsonify(schemas.CompletedOut().dump({"status": "completed", "case_id": instance.case_id}))


@bp.get("/openapi.json")
@documented(responses={200: {"type": "object"}}, tags=["meta"])
def openapi() -> ResponseReturnValue:
    """Describe this API as an OpenAPI 3.1 document, with the JSON Schema of every deployed form."""
    forms, starts = queries.documented_forms(_session(), FORM_FIELDS)
    return jsonify(with_forms(openapi_document(current_app), forms, starts))


def _visible_case(case_id: int) -> None:
    """Let through a case the user may see; otherwise audit the denial and answer 404.

    Only ids are read here: the case row is loaded (or locked) afterwards, fresh.
    """
    if not can_see_case(_session(), current_principal(), case_id):
        deny(404)  # audited on the URL's case, with its id only if it exists


def _visible_task(task_id: int) -> TaskAccess:
    """Return whose a task of the user's agency (or assigned to her) is; otherwise audit and answer 404."""
    access = queries.task_access(_session(), task_id)
    if access is None or not queries.may_see_task(current_principal(), access):
        deny(404, case_id=access.case_id if access else None)
    return access


def _task_changed(action: str, access: TaskAccess, task_id: int) -> ResponseReturnValue:
    """Audit a change of a task and answer with the task's new state."""
    session = _session()
    audit_api(action, case_id=access.case_id, object_type="task", object_id=task_id)
    task = queries.task_view(session, task_id, _now())
    return jsonify(schemas.TaskOut().dump(task))
