"""Authorization matrix: every /api/v1 route called by users of every role in every kind of agency.

The routes come from the app's URL map, so a new route fails this test until its row is added.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.support.api import ROLES, ApiWorld, build_world
from tests.support.protocol import COMPLAINT, detection
from tests.support.web import PASSWORD, AppFactory

STEP = "police_report_to_court"
INCIDENT = {"reported_by_kind": "school", "occurred_on": "2026-03-05", "description": "Nuevas amenazas.",
            "complaint_filed": False, "immediate_danger": False}
# The agency of each column: the case's registrant (health centre), the agency of its open step (state
# police), an agency with no part in it in the same territory (school), the state police of another
# territory, and no agency at all.
COLUMNS: tuple[str | None, ...] = ("health", "police", "school", "police_there", None)
Row = tuple[int, int, int, int, int]
DENIED: Row = (403, 403, 403, 403, 403)


def casework(professional: Row, supervisor: Row | None = None) -> dict[str, Row]:
    """Expected statuses of a case-data route: designers and administrators are refused outright."""
    return {"professional": professional, "supervisor": supervisor or professional, "designer": DENIED,
            "admin": DENIED}


def everyone(status: int) -> dict[str, Row]:
    """The same status for every user."""
    return {role: (status,) * 5 for role in ROLES}


# (method, rule) -> role -> status per column; plus the status without any token.
MATRIX: dict[tuple[str, str], tuple[dict[str, Row], int]] = {
    ("POST", "/api/v1/auth/token"): (everyone(200), 422),  # anonymous by design; without credentials: 422
    ("DELETE", "/api/v1/auth/token"): (everyone(200), 401),  # signs the calling (fresh) token out
    ("GET", "/api/v1/openapi.json"): (everyone(200), 200),
    ("GET", "/api/v1/me"): (everyone(200), 401),
    ("POST", "/api/v1/cases"): (casework((201, 201, 201, 403, 403)), 401),
    ("GET", "/api/v1/cases/<id:case_id>"): (
        casework((200, 200, 404, 404, 404), supervisor=(200, 200, 200, 404, 404)), 401),
    ("POST", "/api/v1/cases/<id:case_id>/incidents"): (
        casework((201, 201, 404, 404, 404), supervisor=(201, 201, 201, 404, 404)), 401),
    ("GET", "/api/v1/tasks"): (casework((200, 200, 200, 200, 200)), 401),
    ("GET", "/api/v1/tasks/<id:task_id>"): (casework((404, 200, 404, 404, 404)), 401),
    ("POST", "/api/v1/tasks/<id:task_id>/claim"): (casework((404, 200, 404, 404, 404)), 401),
    ("POST", "/api/v1/tasks/<id:task_id>/release"): (casework((404, 200, 404, 404, 404)), 401),
    ("POST", "/api/v1/tasks/<id:task_id>/complete"): (casework((404, 200, 404, 404, 404)), 401),
}


def api_routes(app: Flask) -> set[tuple[str, str]]:
    """Every (method, rule) the app serves under /api/v1."""
    return {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}


def user_name(agency: str | None, role: str) -> str:
    return f"{agency or 'none'}-{role}"


class Targets:
    """The case and task each route acts on; a fresh one after a call changed it."""

    def __init__(self, api: ApiWorld) -> None:
        self.api = api
        self.current: dict[str, dict[str, int]] = {}

    def params(self, rule: str) -> dict[str, int]:
        if rule not in self.current:
            case_id = self.api.register(user_name("health", "professional"))
            task_id = self.api.task_id(case_id, STEP)
            if rule.endswith("/release"):
                claimed = self.api.call(user_name("police", "professional"), "POST", f"/api/v1/tasks/{task_id}/claim")
                assert claimed.status_code == 200
            self.current[rule] = {"case_id": case_id, "task_id": task_id}
        return self.current[rule]

    def used(self, method: str, rule: str, status: int) -> None:
        if method == "POST" and status < 300:
            self.current.pop(rule, None)


def request_for(api: ApiWorld, targets: Targets, method: str, rule: str, user: str | None) -> tuple[str, Any]:
    """Return the path and a valid body of a call to `rule` by `user`."""
    params = targets.params(rule) if "<" in rule else {}
    path = rule
    for name, value in params.items():
        path = path.replace(f"<id:{name}>", str(value))
    body: Any = None
    if (method, rule) == ("POST", "/api/v1/auth/token"):
        body = {"username": user, "password": PASSWORD} if user else None
    elif rule == "/api/v1/cases":
        body = {"territory_id": api.territories["here"], "detection": detection()}
    elif rule.endswith("/incidents"):
        body = {"data": INCIDENT}
    elif rule.endswith("/complete"):
        body = {"data": COMPLAINT, "version": api.open_tasks(params["case_id"])[STEP].version}
    return path, body


def test_every_api_route_is_in_the_matrix(app: Flask) -> None:
    assert api_routes(app) == set(MATRIX)


def test_every_user_gets_exactly_the_expected_status_on_every_route(make_app: AppFactory, password_hash: str) -> None:
    api = build_world(make_app, password_hash)
    for agency in COLUMNS:
        for role, roles in ROLES.items():
            api.add_user(user_name(agency, role), agency, roles)
    assert api_routes(api.app) == set(MATRIX)
    targets = Targets(api)
    unexpected = []
    for (method, rule), (by_role, anonymous) in sorted(MATRIX.items()):
        calls: list[tuple[str | None, int]] = [(None, anonymous)]
        calls += [(user_name(agency, role), row[column]) for role, row in by_role.items()
                  for column, agency in enumerate(COLUMNS)]
        for user, expected in calls:
            path, body = request_for(api, targets, method, rule, user)
            if (method, rule) == ("POST", "/api/v1/auth/token"):  # signs in with a password, never with a token
                response = api.client.open(path, method=method, json=body)
            else:
                response = api.call(user, method, path, json=body)
            targets.used(method, rule, response.status_code)
            if response.status_code != expected:
                unexpected.append((method, rule, user, expected, response.status_code, response.get_json()))
    assert unexpected == []
