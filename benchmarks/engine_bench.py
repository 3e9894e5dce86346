"""Engine benchmarks on real databases: step cost, long-case stability, stored bytes, timer pass.

Run from the project root:  python -m benchmarks.engine_bench [--quick] [--profile]

Every figure comes from real engine calls on real databases (a SQLite file in a temporary
directory and a throw-away PostgreSQL database, dropped at the end). Timings use
time.perf_counter; a figure is the median over repetitions, warm-up runs excluded. The script
prints one table and exits 0: figures are reported against their targets, never asserted.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Column, Integer, MetaData, String, Table, event, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from engine import durations, spiff
from engine.actor import Actor
from engine.clock import FakeClock
from engine.db import Base, make_engine
from engine.deadlines import run_due_timers
from engine.definitions import read_directory, runnable
from engine.deploy import deploy
from engine.execution import complete_task, start_case
from engine.forms import FormDefinition, load_catalog
from engine.models import (
    Agency,
    AgencyKind,
    Case,
    DueTimer,
    OpenTask,
    ProcessInstance,
    Territory,
    UserAccount,
)
from engine.models.agency import DEFAULT_KINDS

ROOT = Path(__file__).resolve().parent.parent
BPMN_DIR = ROOT / "tests" / "engine" / "bpmn"
PROTOCOL_DIR = ROOT / "processes"
PROTOCOL_FORMS = ROOT / "forms"
FORMS_DIR = ROOT / "tests" / "engine" / "forms"
ENGINE_DIR = str(ROOT / "engine")
PG_ADMIN_DSN = os.environ.get("COORDINA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
TABLES = Base.metadata.tables


# --- Settings and results -------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Repetition counts and population sizes of one run (full or --quick)."""

    step_warmup: int  # (a) untimed completions before the timed ones
    step_reps: int  # (a) timed completions, engine and bare Spiff each
    cycles: int  # (b)/(c) the late cycle compared with cycle 1 (500)
    window: int  # (b) cycles per timing window (1..window and cycles-window/2+1..cycles+window/2)
    cycle_warmup: int  # (b) cycles of a separate, untimed case run first
    bytes_early: int  # (c) the early cycle whose live bytes are the baseline (10)
    timer_cases: int  # (d) open cases
    timer_due: int  # (d) of which due
    timer_on_sqlite: bool


FULL = Settings(step_warmup=20, step_reps=300, cycles=500, window=20, cycle_warmup=10, bytes_early=10,
                timer_cases=100_000, timer_due=1_000, timer_on_sqlite=True)
QUICK = Settings(step_warmup=5, step_reps=40, cycles=50, window=10, cycle_warmup=3, bytes_early=10,
                 timer_cases=5_000, timer_due=100, timer_on_sqlite=False)


@dataclass(frozen=True)
class Row:
    """One line of the result table."""

    benchmark: str
    database: str
    figure: str
    target: str = ""
    verdict: str = "info"


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def median_ms(samples: list[float]) -> float:
    """Median of samples given in seconds, in milliseconds."""
    return statistics.median(samples) * 1000.0


def kib(n: float) -> str:
    """Bytes as '12,345 B (12.1 KiB)'."""
    return f"{n:,.0f} B ({n / 1024:.1f} KiB)"


