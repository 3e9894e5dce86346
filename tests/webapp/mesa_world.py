"""A Site with the Mesa de Coordinación: a Mesa in each territory, coordinators, and a case driver."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from engine.actor import Actor
from engine.execution import complete_task, start_process
from engine.models import Agency, Meeting, Mesa, OpenTask, ProcessInstance, UserAccount
from engine.persistence import load_run
from tests.support.protocol import risk_answers
from tests.support.web import Browser, Site
from webapp.extensions import db
from webapp.mesa.schedule import create_mesa

COMPLAINT = {"complaint_received_at": "2026-03-02T10:00:00+01:00", "report_number": "AT-2026-001",
             "sent_to_court": True}
# Extra people: the coordination here and there, and agencies of the other territory.
EXTRA: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "mesa": ("mesa_coordinator", "here", ("professional",)),
    "mesa.madrid": ("mesa_coordinator", "there", ("professional",)),
    "social.madrid": ("social_services", "there", ("professional",)),
}


@dataclass
class MesaWorld:
    """The Site, its two Mesas and the extra users (username -> (user id, agency id, roles))."""

    site: Site
    here: int
    there: int
    people: dict[str, tuple[int, int, tuple[str, ...]]]

    def actor(self, username: str) -> Actor:
        """Return the engine actor of any user of the world."""
        if username in self.people:
            user_id, agency_id, roles = self.people[username]
            return Actor(user_id=user_id, name=username, agency_id=agency_id, roles=frozenset(roles))
        return self.site.actor(username)

    def browser(self, username: str) -> Browser:
        """Return a client signed in as `username`."""
        return self.site.browser(username)

    def complete(self, case_id: int, element_id: str, data: dict[str, Any], username: str | None = None) -> None:
        """Complete a step as a member of its agency."""
        task = self.site.task(case_id, element_id)
        with self.site.app.app_context():
            user = db.session.execute(select(UserAccount).where(UserAccount.agency_id == task.agency_id)
                                      .order_by(UserAccount.id)).scalars().first() if username is None else None
            if username:
                actor = self.actor(username)
            elif user is not None:
                actor = Actor(user_id=user.id, name=user.username, agency_id=user.agency_id,
                              roles=frozenset(user.roles))
            else:  # an agency without accounts in the test world (the court)
                actor = Actor(user_id=None, name="tests", agency_id=task.agency_id, roles=frozenset({"professional"}))
            complete_task(db.session(), task.id, data, expected_version=task.version, now=self.site.clock.now(),
                          actor=actor)
            db.session.commit()

    def run_data(self, case_id: int, element_id: str) -> dict[str, Any]:
        """Return the workflow data a step sees."""
        task = self.site.task(case_id, element_id)
        with self.site.app.app_context():
            instance = db.session.get(ProcessInstance, task.instance_id)
            return load_run(db.session(), instance)[0].task_data(task.task_guid)

    def assess(self, case_id: int, level: str, steps: tuple[str, str] = ("police_risk_assessment",
                                                                          "reassessment_review")) -> None:
        """Answer the risk form for `level` and confirm it."""
        self.complete(case_id, steps[0], risk_answers(level))
        self.complete(case_id, steps[1], {"final_level": level, "especial_relevancia": False, "minors_at_risk": False})

    def through_intake(self, level: str) -> int:
        """Open a case (with a complaint), assess it at `level` and finish its protection steps."""
        case_id = self.site.open_case()
        self.complete(case_id, "police_report_to_court", COMPLAINT)
        self.assess(case_id, level)
        self.finish(case_id)
        return case_id

    def finish(self, case_id: int) -> None:
        """Complete the protection steps that are open."""
        today = self.site.clock.now().date().isoformat()
        tasks = self.site.tasks(case_id)
        if "apply_police_measures" in tasks:
            measures = self.run_data(case_id, "apply_police_measures")["required_measures"]
            self.complete(case_id, "apply_police_measures", {"measures_applied": measures, "weapons_withdrawn": True})
        if "personal_safety_plan" in tasks:
            self.complete(case_id, "personal_safety_plan", {
                "agreed_on": today, "emergency_contacts_set": True, "safe_places": True,
                "self_protection_advice": True, "plan_summary": "Plan acordado."})
        if "social_assessment_care_plan" in tasks:
            self.complete(case_id, "social_assessment_care_plan", {
                "assessed_on": today, "situation": "Estable.", "atenpro": "requested", "psychological_care": True,
                "shelter": "none", "care_plan": "Seguimiento."})
        if "forensic_risk_report" in tasks:
            self.complete(case_id, "forensic_risk_report", {"report_date": today, "forensic_level": "alto"})

    def incident(self, case_id: int, **overrides: Any) -> None:
        """Report a new incident in a case (as social services)."""
        data = {"reported_by_kind": "social_services", "occurred_on": self.site.clock.now().date().isoformat(),
                "description": "Nuevo episodio de amenazas.", "complaint_filed": False, "immediate_danger": False,
                **overrides}
        with self.site.app.app_context():
            from engine.models import Case

            case = db.session.get(Case, case_id)
            start_process(db.session(), case, "incident", data, now=self.site.clock.now(),
                          actor=self.site.actor("social"), check_form=True)
            db.session.commit()

    def next_meeting(self, mesa_id: int | None = None) -> int:
        """Return the id of the Mesa's earliest planned or open meeting."""
        with self.site.app.app_context():
            return db.session.execute(
                select(Meeting.id).where(Meeting.mesa_id == (mesa_id or self.here),
                                         Meeting.status.in_(("planned", "open")))
                .order_by(Meeting.scheduled_at, Meeting.id).limit(1)).scalar_one()

    def tasks_of_agency(self, agency_id: int) -> list[OpenTask]:
        """Return the open tasks of an agency."""
        with self.site.app.app_context():
            return list(db.session.execute(select(OpenTask).where(OpenTask.agency_id == agency_id)).scalars())


