"""Synthetic answers to the protocol's forms for the demo history: the detection, then each step's form.

The risk levels follow the national mix and about one victim in five refuses to share her data
(processes/README.md, "Datos de demostración", says where the proportions come from). Every answer is
synthetic: no real person appears in it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.forms import FormDefinition
from engine.models import Case, OpenTask, ProcessInstance
from engine.persistence import load_run

LEVELS = ("bajo", "medio", "alto", "extremo")
# Active assessed cases by level in Spain at the end of 2024 (Interior Ministry, VioGén; DOMAIN.md section 8):
# a first assessment draws its level in these proportions (76% bajo, 22% medio, 1.4% alto, 0.04% extremo).
NATIONAL_LEVEL_COUNTS = {"bajo": 44_000, "medio": 13_000, "alto": 800, "extremo": 23}
# A periodic re-assessment mostly confirms the level or lowers it as the measures take hold; an incident
# raises it by one level half of the time.
PERIODIC_UP, PERIODIC_DOWN, INCIDENT_UP = 0.05, 0.25, 0.5
# Risk-form indicators that compute to each level with the default risk_points / risk_level tables, several
# per level so that the cases do not all read alike (points in brackets; "critical" is strangulation, or death
# threats with a weapon).
RISK_PROFILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "bajo": (
        ("physical_violence",),  # 2
        ("aggressor_control_jealousy", "victim_economic_dependence", "victim_isolated"),  # 4
        ("physical_violence", "recent_separation", "minors_witnessed"),  # 5
        ("previous_complaints", "aggressor_substance_abuse", "threats_via_others"),  # 6
    ),
    "medio": (
        ("physical_violence", "escalation", "victim_fears_for_life"),  # 8
        ("aggressor_control_jealousy", "stalking", "recent_separation", "victim_isolated",
         "victim_economic_dependence"),  # 9
        ("physical_violence", "threats_to_kill", "aggressor_substance_abuse", "custody_conflict",
         "minors_witnessed"),  # 11
        ("previous_complaints", "order_breach", "aggressor_rejects_separation", "victim_fears_for_life",
         "threats_via_others"),  # 13
    ),
    "alto": (
        ("physical_violence", "escalation", "victim_fears_for_life", "threats_to_kill", "stalking",
         "aggressor_rejects_separation"),  # 18
        ("strangulation", "physical_violence", "victim_fears_for_life"),  # 10 with a critical indicator
        ("physical_violence", "sexual_violence", "escalation", "order_breach", "aggressor_suicide_threats",
         "recent_separation", "minors_threatened"),  # 19
    ),
    "extremo": (
        ("physical_violence", "escalation", "victim_fears_for_life", "threats_to_kill", "weapon_threat",
         "stalking", "aggressor_rejects_separation"),  # 22 with a critical indicator
        ("strangulation", "physical_violence", "escalation", "victim_fears_for_life", "recent_separation",
         "aggressor_rejects_separation"),  # 18 with a critical indicator
        ("physical_violence", "sexual_violence", "escalation", "threats_to_kill", "stalking",
         "aggressor_rejects_separation", "victim_fears_for_life", "order_breach", "aggressor_suicide_threats",
         "minors_threatened"),  # 30
    ),
}
RISK_FORM_FACTS = ("in_person_contact", "court_measure_in_force")
# An assumption, not a published figure: about one victim in five does not consent to her data being shared.
# When she is in immediate danger, the police share them anyway on a legal basis (the risk to her life).
CONSENT_REFUSED_SHARE = 0.2
LEGAL_BASIS = "Riesgo para la vida de la víctima (art. 9.2.c RGPD; dato sintético)."
DETECTION_SOURCES = ("health_centre", "state_police", "social_services", "school", "equality_office",
                     "family_neighbour", "victim_self")


class FormAnswers:
    """Answers each form of a simulated case, remembering each case's risk level from one form to the next."""

    def __init__(self, session: Session, rng: random.Random, forms: Mapping[str, FormDefinition]) -> None:
        self.session, self.rng, self.forms = session, rng, forms
        self.levels: dict[int, str] = {}
        self.pending_level: dict[int, str] = {}
        self.extreme: set[int] = set()  # cases kept at extremo, so that the Mesa and the board have one to show
        self.level_changes = 0

    def detection(self, now: datetime) -> dict[str, Any]:
        """Return a synthetic detection that opens a case (the intake form)."""
        rng = self.rng
        source = rng.choice(DETECTION_SOURCES)
        minors = rng.random() < 0.3
        wants_to_report = rng.random() < 0.6
        data: dict[str, Any] = {
            "source_kind": source, "detected_on": now.date().isoformat(),
            "observed": rng.choice(("Lesiones visibles; relata control económico.", "Insultos y amenazas reiteradas.",
                                    "Acude angustiada tras una discusión violenta.", "Vecinas oyen golpes.")),
            "immediate_danger": rng.random() < 0.15, "injuries": rng.random() < 0.3, "minors_present": minors,
            "wants_to_report": wants_to_report,
            "protection_order_requested": wants_to_report and rng.random() < 0.3, "consent_to_share": "yes",
        }
        if rng.random() < CONSENT_REFUSED_SHARE:
            data["consent_to_share"] = "legal_basis" if data["immediate_danger"] else "no"
            if data["immediate_danger"]:
                data["legal_basis"] = LEGAL_BASIS
        if minors:
            data["minors_count"] = rng.randint(1, 3)
        return data

    def answer(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        """Return a valid, synthetic answer to the task's form."""
        answer = getattr(self, f"_form_{task.form}", None)
        if answer is None:
            raise RuntimeError(f"the demo history cannot answer the form {task.form!r} of {task.element_id}")
        result: dict[str, Any] = answer(task, now)
        return result

    def _run_data(self, task: OpenTask) -> dict[str, Any]:
        instance = self.session.get(ProcessInstance, task.instance_id)
        if instance is None:
            raise RuntimeError(f"task {task.id} has no process instance")
        return load_run(self.session, instance)[0].task_data(task.task_guid)

    def _form_risk_assessment(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        current = self.levels.get(task.case_id)
        if current is None:
            level = self.rng.choices(LEVELS, weights=[NATIONAL_LEVEL_COUNTS[name] for name in LEVELS])[0]
        else:
            incident = task.element_id.startswith("incident")
            up, down = (INCIDENT_UP, 0.0) if incident else (PERIODIC_UP, PERIODIC_DOWN)
            step = self.rng.random()
            index = LEVELS.index(current) + (1 if step < up else -1 if step < up + down else 0)
            level = LEVELS[min(max(index, 0), len(LEVELS) - 1)]
        if task.case_id in self.extreme:
            level = LEVELS[-1]
        self.pending_level[task.case_id] = level
        indicators = [name for name, spec in self.forms["risk_assessment"].schema["properties"].items()
                      if spec.get("type") == "boolean" and name not in RISK_FORM_FACTS]
        case = self.session.get(Case, task.case_id)
        profile = self.rng.choice(RISK_PROFILES[level])
        return {**{name: name in profile for name in indicators},
                "in_person_contact": self.rng.random() < 0.6,
                "court_measure_in_force": bool(case and case.facts.get("court_measure_in_force"))}

    def _form_risk_review(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        computed = self.pending_level.get(task.case_id) or str(self._run_data(task)["computed_level"])
        final = computed
        answer: dict[str, Any] = {"especial_relevancia": self.rng.random() < 0.1,
                                  "minors_at_risk": self.rng.random() < 0.1}
        if computed != LEVELS[-1] and self.rng.random() < 0.08:
            final = LEVELS[LEVELS.index(computed) + 1]
            answer["raise_reason"] = "Criterio profesional: aumento del control (dato sintético)."
        previous = self.levels.get(task.case_id)
        if previous is not None and previous != final:
            self.level_changes += 1
        self.levels[task.case_id] = final
        return {"final_level": final, **answer}

    def _form_police_measures(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"measures_applied": list(self._run_data(task)["required_measures"]), "weapons_withdrawn": True}

    def _form_urgent_intervention(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"arrived_at": _stamp(now - timedelta(minutes=20)), "victim_safe": True,
                "aggressor_detained": self.rng.random() < 0.5, "actions": "Patrulla en el domicilio; víctima a salvo."}

    def _form_police_report(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"complaint_received_at": _stamp(now - timedelta(hours=2)), "report_number": f"AT-SIM-{task.id:06d}",
                "sent_to_court": True}

    def _form_protocol_zero(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"testimonies_collected": self.rng.randint(1, 4), "testimony_summary": "Familia y vecindario.",
                "protection_without_complaint": True, "report_to_prosecutor": self.rng.random() < 0.5}

    def _form_safety_plan(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"agreed_on": now.date().isoformat(), "emergency_contacts_set": True, "safe_places": True,
                "self_protection_advice": True, "plan_summary": "Plan de seguridad acordado."}

    def _form_social_care_plan(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"assessed_on": now.date().isoformat(), "situation": "Vive sola; red de apoyo escasa.",
                "atenpro": self.rng.choice(("not_needed", "requested", "active")),
                "psychological_care": self.rng.random() < 0.6,
                "shelter": self.rng.choice(("none", "none", "none", "casa_mujer")), "care_plan": "Seguimiento."}

    def _form_forensic_report(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        level = self.levels.get(task.case_id) or "medio"
        return {"report_date": now.date().isoformat(), "forensic_level": level}

    def _form_injury_report(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"issued_on": now.date().isoformat(), "sent_to_court": True, "victim_informed": True}

    def _form_protection_order_hearing(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        granted = self.rng.random() < 0.7
        return {"hearing_held_at": _stamp(now), "order_granted": granted,
                "measures": ["restraining_order", "communication_ban"] if granted else []}

    def _form_hearing_chase(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"court_contacted": True, "outcome": "El juzgado fija la comparecencia."}

    def _form_order_notification(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"notified_at": _stamp(now)}

    def _form_order_dissemination(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"informed_agencies": ["state_police", "social_services", "health_centre"], "informed_at": _stamp(now)}

    def _followup(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"contact_type": self.rng.choice(("in_person", "phone", "phone", "none")),
                "situation": "Sin cambios relevantes.", "needs_change": False, "concern": self.rng.random() < 0.1}

    _form_followup_social = _followup
    _form_followup_equality = _followup

    def _form_ordinary_inactivation(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        if self.rng.random() < 0.25:  # the police see reasons to keep following the case
            return {"decision": "keep", "reason": "Se mantiene el seguimiento (dato sintético)."}
        return {"decision": "inactivate", "confirm_low_risk": True, "confirm_no_court_measure": True,
                "confirm_in_person_contact": True, "reason": "Riesgo bajo sostenido."}

    def _form_civil_measures_review(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        return {"family_proceeding_started": self.rng.random() < 0.6}

    def _form_supervised_inactivation_review(self, task: OpenTask, now: datetime) -> dict[str, Any]:
        data = self._run_data(task)
        extend = data.get("extensions_used", 0) < data.get("max_extensions", 0) and self.rng.random() < 0.5
        return {"decision": "extend" if extend else "inactivate", "reason": "Revisión de la Mesa."}


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="seconds")