# --- Databases ------------------------------------------------------------------------------------
@contextmanager
def sqlite_database() -> Iterator[Engine]:
    """A SQLite file database in a temporary directory, schema created, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="coordina_bench_") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        try:
            Base.metadata.create_all(engine)
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_database() -> Iterator[Engine]:
    """A throw-away PostgreSQL database with the schema, dropped afterwards."""
    name = f"coordina_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(PG_ADMIN_DSN).set(drivername="postgresql+psycopg", database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        Base.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def postgres_available() -> str | None:
    """Return why PostgreSQL cannot be used, or None."""
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


DatabaseFactory = Callable[[], Any]  # a context manager factory yielding an Engine


# --- World ----------------------------------------------------------------------------------------
@dataclass
class World:
    """The seeded territory, one agency and one member per agency kind, the test forms."""

    territory_id: int
    actors: dict[str, Actor]
    forms: dict[str, FormDefinition]
    factory: sessionmaker[Session]


def load_forms() -> dict[str, FormDefinition]:
    """The test forms (note, assessment)."""
    catalog, problems = load_catalog(FORMS_DIR)
    if problems:
        raise RuntimeError(f"test forms have problems: {problems}")
    return catalog


def seed_world(engine: Engine, *, protocol: bool = False) -> World:
    """Seed agency kinds, a territory, agencies and users, deploy the test processes (or the real
    protocol of processes/ with forms/ when `protocol`); commit."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    forms = load_catalog(PROTOCOL_FORMS)[0] if protocol else load_forms()
    with factory() as session:
        for code, label in DEFAULT_KINDS.items():
            session.add(AgencyKind(code=code, name=label))
        territory = Territory(code="vegas-bajas", name="Mancomunidad Vegas Bajas", region="EX")
        session.add(territory)
        session.flush()
        actors: dict[str, Actor] = {}
        for code in DEFAULT_KINDS:
            agency = Agency(name=f"{code} Vegas Bajas", kind=code, active=True, territories=[territory])
            session.add(agency)
            session.flush()
            user = UserAccount(username=f"{code}_1", display_name=f"{code} uno", agency_id=agency.id,
                               roles=["professional"], active=True)
            session.add(user)
            session.flush()
            actors[code] = Actor(user_id=user.id, name=user.username, agency_id=agency.id,
                                 roles=frozenset({"professional"}))
        source = PROTOCOL_DIR if protocol else BPMN_DIR
        deploy(session, read_directory(source, PROTOCOL_FORMS if protocol else FORMS_DIR), actor="bench", now=START)
        session.commit()
        return World(territory.id, actors, forms, factory)


def open_task_of(session: Session, case_id: int) -> OpenTask:
    """The single open task of a case."""
    return session.execute(select(OpenTask).where(OpenTask.case_id == case_id)).scalar_one()


# --- (a) one task completion: engine vs bare SpiffWorkflow ----------------------------------------
def start_simple_cases(world: World, count: int, now: datetime) -> list[tuple[int, int]]:
    """Start `count` cases of `simple`; return (task id, task version) of each `review` task."""
    tasks = []
    for _ in range(count):
        with world.factory() as session:
            case, _ = start_case(session, territory_id=world.territory_id, process_key="simple", data={},
                                 now=now, actor=world.actors["health_centre"])
            session.commit()
            task = open_task_of(session, case.id)
            if task.element_id != "review":
                raise RuntimeError(f"expected the review task, got {task.element_id}")
            tasks.append((task.id, task.version))
    return tasks


def complete_review(world: World, task_id: int, version: int, now: datetime) -> None:
    """One engine operation: load, complete `review`, run engine steps, persist, commit."""
    with world.factory() as session:
        complete_task(session, task_id, {"note": "visto"}, expected_version=version, now=now,
                      actor=world.actors["social_services"])
        session.commit()


