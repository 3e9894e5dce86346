"""One simulated case history being played (`engine.simulation`): its clock, its events and its breaches.

What a history did is kept as a list of `Event`s (the detection, the steps completed with their
data, the incidents); `HistoryPlay.replay` plays any sub-list of them, which is what shrinking needs.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from engine.actor import Actor
from engine.deadlines import run_due_timers
from engine.definitions import latest_runnable, task_form
from engine.errors import EngineError, TaskDataError
from engine.execution import complete_task, start_case, start_process
from engine.form_data import Leaning, answers, options, reanswer
from engine.forms import FormDefinition
from engine.models import Case, DueTimer, OpenTask
from engine.persistence import lock_case

if TYPE_CHECKING:
    from engine.simulation import Simulator

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning: every history's day 0
ENTRY = "intake"  # the process a detection starts
PROFILES = ("on_time", "late", "never")
RETRIES = 40  # fresh answers to a refused form before giving the step up
NO_DUE = timedelta(days=7)  # a step without a deadline is answered within about a week
STUCK_PASSES = 20  # passes at one moment before its timers are set aside


@dataclass(frozen=True)
class Event:
    """One thing that happened in a history: a detection, an incident, or a step completed."""

    at: timedelta  # since the detection
    action: str  # "start" | "incident" | "complete"
    target: str  # the process key (start, incident) or the step's element id (complete)
    data: dict[str, Any]
    label: str = ""  # the step's or the process's name
    agency: str = ""  # who acted: the agency kind's label
    late: timedelta | None = None  # how long after the step's deadline it was answered
    summary: tuple[tuple[str, str, str], ...] = ()  # (field title, answer es, answer en) worth telling


@dataclass(frozen=True)
class Breach:
    """The first time a history broke one invariant."""

    invariant_id: str
    kind: str
    message: str
    message_en: str
    at: timedelta
    events: int  # how many events had been applied when it showed
    open_steps: tuple[tuple[str, str], ...] = ()  # (step name, agency kind label) open at that moment


@dataclass
class HistoryResult:
    """What one generated history did and which invariants it broke."""

    index: int
    events: list[Event]
    breaches: dict[str, Breach]
    levels: set[str] = field(default_factory=set)
    incidents: int = 0
    late: int = 0
    unanswered: int = 0
    errors: list[str] = field(default_factory=list)


class HistoryPlay:
    """One history being played: the clock, the case, what is planned and what happened."""

    def __init__(self, sim: Simulator, index: int, rng: random.Random, leaning: Leaning, *,
                 watch: str | None = None) -> None:
        self.sim, self.session, self.rng, self.leaning, self.watch = sim, sim.session, rng, leaning, watch
        self.now = START
        self.end = START + timedelta(days=sim.days)
        self.case_id: int | None = None
        self.result = HistoryResult(index, [], {})
        self.known: set[int] = set()
        self.planned: list[tuple[datetime, int, str, Any]] = []
        self.order = 0
        self.profiles = {kind: rng.choices(PROFILES, (0.6, 0.25, 0.15))[0] for kind in sim.kinds}
        self.stuck: set[int] = set()  # timers a pass did not fire: set aside so the clock moves on
        self.passes, self.last_pass = 0, START

    # --- generating -------------------------------------------------------------------------------
    def run(self) -> HistoryResult:
        """Detect, then answer steps, fire timers and add incidents until the simulated days end."""
        if self.sim.entry_form is None:
            self.result.errors.append(f"{ENTRY}: no deployed process with a start form opens the cases")
            return self.result
        if not self._detect():
            return self.result
        self._plan_incidents()
        self._watch_tasks()
        while True:
            timer_at = self._next_timer()
            action_at = self.planned[0][0] if self.planned else None
            if timer_at is not None and timer_at <= self.end and (action_at is None or timer_at <= action_at):
                self._fire(timer_at)
            elif action_at is not None and action_at <= self.end:
                _at, _order, kind, what = heapq.heappop(self.planned)
                self.now = max(self.now, action_at)
                if kind == "incident":
                    self._incident()
                elif kind == "complete":
                    self._answer(what)
                self._check()
            else:
                return self.result
            self._watch_tasks()

    def _detect(self) -> bool:
        name, form = self.sim.entry_form or ("", None)
        assert form is not None
        data = answers(form, self.rng, self.now, self.leaning)
        refused: dict[str, list[Any]] = {}  # choices the form refused at this step
        for attempt in range(RETRIES):
            try:
                with self.session.begin_nested():
                    case, _ = start_case(self.session, territory_id=self.sim.territory_id, process_key=ENTRY,
                                         data=data, now=self.now, actor=Actor.system("verificador"), check_form=True)
            except TaskDataError as exc:
                data = reanswer(form, data, exc.errors, self.rng, self.now, self.leaning, attempt=attempt,
                                refused=refused)
                continue
            except EngineError as exc:
                self.result.errors.append(f"{ENTRY}: {exc}")
                return False
            self.case_id = case.id
            self._record(Event(self.now - START, "start", ENTRY, data, _title(self.sim, ENTRY), "",
                               summary=_summary(form, data)))
            self._check()
            return True
        self.result.errors.append(f"{ENTRY}: no generated detection passed the form {name}")
        return False

    def _plan_incidents(self) -> None:
        if not self.sim.incidents:
            return
        days = self.sim.days
        moments: list[timedelta] = []
        rate = self.rng.choice((0.0, 1 / 180, 1 / 60, 1 / 30))  # incidents per day
        day = 0.0
        while rate and (day := day + self.rng.expovariate(rate)) < days:
            moments.append(timedelta(days=day))
        if self.rng.random() < 0.3:  # right after the detection, while the first steps are open
            moments.append(timedelta(minutes=self.rng.randint(5, 36 * 60)))
        if self.rng.random() < 0.3:  # back to back
            first = timedelta(days=self.rng.uniform(0, days))
            moments += [first, first + timedelta(minutes=self.rng.randint(1, 90))]
        for moment in moments:
            self._plan(START + moment, "incident", None)

    def _plan(self, at: datetime, kind: str, what: Any) -> None:
        self.order += 1
        heapq.heappush(self.planned, (at, self.order, kind, what))

    def _watch_tasks(self) -> None:
        """Plan the answer to every step that opened since the last look: on time, late or never."""
        for task in self.session.execute(select(OpenTask).where(OpenTask.case_id == self.case_id)).scalars():
            if task.id in self.known:
                continue
            self.known.add(task.id)
            profile = self.profiles.get(task.agency_kind or "", "on_time")
            if self.rng.random() < 0.15:
                profile = self.rng.choice(PROFILES)
            if profile == "never":
                self.result.unanswered += 1
                continue
            start = max(task.visible_from or self.now, self.now)
            due = task.due_at if task.due_at is not None and task.due_at > start else start + NO_DUE
            if profile == "on_time":
                at = start + (due - start) * self.rng.uniform(0.05, 0.9)
            else:
                at = due + timedelta(hours=self.rng.uniform(1, 14 * 24))
            self._plan(at, "complete", task.id)

    def _answer(self, task_id: int) -> None:
        task = self.session.get(OpenTask, task_id)
        if task is None or task.agency_kind is None or task.agency_id is None:
            return  # cancelled meanwhile, or nobody would see it
        late = self.now - task.due_at if task.due_at is not None and self.now > task.due_at else None
        if late is not None:
            self.result.late += 1
        data = self._complete(task)
        if data is not None:
            self._record(Event(self.now - START, "complete", task.element_id, data, task.name,
                               self.sim.kinds.get(task.agency_kind, task.agency_kind), late,
                               _summary(self._form(task), data)))

    def _complete(self, task: OpenTask, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Complete a step with `data` or generated answers, drawing again what the form refuses."""
        form = self._form(task)
        if form is None:
            return None
        if data is None:
            data = answers(form, self.rng, self.now, self.leaning)
        actor = self.sim.actor(task.agency_kind)
        refused: dict[str, list[Any]] = {}  # choices the form refused at this step
        for attempt in range(RETRIES):
            try:
                with self.session.begin_nested():
                    complete_task(self.session, task.id, data, expected_version=task.version, now=self.now,
                                  actor=actor)
            except TaskDataError as exc:
                data = reanswer(form, data, exc.errors, self.rng, self.now, self.leaning, attempt=attempt,
                                refused=refused)
                continue
            except EngineError as exc:
                self.result.errors.append(f"{task.element_id}: {exc}")
                return None
            return data
        self.result.errors.append(f"{task.element_id}: no generated answers passed the form {form.name}")
        return None

    def _incident(self, data: dict[str, Any] | None = None, key: str | None = None) -> None:
        key = key or self.rng.choice(self.sim.incidents)
        found = self.sim.start_form(key)
        if found is None or self.case_id is None:
            return
        form = found[1]
        data = dict(data) if data is not None else answers(form, self.rng, self.now, self.leaning)
        refused: dict[str, list[Any]] = {}  # choices the form refused at this step
        for attempt in range(RETRIES):
            try:
                with self.session.begin_nested():
                    case = lock_case(self.session, self.case_id)
                    start_process(self.session, case, key, data, now=self.now, actor=Actor.system("verificador"),
                                  check_form=True)
            except TaskDataError as exc:
                data = reanswer(form, data, exc.errors, self.rng, self.now, self.leaning, attempt=attempt,
                                refused=refused)
                continue
            except EngineError as exc:
                self.result.errors.append(f"{key}: {exc}")
                return
            self.result.incidents += 1
            self._record(Event(self.now - START, "incident", key, data, _title(self.sim, key), "",
                               summary=_summary(form, data)))
            return

    def _form(self, task: OpenTask) -> FormDefinition | None:
        return task_form(self.session, task) if task.form else None

    def _record(self, event: Event) -> None:
        self.result.events.append(event)

    # --- the clock and the checks -------------------------------------------------------------------
    def _next_timer(self) -> datetime | None:
        query = select(func.min(DueTimer.fire_at)).where(DueTimer.case_id == self.case_id)
        if self.stuck:
            query = query.where(DueTimer.id.not_in(self.stuck))
        return self.session.execute(query).scalar_one_or_none()

    def _fire(self, at: datetime) -> None:
        self.now = max(self.now, at)
        report = run_due_timers(self.session, self.now)
        self.result.errors.extend(report.errors)
        self.passes = self.passes + 1 if at == self.last_pass else 0
        self.last_pass = at
        if (not report.fired and not report.failed) or self.passes > STUCK_PASSES:
            # A timer the pass leaves due (or keeps re-creating at the same moment) would stop the clock.
            left = self.session.execute(select(DueTimer).where(
                DueTimer.case_id == self.case_id, DueTimer.fire_at <= self.now)).scalars().all()
            for timer in left:
                self.stuck.add(timer.id)
                what = (timer.payload or {}).get("process_key") or "instance"
                self.result.errors.append(f"timer {timer.kind} of {what} not fired at {self.now.isoformat()}: "
                                          "left aside")
            self.passes = 0
        self._check()

    def _check(self) -> None:
        if self.case_id is None:
            return
        for violation in self.sim.checker.check(self.session, self.now, [self.case_id]):
            if violation.invariant_id in self.result.breaches:
                continue
            if self.watch is not None and violation.invariant_id != self.watch:
                continue
            self.result.breaches[violation.invariant_id] = Breach(
                violation.invariant_id, violation.kind, violation.message, violation.message_en, self.now - START,
                len(self.result.events), self._open_steps())
        level = self.session.execute(select(Case.risk_level).where(Case.id == self.case_id)).scalar_one_or_none()
        if level:
            self.result.levels.add(level)

    def _open_steps(self) -> tuple[tuple[str, str], ...]:
        rows = self.session.execute(select(OpenTask.name, OpenTask.agency_kind).where(
            OpenTask.case_id == self.case_id).order_by(OpenTask.created_at, OpenTask.id)).all()
        return tuple((name, self.sim.kinds.get(kind or "", kind or "")) for name, kind in rows)

    # --- replaying ----------------------------------------------------------------------------------
    def replay(self, events: Sequence[Event], horizon: timedelta) -> Breach | None:
        """Play `events`, then the clock to `horizon`; return the first breach (of the watched invariant)."""
        for event in events:
            if self._run_clock(START + event.at):
                break
            self.now = max(self.now, START + event.at)
            if event.action == "start":
                if self.case_id is not None or not self._replay_start(event):
                    continue
            elif self.case_id is None:
                continue
            elif event.action == "incident":
                self._incident(event.data, event.target)
            else:
                task = self.session.execute(select(OpenTask).where(
                    OpenTask.case_id == self.case_id, OpenTask.element_id == event.target)
                    .order_by(OpenTask.id).limit(1)).scalar_one_or_none()
                if task is None or task.agency_id is None or self._complete(task, dict(event.data)) is None:
                    continue
                self._record(event)
            self._check()
            if self.result.breaches:
                break
        if not self.result.breaches and self.case_id is not None:
            self._run_clock(START + horizon)
            self.now = max(self.now, START + horizon)
            self._check()
        return next(iter(self.result.breaches.values()), None)

    def _replay_start(self, event: Event) -> bool:
        try:
            with self.session.begin_nested():
                case, _ = start_case(self.session, territory_id=self.sim.territory_id, process_key=event.target,
                                     data=event.data, now=self.now, actor=Actor.system("verificador"),
                                     check_form=True)
        except EngineError:
            return False
        self.case_id = case.id
        self._record(event)
        return True

    def _run_clock(self, until: datetime) -> bool:
        """Fire the case's timers due up to `until`, checking after each; tell whether the watched breach showed."""
        while self.case_id is not None:
            at = self._next_timer()
            if at is None or at > until:
                return False
            self._fire(at)
            if self.result.breaches:
                return True
        return False


def _title(sim: Simulator, key: str) -> str:
    return latest_runnable(sim.session, key).bundle.spec.description or key


def _summary(form: FormDefinition | None, data: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """Pick the answers that tell the story: choices, and yes/no answers outside long checklists."""
    if form is None:
        return ()
    properties = form.schema.get("properties", {})
    checklist = sum(1 for p in properties.values() if p.get("type") == "boolean") >= 8
    told: list[tuple[str, str, str]] = []
    for name, answer in data.items():
        prop = properties.get(name, {})
        title = str(prop.get("title") or name)
        if options(prop):
            label = next((str(o.get("title", answer)) for o in prop.get("oneOf", []) if o.get("const") == answer),
                         str(answer))
            told.append((title, label, str(answer)))
        elif prop.get("type") == "boolean" and not checklist:
            told.append((title, "sí" if answer else "no", "yes" if answer else "no"))
    if checklist:
        ticked = sum(1 for name, answer in data.items() if answer is True and properties.get(name, {}).get(
            "type") == "boolean")
        told.append(("Indicadores marcados", str(ticked), str(ticked)))
    return tuple(told[:8])
