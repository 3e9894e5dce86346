"""Step timings against deadlines: the rounded delay, the worker's roll-up, and percentiles of a histogram.

See engine/models/step_timing.py for why completions are rolled up. Delays are rounded to a
resolution that grows with their size, so a day of one step in one territory has at most a few
hundred rows however many cases there are, and every figure the board prints (hours, one decimal)
is within that resolution of the exact one: 6 minutes under 10 hours, 1 hour under 100 hours,
10 hours under 1,000 hours, 100 hours beyond.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.db import is_postgresql
from engine.localtime import LOCAL_TZ
from engine.models import Case, TaskEvent
from engine.models.step_timing import StepTimingDay, StepTimingPending

HOUR = 3600
# (below this many seconds of delay, round to this many seconds), smallest first; beyond: the last step.
RESOLUTION = ((10 * HOUR, 360), (100 * HOUR, HOUR), (1000 * HOUR, 10 * HOUR))
COARSEST = 100 * HOUR
ROLL_UP_BATCH = 20_000
FETCH_CHUNK = 5_000  # event ids per IN (...) list


def delay_bucket(seconds: float) -> int:
    """Round a delay against a deadline (seconds, negative before it) to the resolution of its size."""
    size = abs(seconds)
    step = next((step for limit, step in RESOLUTION if size < limit), COARSEST)
    return round(seconds / step) * step


def report_day(when: datetime) -> date:
    """Return the Madrid calendar day of a moment (the board's periods count Madrid days)."""
    return when.astimezone(LOCAL_TZ).date()


@dataclass(frozen=True)
class Completion:
    """A completed step with a deadline, as the roll-up needs it."""

    territory_id: int
    at: datetime
    due_at: datetime
    element_id: str
    name: str

    @property
    def key(self) -> tuple[int, date, str, int]:
        """Return its roll-up row: territory, day, step and rounded delay."""
        return (self.territory_id, report_day(self.at), self.element_id,
                delay_bucket((self.at - self.due_at).total_seconds()))

    @property
    def on_time(self) -> bool:
        """Tell whether it was done on or before its deadline."""
        return self.at <= self.due_at


def pending_completions(
    session: Session, *, territories: Iterable[int] | None = None, since: datetime | None = None,
    limit: int | None = None, lock: bool = False,
) -> list[tuple[int, Completion]]:
    """Read queued completions (event id, completion), oldest event first, optionally filtered.

    With `lock` (the roll-up), PostgreSQL rows are locked and rows another worker holds are skipped.
    The queue is read first and its events fetched by id after: the queue is small, but a planner
    that still counts the rows a roll-up just deleted must not walk the history to join it.
    """
    query = select(StepTimingPending.event_id).order_by(StepTimingPending.event_id)
    if limit is not None:
        query = query.limit(limit)
    if lock and is_postgresql(session):
        query = query.with_for_update(skip_locked=True)
    event_ids = list(session.execute(query).scalars())
    found: list[tuple[int, Completion]] = []
    places = None if territories is None else list(territories)
    for chunk in range(0, len(event_ids), FETCH_CHUNK):
        events = (
            select(TaskEvent.id, Case.territory_id, TaskEvent.at, TaskEvent.due_at, TaskEvent.element_id,
                   TaskEvent.name)
            .join(Case, Case.id == TaskEvent.case_id)
            .where(TaskEvent.id.in_(event_ids[chunk:chunk + FETCH_CHUNK]))
            .order_by(TaskEvent.id)
        )
        if places is not None:
            events = events.where(Case.territory_id.in_(places))
        if since is not None:
            events = events.where(TaskEvent.at >= since)
        found.extend((event_id, Completion(territory_id, at, due_at, element_id or "", name or element_id or ""))
                     for event_id, territory_id, at, due_at, element_id, name in session.execute(events).all()
                     if due_at is not None)  # always: the trigger queues dated completions only
    return found


@dataclass
class RollUpReport:
    """What one call of `roll_up_step_timings` moved."""

    events: int = 0
    rows: int = 0


def roll_up_step_timings(session: Session, *, limit: int = ROLL_UP_BATCH) -> RollUpReport:
    """Move up to `limit` queued completions into the daily roll-up, and off the queue, in the caller's transaction.

    Exactly once: the rows added to the counts and the queue rows deleted commit together. Several
    workers may run at once on PostgreSQL (each skips the queue rows another holds; counts are added
    in key order, so two workers never wait on each other in a cycle). Call again while `events == limit`.
    """
    taken = pending_completions(session, limit=limit, lock=True)
    report = RollUpReport(events=len(taken))
    if not taken:
        return report
    counts: dict[tuple[int, date, str, int], list[int]] = defaultdict(lambda: [0, 0])
    names: dict[tuple[int, date, str, int], str] = {}
    for _, completion in taken:
        key = completion.key
        counts[key][0] += 1
        counts[key][1] += int(completion.on_time)
        names[key] = completion.name
    rows = [{"territory_id": t, "day": d, "element_id": e, "delay_s": s, "name": names[(t, d, e, s)],
             "completed": n, "on_time": k} for (t, d, e, s), (n, k) in sorted(counts.items())]
    insert = pg_insert if is_postgresql(session) else sqlite_insert
    statement = insert(StepTimingDay)
    table = StepTimingDay.__table__
    session.execute(statement.on_conflict_do_update(
        index_elements=["territory_id", "day", "element_id", "delay_s"],
        set_={"completed": table.c.completed + statement.excluded.completed,
              "on_time": table.c.on_time + statement.excluded.on_time, "name": statement.excluded.name},
    ), rows)
    session.execute(delete(StepTimingPending).where(StepTimingPending.event_id.in_([e for e, _ in taken])),
                    execution_options={"synchronize_session": False})
    report.rows = len(rows)
    return report


@dataclass
class Histogram:
    """Completions of one step by rounded delay, with how many were on time."""

    name: str = ""
    completed: int = 0
    on_time: int = 0
    delays: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, delay_s: int, completed: int, on_time: int, name: str | None = None) -> None:
        """Count `completed` more completions at a rounded delay."""
        self.completed += completed
        self.on_time += on_time
        self.delays[delay_s] += completed
        if name and not self.name:
            self.name = name

    def percentiles(self, fractions: Sequence[float]) -> list[float | None]:
        """Return each percentile of the delays (seconds), interpolated as PostgreSQL's percentile_cont does."""
        if not self.completed:
            return [None for _ in fractions]
        values = sorted(self.delays.items())
        return [self._value_at(p * (self.completed - 1), values) for p in fractions]

    @staticmethod
    def _value_at(position: float, values: Sequence[tuple[int, int]]) -> float:
        below = int(position)
        low, high = _ranked(below, values), _ranked(below + 1, values)
        return low + (position - below) * (high - low)


def _ranked(rank: int, values: Sequence[tuple[int, int]]) -> float:
    """Return the value at a 0-based rank of the sorted multiset (the last one past its end)."""
    seen = 0
    for value, count in values:
        seen += count
        if rank < seen:
            return float(value)
    return float(values[-1][0])


def histograms(
    rows: Iterable[tuple[str, str | None, int, int, int]], pending: Iterable[Completion] = (),
) -> Mapping[str, Histogram]:
    """Build one histogram per step from roll-up rows (step, name, delay, completed, on time) and queued ones."""
    result: dict[str, Histogram] = defaultdict(Histogram)
    for element_id, name, delay_s, completed, on_time in rows:
        result[element_id].add(delay_s, completed, on_time, name)
    for completion in pending:
        key = completion.key
        result[completion.element_id].add(key[3], 1, int(completion.on_time), completion.name)
    return result