def engine_step_samples(world: World, settings: Settings) -> tuple[list[float], float]:
    """Time `complete_task` + commit on fresh `review` tasks; warm-up excluded.

    Returns the samples and the SQL statements per completion (counted afterwards, untimed).
    """
    now = START + timedelta(hours=1)
    counted = 5
    tasks = start_simple_cases(world, settings.step_warmup + settings.step_reps + counted, START)
    samples = []
    for n, (task_id, version) in enumerate(tasks[:-counted]):
        t0 = time.perf_counter()
        complete_review(world, task_id, version, now)
        elapsed = time.perf_counter() - t0
        if n >= settings.step_warmup:
            samples.append(elapsed)
    statements = 0

    def count(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    bind = world.factory.kw["bind"]
    event.listen(bind, "before_cursor_execute", count)
    try:
        for task_id, version in tasks[-counted:]:
            complete_review(world, task_id, version, now)
    finally:
        event.remove(bind, "before_cursor_execute", count)
    return samples, statements / counted


def adapter_samples(world: World, settings: Settings) -> list[float]:
    """Time only what the engine asks of SpiffWorkflow in (a), without the database.

    Run.load (json + migrate + restore on the cached spec), complete + engine steps, the READY and
    waiting-timer scans that sync_tasks/sync_timers do, and Run.dump.
    """
    [(task_id, _)] = start_simple_cases(world, 1, START)
    with world.factory() as session:
        task = session.get(OpenTask, task_id)
        assert task is not None
        instance = session.get(ProcessInstance, task.instance_id)
        assert instance is not None
        bundle, state, guid = runnable(session, instance.definition_id).bundle, instance.state, task.task_guid
    now = START + timedelta(hours=1)
    samples = []
    for n in range(settings.step_warmup + settings.step_reps):
        t0 = time.perf_counter()
        run = spiff.Run.load(bundle, state)
        run.complete(guid, {"note": "visto"}, now)
        run.ready_tasks()
        run.waiting_timers()
        run.dump()
        elapsed = time.perf_counter() - t0
        if n >= settings.step_warmup:
            samples.append(elapsed)
    return samples


def bare_spiff_samples(settings: Settings) -> tuple[list[float], int]:
    """Time the same step in bare SpiffWorkflow: deserialize, complete, engine steps, serialize.

    The stock serializer (spec included) and the stock script engine; the BPMN is parsed once.
    Returns the samples and the length of the JSON saved after the step.
    """
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(BPMN_DIR / "simple.bpmn"))
    spec = parser.get_spec("simple")
    subprocess_specs = parser.get_subprocess_specs("simple")
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    workflow = BpmnWorkflow(spec, subprocess_specs)
    # The same start data the engine gives an instance (the case context).
    context = {"case": {"reference": "VG-2026-000001", "status": "active", "risk_level": None}, "reason": "periodic"}
    workflow.data.update(context)
    workflow.task_tree.data.update(context)
    workflow.do_engine_steps()
    [review] = workflow.get_tasks(state=TaskState.READY, manual=True)
    guid: UUID = review.id
    saved = serializer.serialize_json(workflow)
    samples = []
    size = 0
    for n in range(settings.step_warmup + settings.step_reps):
        t0 = time.perf_counter()
        restored = serializer.deserialize_json(saved)
        task = restored.get_task_from_id(guid)
        task.data.update({"note": "visto"})
        task.run()
        restored.do_engine_steps()
        out = serializer.serialize_json(restored)
        elapsed = time.perf_counter() - t0
        size = len(out)
        if n >= settings.step_warmup:
            samples.append(elapsed)
    return samples, size


def write_floor_samples(world: World, settings: Settings) -> list[float]:
    """Time the cheapest durable write: a session, UPDATE of one row, commit."""
    samples = []
    for n in range(settings.step_warmup + settings.step_reps):
        t0 = time.perf_counter()
        with world.factory() as session:
            session.execute(text("UPDATE territory SET name = name WHERE id = :id"), {"id": world.territory_id})
            session.commit()
        elapsed = time.perf_counter() - t0
        if n >= settings.step_warmup:
            samples.append(elapsed)
    return samples


def bench_step(world: World, label: str, settings: Settings, bare_ms: float) -> list[Row]:
    """(a) rows for one database."""
    samples, statements = engine_step_samples(world, settings)
    engine_ms = median_ms(samples)
    adapter_ms = median_ms(adapter_samples(world, settings))
    floor_ms = median_ms(write_floor_samples(world, settings))
    ratio = engine_ms / bare_ms
    return [
        Row("(a) engine: complete_task + commit (load, steps, persist)", label, f"{engine_ms:.2f} ms"),
        Row("(a) ratio engine / bare Spiff", label, f"{ratio:.2f}x", "<= 3x", verdict(ratio <= 3.0)),
        Row("(a)   Spiff part alone / SQL stmts per op / 1-row commit", label,
            f"{adapter_ms:.2f} ms / {statements:.0f} / {floor_ms:.2f} ms"),
    ]


# --- (a') the same on a real protocol step: the police re-assessment of a follow-up cycle ---------
def reassessment_answers() -> dict[str, Any]:
    """Answers of the risk form: three indicators present (level medio), the rest absent."""
    form = json.loads((PROTOCOL_FORMS / "risk_assessment.json").read_text(encoding="utf-8"))
    answers: dict[str, Any] = {name: False for name, prop in form["schema"]["properties"].items()
                               if prop.get("type") == "boolean"}
    answers.update(physical_violence=True, escalation=True, victim_fears_for_life=True)
    return answers


