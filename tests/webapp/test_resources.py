"""The resources directory: the coordinator keeps it, professionals read it, forms offer it next to a referral."""

from __future__ import annotations

import re

import pytest

from engine.forms import check_form
from tests.support.web import Site
from tests.webapp.mesa_world import COMPLAINT, MesaWorld, build_mesa_world

ATENPRO = {"kind": "atenpro", "name": "ATENPRO Vegas (prueba)", "contact": "Tel. 900 000 999",
           "hours": "24 horas", "notes": ""}


@pytest.fixture
def world(site: Site, password_hash: str) -> MesaWorld:
    """Two territories with their Mesas."""
    return build_mesa_world(site, password_hash)


def test_the_coordinator_keeps_the_directory_and_professionals_read_it(world: MesaWorld) -> None:
    here = str(world.site.territories["here"])
    coordinator = world.browser("mesa")
    assert coordinator.post("/recursos/nuevo", {"territory": here, **ATENPRO}).status_code == 302
    listing = world.browser("social").get("/recursos").get_data(as_text=True)
    assert "ATENPRO Vegas (prueba)" in listing
    assert "Tel. 900 000 999" in listing
    assert "Añadir un recurso" not in listing
    refused = world.browser("social").post("/recursos/nuevo", {"territory": here, **ATENPRO})
    assert refused.status_code == 403
    assert world.site.audit("resource.save", username="social", outcome="denied")
    resource_id = re.search(r'data-resource="(\d+)"', listing).group(1)  # type: ignore[union-attr]
    changed = coordinator.post(f"/recursos/{resource_id}", {"territory": here, "version": "1",
                                                           **ATENPRO, "hours": "Lunes a viernes"})
    assert changed.status_code == 302
    stale = coordinator.post(f"/recursos/{resource_id}", {"territory": here, "version": "1", **ATENPRO})
    assert stale.status_code == 409
    assert "Lunes a viernes" in world.browser("social").get("/recursos").get_data(as_text=True)
    invalid = coordinator.post("/recursos/nuevo", {"territory": here, **ATENPRO, "kind": "casino", "name": ""})
    assert invalid.status_code == 422


def test_a_referral_field_offers_the_territory_resources_of_its_kind(world: MesaWorld) -> None:
    here = str(world.site.territories["here"])
    world.browser("mesa").post("/recursos/nuevo", {"territory": here, **ATENPRO})
    world.browser("mesa").post("/recursos/nuevo", {"territory": here, "kind": "shelter", "name": "Casa de la Mujer",
                                                   "contact": "A través del 016", "hours": "24 h", "notes": ""})
    case_id = world.site.open_case()
    world.complete(case_id, "police_report_to_court", COMPLAINT)
    world.assess(case_id, "medio")
    task = world.site.task(case_id, "social_assessment_care_plan")
    page = world.browser("social").get(f"/tareas/{task.id}").get_data(as_text=True)
    atenpro = re.search(r'<aside class="resources-hint" id="resources-atenpro".*?</aside>', page, re.S)
    shelter = re.search(r'<aside class="resources-hint" id="resources-shelter".*?</aside>', page, re.S)
    assert atenpro
    assert "ATENPRO Vegas (prueba)" in atenpro.group(0)
    assert "Casa de la Mujer" not in atenpro.group(0)
    assert shelter
    assert "Casa de la Mujer" in shelter.group(0)
    markers = ('id="f-atenpro-field"', 'id="resources-atenpro"', 'id="f-shelter-field"')
    order = [page.index(marker) for marker in markers]
    assert order == sorted(order)


def test_a_form_naming_an_unknown_resource_kind_or_field_is_refused() -> None:
    raw = {"title": "Derivación", "schema": {"type": "object", "properties": {"to": {"type": "string"}}},
           "ui": {"resources": {"to": ["casino"], "nowhere": ["shelter"]}}}
    messages = [p.message for p in check_form("derivacion", raw, file_name="derivacion.json")]
    assert any("ui.resources of 'to' must list resource kinds" in m for m in messages)
    assert any("ui.resources names unknown field 'nowhere'" in m for m in messages)