def build_mesa_world(site: Site, password_hash: str) -> MesaWorld:
    """Add the coordination agencies' users, agencies of the other territory, and a Mesa in each territory."""
    people: dict[str, tuple[int, int, tuple[str, ...]]] = {}
    with site.app.app_context():
        session = db.session()
        for kind in ("mesa_coordinator", "social_services"):
            if (kind, "there") not in site.agencies:
                agency = Agency(name=f"{kind} de Madrid Centro", kind=kind, active=True)
                from engine.models import Territory

                agency.territories = [session.get(Territory, site.territories["there"])]
                session.add(agency)
                session.flush()
                site.agencies[(kind, "there")] = agency.id
        for username, (kind, where, roles) in EXTRA.items():
            agency_id = site.agencies[(kind, where)]
            user = UserAccount(username=username, display_name=f"{username} (prueba)", roles=list(roles),
                               agency_id=agency_id, active=True, password_hash=password_hash, failed_logins=0,
                               session_generation=1, language="es")
            session.add(user)
            session.flush()
            people[username] = (user.id, agency_id, roles)
            site.users[username] = user.id
        here = create_mesa(session, site.territories["here"], now=site.clock.now())
        there = create_mesa(session, site.territories["there"], now=site.clock.now())
        session.commit()
        return MesaWorld(site, here.id, there.id, people)


def version_of(html: str, action: str) -> str:
    """Return the minutes version carried by the form posting to `action`."""
    match = re.search(rf'action="{re.escape(action)}"[^>]*>\s*<input type="hidden" name="csrf_token" value="[^"]+">'
                      r'\s*<input type="hidden" name="version" value="(\d+)"', html)
    assert match, f"no form posting to {action}"
    return match.group(1)


def mesa_row(site: Site, mesa_id: int) -> Mesa:
    """Return a Mesa row."""
    with site.app.app_context():
        mesa = db.session.get(Mesa, mesa_id)
        assert mesa is not None
        return mesa