def start_followups(world: World, count: int, now: datetime) -> list[tuple[int, int]]:
    """Start `count` cases directly on `followup`; return their police re-assessment tasks."""
    tasks = []
    for _ in range(count):
        with world.factory() as session:
            case, _ = start_case(session, territory_id=world.territory_id, process_key="followup",
                                 data={"reason": "periodic"},
                                 now=now, actor=world.actors["state_police"])
            session.commit()
            task = session.execute(select(OpenTask).where(
                OpenTask.case_id == case.id, OpenTask.element_id == "police_reassessment")).scalar_one()
            tasks.append((task.id, task.version))
    return tasks


def protocol_step_samples(world: World, settings: Settings) -> list[float]:
    """Time complete_task + commit of the police re-assessment (DMN scoring, scripts, next task)."""
    answers = reassessment_answers()
    tasks = start_followups(world, settings.step_warmup + settings.step_reps, START)
    samples = []
    for n, (task_id, version) in enumerate(tasks):
        t0 = time.perf_counter()
        with world.factory() as session:
            complete_task(session, task_id, answers, expected_version=version, now=START + timedelta(hours=1),
                          actor=world.actors["state_police"])
            session.commit()
        elapsed = time.perf_counter() - t0
        if n >= settings.step_warmup:
            samples.append(elapsed)
    return samples


