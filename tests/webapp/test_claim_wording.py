"""Taking and giving back a task are worded so as not to clash with the step "Reclamar la comparecencia"."""

from __future__ import annotations

import re

from tests.support.protocol import COMPLAINT
from tests.support.web import Site

ASSESSMENT = "police_risk_assessment"


def buttons(html: str) -> list[str]:
    """Return the visible text of the page's buttons (hidden context left out)."""
    return [re.sub(r"<span class=\"visually-hidden\">.*?</span>", "", b).strip()
            for b in re.findall(r"<button[^>]*>(.*?)</button>", html, re.S)]


def test_a_task_is_assigned_to_me_and_returned_to_the_queue(site: Site) -> None:
    case_id = site.open_case()
    site.complete(case_id, "police_report_to_court", COMPLAINT)
    task_id = site.task(case_id, ASSESSMENT).id
    police = site.browser("policia")
    for page in (police.get("/").get_data(as_text=True), police.get(f"/tareas/{task_id}").get_data(as_text=True)):
        assert "Asignármela" in buttons(page)
        assert "Reclamar" not in buttons(page)
    version = re.search(r'name="version" value="(\d+)"', police.get(f"/tareas/{task_id}").get_data(as_text=True))
    assert version is not None
    assert police.post(f"/tareas/{task_id}/reclamar", {"version": version.group(1)}).status_code == 302
    page = police.get(f"/tareas/{task_id}").get_data(as_text=True)
    assert "Devolver a la cola" in buttons(page)
    assert "Liberar" not in buttons(page)
