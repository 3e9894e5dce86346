"""The real protocol (processes/, forms/) driven as the agencies would: detections, risk answers, a driver."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import FakeClock
from engine.deadlines import run_due_timers
from engine.execution import complete_task, start_case, start_process
from engine.forms import FormDefinition
from engine.models import Case, OpenTask, ProcessInstance, TaskEvent
from tests.support.world import World

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
FORMS = ROOT / "forms"
# Every risk indicator of the risk form (its sections before "Seguimiento"), all answered "no".
_RISK_FORM = json.loads((FORMS / "risk_assessment.json").read_text(encoding="utf-8"))
NO_RISK_INDICATORS = {
    name: False
    for section in _RISK_FORM["ui"]["sections"] if section["title"] != "Seguimiento"
    for name in section["fields"]
}
# Answer sets giving each level with the default risk_points / risk_level tables.
RISK_ANSWERS: dict[str, dict[str, bool]] = {
    "bajo": {"physical_violence": True},  # 2 points
    "medio": {"physical_violence": True, "escalation": True, "victim_fears_for_life": True},  # 8
    "alto": {"physical_violence": True, "escalation": True, "victim_fears_for_life": True, "threats_to_kill": True,
             "stalking": True, "aggressor_rejects_separation": True},  # 18
    "extremo": {"physical_violence": True, "escalation": True, "victim_fears_for_life": True, "threats_to_kill": True,
                "weapon_threat": True, "stalking": True, "aggressor_rejects_separation": True},  # 22 + critical
}


def detection(**overrides: Any) -> dict[str, Any]:
    """A synthetic detection by the health centre: no danger, no complaint, consent given."""
    data: dict[str, Any] = {
        "source_kind": "health_centre", "detected_on": "2026-03-02",
        "observed": "Lesiones compatibles con agresión; relato de control y aislamiento.",
        "immediate_danger": False, "injuries": False, "minors_present": False, "wants_to_report": True,
        "protection_order_requested": False, "consent_to_share": "yes",
    }
    data.update(overrides)
    return data


def risk_answers(level: str, **overrides: Any) -> dict[str, Any]:
    """Risk-form answers that compute to `level`."""
    return {**NO_RISK_INDICATORS, **RISK_ANSWERS[level], "in_person_contact": False,
            "court_measure_in_force": False, **overrides}


@dataclass
class Protocol:
    """Drive the real protocol as the agencies would, with a fake clock."""

    session: Session
    world: World
    clock: FakeClock
    forms: dict[str, FormDefinition]

    def open_case(self, data: Mapping[str, Any] | None = None, reporter: str = "health_centre") -> Case:
        case, _ = start_case(self.session, territory_id=self.world.territory.id, process_key="intake",
                             data=dict(data or detection()), now=self.clock.now(), actor=self.world.actor(reporter),
                             check_form=True)
        self.session.commit()
        return case

    def report_incident(self, case: Case, **overrides: Any) -> None:
        data = {"reported_by_kind": "social_services", "occurred_on": self.clock.now().date().isoformat(),
                "description": "Nuevo episodio de amenazas.", "complaint_filed": False, "immediate_danger": False}
        data.update(overrides)
        start_process(self.session, case, "incident", data, now=self.clock.now(),
                      actor=self.world.actor("social_services"), check_form=True)
        self.session.commit()

    def tasks(self, case: Case) -> dict[str, OpenTask]:
        rows = self.session.execute(select(OpenTask).where(OpenTask.case_id == case.id)).scalars()
        return {row.element_id: row for row in rows}

    def task(self, case: Case, element_id: str) -> OpenTask:
        tasks = self.tasks(case)
        assert element_id in tasks, f"{element_id} not open; open: {sorted(tasks)}"
        return tasks[element_id]

    def complete(self, case: Case, element_id: str, data: Mapping[str, Any]) -> None:
        task = self.task(case, element_id)
        assert task.agency_kind is not None
        complete_task(self.session, task.id, dict(data), expected_version=task.version, now=self.clock.now(),
                      actor=self.world.actor(task.agency_kind))
        self.session.commit()

    def assess(self, case: Case, assessment: str, review: str, level: str, final: str | None = None,
               **answers: Any) -> None:
        self.complete(case, assessment, risk_answers(level, **answers))
        final = final or level
        self.complete(case, review, {"final_level": final, "especial_relevancia": False, "minors_at_risk": False,
                                     **({"raise_reason": "Criterio profesional"} if final != level else {})})

    def apply_measures(self, case: Case) -> None:
        """Apply the police measures of the level, when that step is open."""
        if "apply_police_measures" in self.tasks(case):
            measures = self.run_data(case, "apply_police_measures")["required_measures"]
            self.complete(case, "apply_police_measures", {"measures_applied": measures, "weapons_withdrawn": True})

    def finish_protection(self, case: Case) -> None:
        """Complete the protection steps of the first days that are open (each its own line of work)."""
        today = self.clock.now().date().isoformat()
        tasks = self.tasks(case)
        self.apply_measures(case)
        if "personal_safety_plan" in tasks:
            self.complete(case, "personal_safety_plan", {
                "agreed_on": today, "emergency_contacts_set": True, "safe_places": True,
                "self_protection_advice": True, "plan_summary": "Plan acordado."})
        if "social_assessment_care_plan" in tasks:
            self.complete(case, "social_assessment_care_plan", {
                "assessed_on": today, "situation": "Vive con dos menores.", "atenpro": "requested",
                "psychological_care": True, "shelter": "none", "care_plan": "Seguimiento quincenal."})
        if "forensic_risk_report" in tasks:
            self.complete(case, "forensic_risk_report", {"report_date": today, "forensic_level": "alto"})

    def agency_followups(self, case: Case) -> None:
        """Complete the open social services and equality office follow-ups."""
        for element_id in ("social_services_followup", "equality_office_followup"):
            if element_id in self.tasks(case):
                self.complete(case, element_id, {"contact_type": "in_person", "situation": "Estable.",
                                                 "needs_change": False, "concern": False})

    def run_data(self, case: Case, element_id: str) -> dict[str, Any]:
        from engine.persistence import load_run

        task = self.task(case, element_id)
        instance = self.session.get(ProcessInstance, task.instance_id)
        assert instance is not None
        return load_run(self.session, instance)[0].task_data(task.task_guid)

    def timers(self) -> int:
        fired = run_due_timers(self.session, self.clock.now()).fired
        self.session.commit()
        return fired

    def instances(self, case: Case) -> list[tuple[str, str]]:
        rows = self.session.execute(select(ProcessInstance).where(ProcessInstance.case_id == case.id)
                                    .order_by(ProcessInstance.id)).scalars()
        return [(r.process_key, r.status) for r in rows]

    def history(self, case: Case, action: str) -> list[TaskEvent]:
        return list(self.session.execute(select(TaskEvent).where(TaskEvent.case_id == case.id,
                                                                 TaskEvent.action == action)).scalars())

    def followup_cycle(self, case: Case, level: str, **answers: Any) -> None:
        """Complete one police cycle (re-assessment and review, then the new measures) and the agencies' follow-ups."""
        self.assess(case, "police_reassessment", "reassessment_review", level, **answers)
        self.apply_measures(case)
        self.agency_followups(case)

    def running(self, case: Case) -> list[str]:
        """Return the keys of the case's running instances, sorted."""
        return sorted(key for key, status in self.instances(case) if status == "running")


# The police report sent to court (police_report_to_court), as the police answer it.
COMPLAINT = {"complaint_received_at": "2026-03-02T10:00:00+01:00", "report_number": "AT-2026-001",
             "sent_to_court": True}