def bare_protocol_samples(settings: Settings) -> list[float]:
    """The same re-assessment in bare SpiffWorkflow: stock serializer (with spec), plain eval scripts."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(PROTOCOL_DIR / "followup.bpmn"))
    parser.add_dmn_files(sorted(str(p) for p in PROTOCOL_DIR.glob("*.dmn")))
    spec, subprocess_specs = parser.get_spec("followup"), parser.get_subprocess_specs("followup")
    helpers = {"now": lambda: START, "parse_datetime": durations.parse_datetime, "duration": durations.parse_duration,
               "days": lambda n: timedelta(days=n), "update_case": lambda **_changes: None,
               "start_process": lambda *_args, **_kwargs: None, "cancel_track": lambda _track: None,
               "value": lambda _name, default=None: default}
    script_engine = PythonScriptEngine(environment=TaskDataEnvironment(helpers))
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=script_engine)
    context = {"case": {"reference": "VG-2026-000001", "status": "active", "risk_level": None}, "reason": "periodic"}
    workflow.data.update(context)
    workflow.task_tree.data.update(context)
    workflow.do_engine_steps()
    [task] = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
              if t.task_spec.bpmn_id == "police_reassessment"]
    guid, saved, answers = task.id, serializer.serialize_json(workflow), reassessment_answers()
    samples = []
    for n in range(settings.step_warmup + settings.step_reps):
        t0 = time.perf_counter()
        restored = serializer.deserialize_json(saved)
        restored.script_engine = script_engine
        ready = restored.get_task_from_id(guid)
        ready.data.update(answers)
        ready.run()
        restored.do_engine_steps()
        serializer.serialize_json(restored)
        elapsed = time.perf_counter() - t0
        if n >= settings.step_warmup:
            samples.append(elapsed)
    return samples


def bench_protocol_step(name: str, settings: Settings, bare_ms: float) -> list[Row]:
    """(a') rows for one database: a fresh database with the real protocol deployed."""
    with database(name) as engine:
        world = seed_world(engine, protocol=True)
        engine_ms = median_ms(protocol_step_samples(world, settings))
    ratio = engine_ms / bare_ms
    return [
        Row("(a') engine: police re-assessment of the real protocol", name, f"{engine_ms:.2f} ms"),
        Row("(a') ratio engine / bare Spiff (real protocol step)", name, f"{ratio:.2f}x", "<= 3x",
            verdict(ratio <= 3.0)),
    ]


# --- (b)/(c) a long follow-up case ----------------------------------------------------------------
def start_cycle_case(world: World, now: datetime) -> int:
    """Start a `cycle` case at level medio; return its id."""
    with world.factory() as session:
        case, _ = start_case(session, territory_id=world.territory_id, process_key="cycle",
                             data={"level": "medio"}, now=now, actor=world.actors["state_police"])
        session.commit()
        return case.id


def follow_up_step(world: World, case_id: int, now: datetime) -> None:
    """One follow-up cycle: find the case's open task, complete it with a score, commit."""
    with world.factory() as session:
        task = open_task_of(session, case_id)
        complete_task(session, task.id, {"score": 5}, expected_version=task.version, now=now,
                      actor=world.actors["state_police"])
        session.commit()


def payload_bytes(row: Mapping[str, Any]) -> int:
    """Bytes of a row's stored values: text as UTF-8, JSON as its text, numbers/times 8 bytes."""
    total = 0
    for value in row.values():
        if value is None:
            continue
        if isinstance(value, str):
            total += len(value.encode("utf-8"))
        elif isinstance(value, dict | list):
            total += len(json.dumps(value, separators=(",", ":")).encode("utf-8"))
        elif isinstance(value, bool | int | float | datetime | date):
            total += 8
        else:
            total += len(str(value).encode("utf-8"))
    return total


@dataclass
class CaseBytes:
    """Stored bytes of one case at one moment."""

    live: int  # states of running instances + open_task rows + due_timer rows
    total: int  # every row of the case: case_file, all instances, open tasks, timers, task events
    completed_instances: int
    completed_state_bytes: int  # sum of len(state) over completed instances
    event_bytes: int
    largest_state: int
    running_instances: int


def case_bytes(world: World, case_id: int) -> CaseBytes:
    """Measure the stored payload of one case."""
    with world.factory() as session:
        def rows(name: str, key: str = "case_id") -> list[Mapping[str, Any]]:
            table = TABLES[name]
            return [dict(r._mapping) for r in session.execute(select(table).where(table.c[key] == case_id))]

        instances = rows("process_instance")
        running = [r for r in instances if r["status"] == "running"]
        done = [r for r in instances if r["status"] == "completed"]
        tasks = rows("open_task")
        timers = rows("due_timer")
        events = rows("task_event")
        case_row = rows("case_file", "id")
    live = sum(len(r["state"].encode("utf-8")) for r in running)
    live += sum(payload_bytes(r) for r in tasks) + sum(payload_bytes(r) for r in timers)
    event_bytes = sum(payload_bytes(r) for r in events)
    total = sum(payload_bytes(r) for r in [*instances, *tasks, *timers, *case_row]) + event_bytes
    return CaseBytes(
        live=live, total=total, completed_instances=len(done),
        completed_state_bytes=sum(len(r["state"].encode("utf-8")) for r in done),
        event_bytes=event_bytes, largest_state=max(len(r["state"]) for r in instances),
        running_instances=len(running),
    )


def bench_cycles(world: World, label: str, settings: Settings) -> list[Row]:
    """(b) step cost at cycle 1 vs cycle N of one case, and (c) its stored bytes."""
    clock = FakeClock(START)
    warm = start_cycle_case(world, clock.now())
    for _ in range(settings.cycle_warmup):
        clock.advance(timedelta(days=1))
        follow_up_step(world, warm, clock.now())
    case_id = start_cycle_case(world, clock.now())
    half = settings.window // 2
    late = range(settings.cycles - half + 1, settings.cycles + half + 1)
    early = range(1, settings.window + 1)
    samples: dict[int, float] = {}
    measured: dict[int, CaseBytes] = {}
    for cycle in range(1, late[-1] + 1):
        clock.advance(timedelta(days=1))
        t0 = time.perf_counter()
        follow_up_step(world, case_id, clock.now())
        samples[cycle] = time.perf_counter() - t0
        if cycle in (settings.bytes_early, settings.cycles):
            measured[cycle] = case_bytes(world, case_id)
    # Control: the same comparison with both sides under the same database size and background
    # load (autovacuum, checkpoints): a fresh case's first cycles alternated with further cycles of
    # this case, which is past cycle N by then.
    fresh = start_cycle_case(world, clock.now())
    fresh_samples: list[float] = []
    old_samples: list[float] = []
    for _ in early:
        clock.advance(timedelta(days=1))
        for target, into in ((fresh, fresh_samples), (case_id, old_samples)):
            t0 = time.perf_counter()
            follow_up_step(world, target, clock.now())
            into.append(time.perf_counter() - t0)
    first = median_ms([samples[c] for c in early])
    last = median_ms([samples[c] for c in late])
    ratio = last / first
    control = median_ms(old_samples) / median_ms(fresh_samples)
    after = late[-1]
    n, e = settings.cycles, settings.bytes_early
    at_e, at_n = measured[e], measured[n]
    live_ratio = at_n.live / at_e.live
    per_done = at_n.completed_state_bytes / at_n.completed_instances
    events_per_cycle = (at_n.event_bytes - at_e.event_bytes) / (n - e)
    growth = (at_n.total - at_e.total) / (n - e)
    consistent = at_n.running_instances == 1 and at_n.completed_instances == n
    return [
        Row(f"(b) step median, cycles {early[0]}-{early[-1]} -> {late[0]}-{late[-1]}", label,
            f"{first:.2f} -> {last:.2f} ms"),
        Row(f"(b) ratio cycle {n} / cycle 1 (same case)", label, f"{ratio:.2f}x", "<= 1.2x", verdict(ratio <= 1.2)),
        Row(f"(b) control: cycles {after + 1}-{after + len(early)} vs fresh case 1-{len(early)}, alternated",
            label, f"{control:.2f}x", "<= 1.2x", verdict(control <= 1.2)),
        Row(f"(c) live bytes, cycle {e} -> {n}", label, f"{at_e.live:,} -> {at_n.live:,} B ({live_ratio:.3f}x)",
            "<= 1.1x", verdict(live_ratio <= 1.1)),
        Row(f"(c) largest single state blob, cycle {n}", label, f"{at_n.largest_state:,} chars"),
        Row(f"(c) total incl. history, cycle {e} -> {n}", label, f"{at_e.total:,} -> {at_n.total:,} B",
            f"1 run + {n} done", verdict(consistent)),
        Row("(c)   growth per cycle (of which state, task_event)", label,
            f"{growth:,.0f} B ({per_done:,.0f}, {events_per_cycle:,.0f})"),
        Row("(c)   completed instances keep their full state", label, f"{per_done:,.0f} B/instance", "", "note"),
    ]


# --- (d) the due-timer pass over a large population -----------------------------------------------
BENCH_N = Table(
    "bench_n", MetaData(),
    Column("i", Integer, primary_key=True, autoincrement=False),
    Column("src_case", Integer, nullable=False),
    Column("src_ref", String(32), nullable=False),
    Column("ref", String(32), nullable=False),
)


def _clone_sql(table: Table, overrides: Mapping[str, str], *, skip: tuple[str, ...] = ()) -> str:
    """INSERT ... SELECT that copies the template case's rows of a table once per bench_n row."""
    cols = [c.name for c in table.columns if c.name not in skip]
    exprs = [overrides.get(c, f"s.{c}") for c in cols]
    return (f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
            f"FROM bench_n n JOIN {table.name} s ON s.case_id = n.src_case")


def build_population(world: World, engine: Engine, now: datetime, cases: int, due: int) -> float:
    """Create `cases` open `hearing` cases, `due` of them with their timer due at `now`.

    A few cases are driven through the engine; the rest are bulk copies of their rows (each case
    with its own ids and reference). Returns the seconds it took.
    """
    t0 = time.perf_counter()
    seeds = 3
    templates: dict[bool, list[int]] = {True: [], False: []}
    # Due cases started 73 h ago (their 72 h timer is 1 h overdue); the others an hour ago.
    for is_due, started in ((True, now - timedelta(hours=73)), (False, now - timedelta(hours=1))):
        for _ in range(seeds):
            with world.factory() as session:
                case, _ = start_case(session, territory_id=world.territory_id, process_key="hearing",
                                     data={}, now=started, actor=world.actors["court"])
                session.commit()
                templates[is_due].append(case.id)
    with world.factory() as session:
        refs = {case_id: ref for case_id, ref in session.execute(select(Case.id, Case.reference)).all()}
        for is_due, ids in templates.items():
            for case_id in ids:
                [timer] = session.execute(select(DueTimer).where(DueTimer.case_id == case_id)).scalars().all()
                if (timer.fire_at <= now) != is_due:
                    raise RuntimeError(f"template timer at {timer.fire_at} does not fit {is_due=}")
    clones = cases - 2 * seeds
    due_clones = due - seeds
    src_due, src_later = templates[True][0], templates[False][0]
    rows = []
    for i in range(1, clones + 1):
        is_due = (i * due_clones) // clones != ((i - 1) * due_clones) // clones  # evenly spread
        src = src_due if is_due else src_later
        rows.append({"i": i, "src_case": src, "src_ref": refs[src], "ref": f"VG-2025-{i:06d}"})
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        BENCH_N.create(conn)
        conn.execute(BENCH_N.insert(), rows)
        base = {name: conn.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {name}")).scalar_one()
                for name in ("case_file", "process_instance", "open_task", "due_timer")}
        cols = [c.name for c in TABLES["case_file"].columns]
        exprs = [{"id": f"{base['case_file']} + n.i", "reference": "n.ref"}.get(c, f"s.{c}") for c in cols]
        conn.execute(text(f"INSERT INTO case_file ({', '.join(cols)}) SELECT {', '.join(exprs)} "
                          f"FROM bench_n n JOIN case_file s ON s.id = n.src_case"))
        new_case = f"{base['case_file']} + n.i"
        instance_id = f"{base['process_instance']} + n.i"
        task_id = f"{base['open_task']} + n.i"
        conn.execute(text(_clone_sql(TABLES["process_instance"], {
            "id": instance_id, "case_id": new_case, "state": "replace(s.state, n.src_ref, n.ref)"})))
        conn.execute(text(_clone_sql(TABLES["open_task"], {
            "id": task_id, "case_id": new_case, "instance_id": instance_id})))
        conn.execute(text(_clone_sql(TABLES["due_timer"], {
            "id": f"{base['due_timer']} + n.i", "case_id": new_case, "instance_id": instance_id})))
        conn.execute(text(_clone_sql(TABLES["task_event"], {
            "case_id": new_case,
            "task_id": f"CASE WHEN s.task_id IS NULL THEN NULL ELSE {task_id} END",
            "instance_id": f"CASE WHEN s.instance_id IS NULL THEN NULL ELSE {instance_id} END",
        }, skip=("id",))))
        BENCH_N.drop(conn)
        if postgres:
            for name in base:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                  f"(SELECT MAX(id) FROM {name}))"))
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - t0


