"""A designer's hostile script: refused by "Validar" when provable, stopped by "Probar", the server answering."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine import budget
from tests.support.web import ROOT, Browser, Site

PREPARE = 'reason = value("reason", "periodic")'
SCENARIO = {"case": {"risk_level": "medio"}, "data": {"reason": "periodic"}, "steps": []}


@pytest.fixture(autouse=True)
def small_budget() -> Iterator[None]:
    """A 0.2 s CPU budget per evaluation, so the hostile try ends quickly."""
    before = budget.current_limits()
    budget.configure(budget.Limits(cpu_seconds=0.2, memory_bytes=64 * 2**20))
    yield
    budget.configure(before)


def save_followup_draft(designer: Browser, script: str) -> None:
    """Save a draft of the real follow-up whose first script starts with `script`."""
    text = (ROOT / "processes" / "followup.bpmn").read_text(encoding="utf-8")
    assert PREPARE in text
    answer = designer.client.post("/designer/borradores/followup.bpmn",
                                  json={"content": text.replace(PREPARE, f"{script}\n{PREPARE}"), "version": None},
                                  headers={"X-CSRFToken": designer.token})
    assert answer.status_code == 200, answer.get_data(as_text=True)


def validate(designer: Browser) -> Any:
    return designer.client.post("/designer/validar", json={}, headers={"X-CSRFToken": designer.token}).json


@pytest.mark.parametrize("script", ["while True:\n    pass", "spin = 10**10**10", "spin = 'a' * 10**10"])
def test_validar_refuses_a_provably_unbounded_script(site: Site, script: str) -> None:
    designer = site.browser("disenadora")
    save_followup_draft(designer, script)
    checked = validate(designer)
    assert checked["valid"] is False
    [problem] = checked["problems"]
    assert (problem["file"], problem["element_id"]) == ("followup.bpmn", "followup_prepare")


def test_probar_stops_a_hostile_script_while_the_server_keeps_answering(site: Site) -> None:
    designer = site.browser("disenadora")
    save_followup_draft(designer, "spin = sum(x for x in range(10**12))")
    assert validate(designer)["valid"] is True  # nothing to prove before it runs
    pages: list[Any] = []
    trying = threading.Thread(target=lambda: pages.append(designer.post("/designer/probar", {
        "process": "followup", "territory": str(site.territories["here"]), "scenario": json.dumps(SCENARIO)})),
        daemon=True)
    monitor = site.browser()
    trying.start()
    health = []
    while trying.is_alive() and len(health) < 200:
        health.append(monitor.get("/healthz").status_code)
        time.sleep(0.02)
    trying.join(timeout=30)
    assert not trying.is_alive(), "the try never ended"
    assert health, "the try ended before the server was asked anything"
    assert set(health) == {200}
    [page] = pages
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "followup_prepare" in html
    assert "CPU-time budget of 0.2 s" in html
    assert monitor.get("/healthz").status_code == 200
    assert site.browser("policia").get("/").status_code == 200  # signing in still works
    [event] = site.audit("definition.try")
    assert event.outcome == "failed"
