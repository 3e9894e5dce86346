"""A simulated history for the demo: cases driven through the real protocol on a fake clock.

`flask demo generate` opens cases on random days of the last D days and lets each agency answer its
steps after a random delay (some after the deadline), reports a few new incidents and fires the due
timers as the simulated clock moves on, so the supervisor's board has months of history to show.
Every answer is synthetic (no real person appears; `answers.py` gives them); the same seed and end time
give the same history.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.clock import FakeClock
from engine.deadlines import run_due_timers
from engine.definitions import latest_forms
from engine.execution import complete_task, start_case, start_process
from engine.models import Agency, Case, DueTimer, OpenTask, ProcessInstance, Territory, UserAccount, agency_territory
from engine.persistence import lock_case
from engine.tasks import claim_task
from webapp.demo.answers import FormAnswers
from webapp.demo.seed import TERRITORIES

INTAKE, INCIDENT = "intake", "incident"
# Invented shares of steps each agency kind finishes in time, so that the board has something to compare.
ON_TIME_SHARE = {"state_police": 0.85, "social_services": 0.7, "court": 0.6, "health_centre": 0.8,
                 "equality_office": 0.75}
DEFAULT_ON_TIME_SHARE = 0.75
CLAIM_SHARE = 0.5  # steps a member claims as soon as they appear (the rest are done from the agency queue)
INCIDENT_SHARE = 0.25  # cases with a new incident some time after the detection
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
    answers = FormAnswers(session, rng, latest_forms(session))
    _Simulation(session, rng, answers, until, report).run(cases, days, checkpoint)
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

    def __init__(self, session: Session, rng: random.Random, answers: FormAnswers, until: datetime,
                 report: HistoryReport) -> None:
        self.session, self.rng, self.answers, self.until, self.report = session, rng, answers, until, report
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
        self.extreme_territories: set[int] = set()
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
        self.report.level_changes = self.answers.level_changes
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
        data = self.answers.detection(now)
        reporter = self._member(self.agency_of.get((territory, data["source_kind"])))
        case, _ = start_case(
            self.session, territory_id=territory, process_key=INTAKE, data=data, now=now,
            actor=reporter or Actor.system("demo"), check_form=True,
            victim={"name": f"Persona ficticia V-H{number:03d}", "synthetic": True},
            aggressor={"name": f"Persona ficticia A-H{number:03d}", "synthetic": True},
        )
        self.case_ids.add(case.id)
        if territory not in self.extreme_territories:
            self.extreme_territories.add(territory)
            self.answers.extreme.add(case.id)  # the first case of each territory stays at extremo: the Mesa reviews it
        self.report.cases += 1
        if self.rng.random() < INCIDENT_SHARE:
            self._push(now + timedelta(days=self.rng.uniform(12, 90)), "incident", case.id)

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
        data = self.answers.answer(task, now)
        complete_task(self.session, task.id, data, expected_version=task.version, now=now,
                      actor=self.workers[guid])
        self.report.completed += 1
        if task.due_at is not None and now > task.due_at:
            self.report.completed_late += 1

    def _member(self, agency_id: int | None) -> Actor | None:
        """Pick a member of the agency (the professional or the supervisor) as the engine's actor."""
        members = self.members.get(agency_id or 0)
        return self.rng.choice(members) if members else None