def bench_timers(engine: Engine, label: str, settings: Settings) -> list[Row]:
    """(d) one `run_due_timers` pass with `timer_cases` open cases, `timer_due` of them due."""
    world = seed_world(engine)
    now = START + timedelta(days=7)
    build_s = build_population(world, engine, now, settings.timer_cases, settings.timer_due)
    with world.factory() as session:
        open_cases = session.execute(
            select(func.count(func.distinct(ProcessInstance.case_id))).where(ProcessInstance.status == "running")
        ).scalar_one()
        due_before = session.execute(select(func.count()).where(DueTimer.fire_at <= now)).scalar_one()
        timers = session.execute(select(func.count()).select_from(DueTimer)).scalar_one()
    gc.collect()
    with world.factory() as session:
        t0 = time.perf_counter()
        report = run_due_timers(session, now)
        session.commit()
        elapsed = time.perf_counter() - t0
    with world.factory() as session:
        due_after = session.execute(select(func.count()).where(DueTimer.fire_at <= now)).scalar_one()
        chased = session.execute(
            select(func.count()).where(OpenTask.element_id == "chase_court")
        ).scalar_one()
    population_ok = (open_cases == settings.timer_cases and due_before == settings.timer_due
                     and timers == settings.timer_cases)
    effect_ok = due_after == 0 and chased == settings.timer_due and report.failed == 0
    return [
        Row(f"(d) open cases / timers / due (built in {build_s:.0f} s)", label,
            f"{open_cases:,} / {timers:,} / {due_before:,}", f"{settings.timer_cases:,} / {settings.timer_due:,} due",
            verdict(population_ok)),
        Row("(d) run_due_timers(now) + commit, one call", label,
            f"{elapsed:.2f} s ({elapsed / max(report.fired, 1) * 1000:.1f} ms/timer)", "< 5 s", verdict(elapsed < 5)),
        Row("(d) fired / failed; then due left / chase tasks", label,
            f"{report.fired:,} / {report.failed}; {due_after} / {chased:,}",
            f"{settings.timer_due:,} / 0; 0 / {settings.timer_due:,}",
            verdict(report.fired == settings.timer_due and report.failed == 0 and effect_ok)),
    ]


