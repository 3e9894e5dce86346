"""A simulated history for the demo: cases driven through the real protocol on a fake clock.

`flask demo generate` opens cases on random days of the last D days and lets each agency answer its
steps after a random delay (some after the deadline), reports a few new incidents and fires the due
timers as the simulated clock moves on, so the supervisor's board has months of history to show.
Every answer is synthetic (no real person appears); the same seed and end time give the same history.
The risk levels follow the national mix and about one victim in five refuses to share her data
(processes/README.md, "Datos de demostración", says where the proportions come from).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.clock import FakeClock
from engine.deadlines import run_due_timers
from engine.definitions import latest_forms
from engine.execution import complete_task, start_case, start_process
from engine.forms import FormDefinition
from engine.models import Agency, Case, DueTimer, OpenTask, ProcessInstance, Territory, UserAccount, agency_territory
from engine.persistence import load_run, lock_case
from engine.tasks import claim_task
from webapp.demo import TERRITORIES

INTAKE, INCIDENT = "intake", "incident"
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
# Invented shares of steps each agency kind finishes in time, so that the board has something to compare.
ON_TIME_SHARE = {"state_police": 0.85, "social_services": 0.7, "court": 0.6, "health_centre": 0.8,
                 "equality_office": 0.75}
DEFAULT_ON_TIME_SHARE = 0.75
CLAIM_SHARE = 0.5  # steps a member claims as soon as they appear (the rest are done from the agency queue)
INCIDENT_SHARE = 0.25  # cases with a new incident some time after the detection
# An assumption, not a published figure: about one victim in five does not consent to her data being shared.
# When she is in immediate danger, the police share them anyway on a legal basis (the risk to her life).
CONSENT_REFUSED_SHARE = 0.2
LEGAL_BASIS = "Riesgo para la vida de la víctima (art. 9.2.c RGPD; dato sintético)."
DETECTION_SOURCES = ("health_centre", "state_police", "social_services", "school", "equality_office",
                     "family_neighbour", "victim_self")
INCIDENT_REPORTERS = ("social_services", "health_centre", "state_police", "equality_office")
UNDATED_DELAY_HOURS = (2, 72)
LATENESS_HOURS = (1, 48)  # how late a late step usually is
LONG_DELAY_SHARE, LONG_DELAY_DAYS = 0.3, (3, 30)  # and some late steps wait for weeks
TIMER_GRACE = timedelta(seconds=1)


@dataclass
class HistoryReport:
    """What `generate_history` did (or why it did nothing)."""

    already_present: bool = False
    cases: int = 0
    completed: int = 0
    completed_late: int = 0
    open_late: int = 0
    incidents: int = 0
    timers_fired: int = 0
    level_changes: int = 0
    notes: list[str] = field(default_factory=list)


def generate_history(
    session: Session, *, cases: int, days: int, seed: int, until: datetime, checkpoint: Callable[[], None],
) -> HistoryReport:
    """Drive `cases` cases through the deployed protocol over the `days` before `until`.

    Needs the demo territories, agencies and users (`seed_demo`). Does nothing when the database
    already holds a case older than a day (a history is there). `checkpoint` is called after each
    simulated day (the CLI commits there); the caller commits the rest.
    """
    report = HistoryReport()
    older = session.execute(select(Case.id).where(Case.created_at < until - timedelta(days=1)).limit(1)).first()
    if older is not None:
        report.already_present = True
        return report
    rng = random.Random(seed)  # noqa: S311 - synthetic demo data, not cryptography
    _Simulation(session, rng, latest_forms(session), until, report).run(cases, days, checkpoint)
    return report


@dataclass(order=True)
class _Event:
    when: datetime
    seq: int
    kind: str = field(compare=False)  # "open" | "step" | "incident"
    target: int = field(compare=False)  # case number, task id or case id
    guid: str = field(compare=False, default="")  # a step's task guid (a migrated SQLite database reuses task ids)


class _Simulation:
    """The simulated world: who works in which agency, what each case's level is, what happens when."""

    def __init__(self, session: Session, rng: random.Random, forms: Mapping[str, FormDefinition], until: datetime,
                 report: HistoryReport) -> None:
        self.session, self.rng, self.forms, self.until, self.report = session, rng, forms, until, report
        codes = [spec.code for spec in TERRITORIES]
        self.territories = list(session.execute(
            select(Territory.id).where(Territory.code.in_(codes)).order_by(Territory.id)).scalars())
        if len(self.territories) != len(codes):
            raise RuntimeError("the demo territories are missing: run `flask demo seed` first")
        self.members: dict[int, list[Actor]] = {}
        for user in session.execute(select(UserAccount).where(UserAccount.active.is_(True), UserAccount.agency_id
                                                              .is_not(None)).order_by(UserAccount.id)).scalars():
            self.members.setdefault(user.agency_id or 0, []).append(
                Actor(user_id=user.id, name=user.username, agency_id=user.agency_id, roles=frozenset(user.roles)))
        self.agency_of: dict[tuple[int, str], int] = {
            (territory, kind): agency for agency, kind, territory in session.execute(
                select(Agency.id, Agency.kind, agency_territory.c.territory_id)
                .join(agency_territory, agency_territory.c.agency_id == Agency.id).order_by(Agency.id))
        }
        self.events: list[_Event] = []
        self.seq = 0
        self.case_ids: set[int] = set()
        self.planned: set[str] = set()
        self.workers: dict[str, Actor] = {}
        self.levels: dict[int, str] = {}
        self.extreme: dict[int, int] = {}  # case id -> territory
        self.pending_level: dict[int, str] = {}
        self.clock = FakeClock(until)

    # --- The loop ---------------------------------------------------------------------------------
    def run(self, cases: int, days: int, checkpoint: Callable[[], None]) -> None:
        """Open the cases on random days and move the clock from event to event up to `until`."""
        start = self.until - timedelta(days=days)
        self.clock.set(start)
        span = days * 86400 * 0.97  # the last hours open no case: they would have nothing to show yet
        for number, offset in enumerate(sorted(self.rng.uniform(0, span) for _ in range(cases)), start=1):
            self._push(start + timedelta(seconds=offset), "open", number)
        day = start.date()
        while True:
            next_timer = self.session.execute(select(func.min(DueTimer.fire_at))).scalar_one_or_none()
            if next_timer is not None:
                # SpiffWorkflow's timers expire strictly after their time: fire them a second later.
                next_timer += TIMER_GRACE
            candidates = [t for t in (self.events[0].when if self.events else None, next_timer) if t is not None]
            if not candidates or min(candidates) > self.until:
                break
            now = max(min(candidates), self.clock.now())
            self.clock.set(now)
            if now.date() != day:
                day = now.date()
                checkpoint()
            if next_timer is not None and next_timer <= now:
                timers = run_due_timers(self.session, now)
                self.report.timers_fired += timers.fired
                self.report.notes.extend(timers.errors)
            while self.events and self.events[0].when <= now:
                event = heapq.heappop(self.events)
                if event.kind == "step":
                    self._do_step(event.target, event.guid, now)
                elif event.kind == "open":
                    self._open_case(event.target, now)
                else:
                    self._report_incident(event.target, now)
            self._plan_new_steps(now)
        self.report.open_late = self.session.execute(
            select(func.count()).select_from(OpenTask)
            .where(OpenTask.case_id.in_(self.case_ids), OpenTask.due_at < self.until)
        ).scalar_one() if self.case_ids else 0

    def _push(self, when: datetime, kind: str, target: int, guid: str = "") -> None:
        self.seq += 1
        heapq.heappush(self.events, _Event(when, self.seq, kind, target, guid))

    # --- Cases and incidents ----------------------------------------------------------------------
    def _open_case(self, number: int, now: datetime) -> None:
        territory = self.territories[0] if number % 3 else self.territories[-1]
        data = self._detection(now)
        reporter = self._member(self.agency_of.get((territory, data["source_kind"])))
        case, _ = start_case(
            self.session, territory_id=territory, process_key=INTAKE, data=data, now=now,
            actor=reporter or Actor.system("demo"), check_form=True,
            victim={"name": f"Persona ficticia V-H{number:03d}", "synthetic": True},
            aggressor={"name": f"Persona ficticia A-H{number:03d}", "synthetic": True},
        )
        self.case_ids.add(case.id)
        if territory not in self.extreme.values():
            self.extreme[case.id] = territory  # the first case of each territory stays at extremo: the Mesa reviews it
        self.report.cases += 1
        if self.rng.random() < INCIDENT_SHARE:
            self._push(now + timedelta(days=self.rng.uniform(12, 90)), "incident", case.id)

    def _detection(self, now: datetime) -> dict[str, Any]:
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

    def _report_incident(self, case_id: int, now: datetime) -> None:
        """Report a new incident, once the case is past its intake or earlier incident."""
        busy = self.session.execute(select(ProcessInstance.id).where(
            ProcessInstance.case_id == case_id, ProcessInstance.status == "running",
            ProcessInstance.process_key.in_((INTAKE, INCIDENT))).limit(1)).first()
        if busy is not None:  # intake and incident end at once since the tracks (kept for older versions)
            self._push(now + timedelta(days=3), "incident", case_id)
            return
        case = lock_case(self.session, case_id)
        kind = self.rng.choice(INCIDENT_REPORTERS)
        data = {"reported_by_kind": kind, "occurred_on": (now - timedelta(days=self.rng.randint(0, 2))).date()
                .isoformat(), "description": "Nuevo episodio de amenazas (dato sintético).",
                "complaint_filed": self.rng.random() < 0.4, "immediate_danger": self.rng.random() < 0.2}
        reporter = self._member(self.agency_of.get((case.territory_id, kind)))
        start_process(self.session, case, INCIDENT, data, now=now, actor=reporter or Actor.system("demo"),
                      check_form=True)
        self.report.incidents += 1

    # --- Steps ------------------------------------------------------------------------------------
    def _plan_new_steps(self, now: datetime) -> None:
        """Decide who does each new step of our cases and when (some claim it at once)."""
        if not self.case_ids:
            return
        query = select(OpenTask).where(OpenTask.case_id.in_(self.case_ids)).order_by(OpenTask.id)
        for task in self.session.execute(query).scalars():
            if task.task_guid in self.planned:
                continue
            self.planned.add(task.task_guid)
            member = self._member(task.agency_id)
            if member is None:
                continue  # no agency of that kind in the territory: the step waits
            if self.rng.random() < CLAIM_SHARE:
                claim_task(self.session, task.id, now=now, actor=member, expected_version=task.version)
            self.workers[task.task_guid] = member
            when = self._when_done(task, now)
            if when <= self.until:
                self._push(when, "step", task.id, task.task_guid)

    def _when_done(self, task: OpenTask, now: datetime) -> datetime:
        rng = self.rng
        begin = max(now, task.visible_from)
        if task.due_at is None:
            return begin + timedelta(hours=rng.uniform(*UNDATED_DELAY_HOURS))
        window = max(task.due_at - begin, timedelta(hours=1))
        if rng.random() < ON_TIME_SHARE.get(task.agency_kind or "", DEFAULT_ON_TIME_SHARE):
            return begin + window * rng.uniform(0.05, 0.95)
        if rng.random() < LONG_DELAY_SHARE:
            return task.due_at + timedelta(days=rng.uniform(*LONG_DELAY_DAYS))
        return task.due_at + timedelta(hours=rng.uniform(*LATENESS_HOURS))

    def _do_step(self, task_id: int, guid: str, now: datetime) -> None:
        task = self.session.execute(select(OpenTask).where(OpenTask.id == task_id)).scalar_one_or_none()
        if task is None or task.task_guid != guid:
            return  # cancelled meanwhile (a new incident replaced its cycle)
        data = self._answer(task, now)
        complete_task(self.session, task.id, data, expected_version=task.version, now=now,
                      actor=self.workers[guid])
        self.report.completed += 1
        if task.due_at is not None and now > task.due_at:
            self.report.completed_late += 1

    def _member(self, agency_id: int | None) -> Actor | None:
        """Pick a member of the agency (the professional or the supervisor) as the engine's actor."""
        members = self.members.get(agency_id or 0)
        return self.rng.choice(members) if members else None

    # --- Answers to each form ---------------------------------------------------------------------
    def _answer(self, task: OpenTask, now: datetime) -> dict[str, Any]:
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
            self.report.level_changes += 1
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
