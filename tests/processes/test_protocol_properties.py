"""Properties of the shipped protocol over generated histories (Hypothesis stateful testing), SQLite and PostgreSQL.

Rules are what happens to a case: an agency completes one of its open steps with valid answers
(possibly long after its deadline), an incident is reported, the clock moves, a deadline pass
runs. After every step the protocol's invariants are checked (`engine.invariants`, through the
verifier's checker). CI runs the "ci" profile: derandomized, a few short histories, under a minute.
`benchmarks/verifier_bench.py --properties` runs the "long" profile. A failure found here is kept
as an ordinary scenario test (tests/processes/test_protocol.py).
"""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from engine.actor import Actor
from engine.deadlines import run_due_timers
from engine.definitions import latest_runnable, start_form, task_form
from engine.errors import TaskDataError
from engine.execution import complete_task, start_case, start_process
from engine.form_data import Leaning, answers, reanswer
from engine.forms import FormDefinition
from engine.models import Case, DueTimer, OpenTask
from engine.simulated_history import ENTRY
from engine.simulation import DEFAULT_LEVELS, Checker, incident_processes, invariant_checker
from tests.support.protocol import Protocol

settings.register_profile("ci", derandomize=True, database=None, max_examples=5, stateful_step_count=10,
                          deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", database=None, max_examples=200, stateful_step_count=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile(os.environ.get("COORDINA_HYPOTHESIS_PROFILE", "ci"))
RETRIES = 40


class CaseHistory(RuleBasedStateMachine):
    """One case of the shipped protocol, moved by agencies, incidents and the clock."""

    def __init__(self, protocol: Protocol, checker: Checker) -> None:
        super().__init__()
        self.p, self.checker = protocol, checker
        self.session = protocol.session
        self.case_id: int | None = None
        self.rng = random.Random(0)  # noqa: S311 -- reproducible answers; Hypothesis draws the choices
        self.leaning = Leaning(DEFAULT_LEVELS)

    def start_form(self, key: str) -> FormDefinition | None:
        return start_form(self.session, latest_runnable(self.session, key))

    def submit(self, form: FormDefinition, act: Any) -> bool:
        """Run `act(data)` with generated answers, drawing again what the form refuses."""
        data = answers(form, self.rng, self.p.clock.now(), self.leaning)
        refused: dict[str, list[Any]] = {}  # choices the form refused at this step
        for attempt in range(RETRIES):
            try:
                with self.session.begin_nested():
                    act(data)
            except TaskDataError as exc:
                data = reanswer(form, data, exc.errors, self.rng, self.p.clock.now(), self.leaning, attempt=attempt,
                                refused=refused)
                continue
            self.session.commit()
            return True
        return False

    @initialize(target_level=st.sampled_from(DEFAULT_LEVELS), seed=st.integers(0, 2**16))
    def detection(self, target_level: str, seed: int) -> None:
        self.rng.seed(seed)
        rank = DEFAULT_LEVELS.index(target_level)
        self.leaning = Leaning(DEFAULT_LEVELS, target_level, 0.25 * (rank / (len(DEFAULT_LEVELS) - 1)) ** 2)
        form = self.start_form(ENTRY)
        assert form is not None
        opened: list[int] = []

        def act(data: dict[str, Any]) -> None:
            case, _ = start_case(self.session, territory_id=self.p.world.territory.id, process_key=ENTRY, data=data,
                                 now=self.p.clock.now(), actor=self.p.world.actor("health_centre"), check_form=True)
            opened.append(case.id)

        if self.submit(form, act):
            self.case_id = opened[-1]

    @rule(pick=st.integers(0, 50), late=st.sampled_from([timedelta(0), timedelta(hours=30), timedelta(days=9)]))
    def agency_completes_a_step(self, pick: int, late: timedelta) -> None:
        tasks = self.open_tasks()
        if not tasks:
            return
        task = tasks[pick % len(tasks)]
        if late and task.due_at is not None:
            self.move_to(task.due_at + late)
            still_open = self.session.get(OpenTask, task.id)
            if still_open is None:
                return
            task = still_open
        form = task_form(self.session, task)
        if form is None or task.agency_kind not in self.p.world.users:
            return
        actor = self.p.world.actor(task.agency_kind)
        task_id, version = task.id, task.version
        self.submit(form, lambda data: complete_task(self.session, task_id, data, expected_version=version,
                                                     now=self.p.clock.now(), actor=actor))

    @rule()
    def incident(self) -> None:
        if self.case_id is None:
            return
        entry = self.start_form(ENTRY)
        for key in incident_processes(self.session, entry.name if entry else None):
            form = self.start_form(key)
            case = self.session.get(Case, self.case_id)
            if form is None or case is None:
                continue
            self.submit(form, lambda data, key=key, case=case: start_process(
                self.session, case, key, data, now=self.p.clock.now(), actor=Actor.system("tests"), check_form=True))
            return

    @rule(hours=st.integers(1, 24 * 10))
    def clock_moves(self, hours: int) -> None:
        self.move_to(self.p.clock.now() + timedelta(hours=hours))

    @rule()
    def deadline_pass(self) -> None:
        run_due_timers(self.session, self.p.clock.now())
        self.session.commit()

    @invariant()
    def protocol_invariants_hold(self) -> None:
        if self.case_id is None:
            return
        broken = self.checker.check(self.session, self.p.clock.now(), [self.case_id])
        assert not broken, [v.message for v in broken]

    def open_tasks(self) -> list[OpenTask]:
        return list(self.session.execute(select(OpenTask).where(OpenTask.case_id == self.case_id)
                                         .order_by(OpenTask.id)).scalars())

    def move_to(self, when: datetime) -> None:
        """Move the clock forward to `when`, firing the case's timers as it passes them (a deadline pass each)."""
        fired: set[datetime] = set()
        while self.case_id is not None:
            due = self.session.execute(select(func.min(DueTimer.fire_at)).where(
                DueTimer.case_id == self.case_id)).scalar_one_or_none()
            if due is None or due > when or due in fired:  # a timer left for the next pass must not loop here
                break
            fired.add(due)
            self.p.clock.advance(max(due - self.p.clock.now(), timedelta(0)))
            run_due_timers(self.session, self.p.clock.now())
            self.session.commit()
            self.protocol_invariants_hold()
        self.p.clock.advance(max(when - self.p.clock.now(), timedelta(0)))


def test_the_protocol_invariants_hold_after_every_step_of_generated_histories(protocol: Protocol) -> None:
    checker = invariant_checker(protocol.session)
    protocol.session.commit()
    # A factory binds the fixture's session and clock (Hypothesis accepts any callable returning the machine).
    run_state_machine_as_test(lambda: CaseHistory(protocol, checker), settings=PROFILE)  # type: ignore[arg-type]