# --- Profile of (a) -------------------------------------------------------------------------------
def profile_step(settings: Settings, *, top: int = 5) -> str:
    """cProfile the engine path of (a) on SQLite; return the top cumulative entries per origin."""
    with sqlite_database() as engine:
        world = seed_world(engine)
        tasks = start_simple_cases(world, settings.step_warmup + settings.step_reps, START)
        now = START + timedelta(hours=1)
        for task_id, version in tasks[: settings.step_warmup]:
            complete_review(world, task_id, version, now)
        profiler = cProfile.Profile()
        profiler.enable()
        for task_id, version in tasks[settings.step_warmup:]:
            complete_review(world, task_id, version, now)
        profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    entries = stats.stats  # type: ignore[attr-defined]
    ops = settings.step_reps
    groups: dict[str, list[tuple[float, str]]] = {"engine/": [], "SpiffWorkflow": [], "other libraries": []}
    for (filename, line, name), (_cc, calls, _tt, cumulative, _callers) in entries.items():
        if filename.startswith(ENGINE_DIR):
            group = "engine/"
            where = f"engine/{Path(filename).name}:{line} {name}"
        elif "SpiffWorkflow" in filename:
            group = "SpiffWorkflow"
            where = f"{filename.split('SpiffWorkflow/', 1)[-1]}:{line} {name}"
        elif "site-packages" in filename:
            group = "other libraries"
            where = f"{filename.split('site-packages/', 1)[-1]}:{line} {name}"
        else:
            continue
        per_op = f"{cumulative / ops * 1000:7.3f} ms/op  {calls / ops:6.1f} calls/op"
        groups[group].append((cumulative, f"{per_op}  {where}"))
    out = [f"cProfile of the engine path of (a) on SQLite, {ops} completions (cumulative time per operation):"]
    for group, found in groups.items():
        out.append(f"  top {top} in {group}:")
        out.extend(f"    {line}" for _, line in sorted(found, reverse=True)[:top])
    return "\n".join(out)


