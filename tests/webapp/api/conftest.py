"""API fixtures: the real processes/ and forms/ deployed, agencies in two territories, users with tokens."""

from __future__ import annotations

import pytest

from tests.support.api import AGENCIES, ROLES, ApiWorld, build_world
from tests.support.web import AppFactory


@pytest.fixture
def api(make_app: AppFactory, password_hash: str) -> ApiWorld:
    """The deployed protocol with one professional per agency (named like the agency) and a supervisor."""
    built = build_world(make_app, password_hash)
    for agency in AGENCIES:
        built.add_user(agency, agency, ROLES["professional"])
    built.add_user("police_2", "police", ROLES["professional"])
    built.add_user("police_boss", "police", ROLES["supervisor"])
    built.add_user("designer", "police", ROLES["designer"])
    built.add_user("nobody", None, ROLES["professional"])
    return built
