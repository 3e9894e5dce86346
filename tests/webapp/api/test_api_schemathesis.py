"""Schemathesis over the whole API (WSGI, no server), with a token: no server error, no schema violation.

Every operation of the OpenAPI document gets generated requests, valid and invalid, as a police
professional whose agency has open tasks (one claimed) on a case of her territory. Each answer must
be documented (status, content type, body schema), invalid data refused, never a 5xx. CI runs a
bounded, derandomized number of examples per operation; `COORDINA_SCHEMATHESIS_EXAMPLES` raises it
for a longer run.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.support.api import ApiWorld, agency_queue

EXAMPLES = int(os.environ.get("COORDINA_SCHEMATHESIS_EXAMPLES", "20"))


@pytest.fixture
def world(api: ApiWorld) -> ApiWorld:
    """The API world with a case registered: the police have tasks, one of them claimed by `police`."""
    api.register("health")
    queue = agency_queue(api, "police")
    claimed = api.call("police", "POST", f"/api/v1/tasks/{queue['police_report_to_court']['id']}/claim")
    assert claimed.status_code == 200, claimed.get_json()
    return api


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_answers_as_its_document_says(world: ApiWorld, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", world.app)
    headers = {"Authorization": f"Bearer {world.token('police')}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    document = world.call(None, "GET", "/api/v1/openapi.json").get_json()
    documented = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
                  if method != "parameters"}
    # Every operation of the document (but the document itself), none skipped for a schema it could not read.
    assert {operation.label for operation in operations} == documented - {"GET /api/v1/openapi.json"}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            case.call_and_validate(headers=headers)

        try:
            call()
        except (AssertionError, BaseExceptionGroup) as failure:  # every operation runs; all are reported at the end
            failures.append(f"{operation.label} ({mode}): {failure}\n" + "\n".join(
                str(inner) for inner in getattr(failure, "exceptions", ())))
    assert not failures, "\n\n".join(failures)