# --- Table and main -------------------------------------------------------------------------------
def render(rows: list[Row]) -> str:
    """Align the rows in plain-text columns."""
    header = Row("benchmark", "database", "figure", "target", "verdict")
    table = [header, *rows]
    widths = [max(len(getattr(r, f)) for r in table) for f in ("benchmark", "database", "figure", "target")]
    lines = []
    for n, r in enumerate(table):
        cells = [r.benchmark.ljust(widths[0]), r.database.ljust(widths[1]), r.figure.rjust(widths[2]),
                 r.target.ljust(widths[3]), r.verdict]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in [*widths, 7]))
    return "\n".join(lines)


@dataclass
class Backends:
    """The databases to run on, and why one was skipped."""

    names: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def database(name: str) -> Any:
    """The context manager creating a fresh database of a backend."""
    return sqlite_database() if name == "sqlite" else postgres_database()


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts; finishes in under a minute")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile summary of (a)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    backends = Backends(names=["sqlite"])
    reason = postgres_available()
    if reason is None:
        backends.names.append("postgresql")
    else:
        backends.skipped["postgresql"] = reason
    started = time.perf_counter()
    rows: list[Row] = []

    bare_samples, bare_size = bare_spiff_samples(settings)
    bare_ms = median_ms(bare_samples)
    rows.append(Row("(a) bare Spiff: deserialize, complete, steps, serialize", "memory",
                    f"{bare_ms:.2f} ms ({bare_size:,} chars)"))
    bare_protocol_ms = median_ms(bare_protocol_samples(settings))
    rows.append(Row("(a') bare Spiff: the same re-assessment step", "memory", f"{bare_protocol_ms:.2f} ms"))
    for name in backends.names:
        with database(name) as engine:
            world = seed_world(engine)
            rows.extend(bench_step(world, name, settings, bare_ms))
            rows.extend(bench_cycles(world, name, settings))
        rows.extend(bench_protocol_step(name, settings, bare_protocol_ms))
    timer_backends = [n for n in ("postgresql", "sqlite") if n in backends.names
                      and (n == "postgresql" or settings.timer_on_sqlite)]
    for name in timer_backends:
        with database(name) as engine:
            rows.extend(bench_timers(engine, name, settings))
    for name, why in backends.skipped.items():
        rows.append(Row("all benchmarks", name, "not run", "", f"SKIP ({why})"))
    if not settings.timer_on_sqlite:
        rows.append(Row("(d) run_due_timers", "sqlite", "not run", "", "SKIP (--quick)"))
    rows.sort(key=lambda r: r.benchmark[:4].replace(" ", ""))
    mode = "quick" if args.quick else "full"
    print(f"Coordina engine benchmarks ({mode} mode, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, {time.perf_counter() - started:.0f} s)")
    print(render(rows))
    if args.profile:
        print()
        print(profile_step(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
