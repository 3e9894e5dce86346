"""Hostile scripts, conditions, DMN cells and deadlines are stopped within their budget, wherever they run.

Each payload would freeze the process or exhaust its memory without the budget (see engine.budget):
here it is refused by validation when that can be proved, and otherwise stopped at run time, by the
sandbox itself, by the designer's try and by a real case step, which is left as it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from engine import budget, sandbox
from engine.actor import Actor
from engine.clock import FakeClock
from engine.definitions import SourceFile
from engine.deploy import deploy, validate
from engine.errors import ExecutionError, SandboxError
from engine.execution import complete_task
from engine.forms import FormDefinition
from engine.trial import Scenario, Step, run_trial
from tests.engine.test_execution import _snapshot, open_tasks, start_simple
from tests.support.engine_files import source, with_forms
from tests.support.world import World

CPU = 0.2
# Stopping takes the budget plus at most one check interval; the margin is for a loaded machine.
WITHIN = 1.0
DESIGNER = Actor(user_id=None, name="ana", roles=frozenset({"designer"}))
MARK = 'checked = note\nupdate_case(status="active", last_note=note)'


@pytest.fixture(autouse=True)
def small_budget() -> Iterator[None]:
    """Run every evaluation of these tests under a 0.2 s CPU budget (64 MB of memory, the default)."""
    before = budget.current_limits()
    budget.configure(budget.Limits(cpu_seconds=CPU, memory_bytes=64 * 2**20))
    yield
    budget.configure(before)


# Scripts that compile (validation cannot prove them unbounded) but must be stopped when they run.
RUNTIME_SCRIPTS = [
    "n = 10\nx = n ** n ** n",
    "n = 10 ** 5\nx = 'a' * n * n",
    "x = len(list(range(10**9)))",
    "x = sorted(range(10**9))",
    "x = set(range(10**9))",
    "x = max(range(10**9))",
    "x = sum(range(10**12))",
    "x = sum(v for v in range(10**12))",
    "x = any(v < 0 for v in range(10**12))",
    "x = [[i * j for i in range(10**5)] for j in range(10**5)]",
    "x = {i: [j for j in range(10**4)] for i in range(10**4)}",
    "def f(n):\n    return f(n + 1)\nx = f(0)",
    "def f(n):\n    return f(n - 1) + f(n - 1) if n else 1\nx = f(100)",
    "f = lambda g: g(g)\nx = f(f)",
    "x = 0\nwhile x >= 0:\n    x += 1",
    "x = []\nwhile True:\n    x.append(len(x))\n    if len(x) < 0:\n        break",
    "x = 7\nfor i in range(40):\n    x = x * x",
    "n = 10\nx = 1 << n ** 9",
    "x = 10 ** 5000\ny = '%d' % x",
    "x = 10 ** 5000\ny = f'{x}'",
    "x = 10 ** 5000\ny = str(x)",
    "l = [0] * 1000\nm = [l] * 1000\nx = str([m] * 1000)",
    "l = [0] * 1000\nm = [l] * 1000\nx = f'{[m] * 1000}'",
    "l = [0] * 1000\nm = [l] * 1000\nx = [m] * 1000",
    "w = 999999999\nx = '%*d' % (w, 1)",
    "x = '%0999999999d' % 1",
    "s = 'a' * 10000\nx = s.replace('a', s)",
    "x = 'a'.ljust(10**10)",
    "x = 'a'.zfill(10**10)",
    "x = '\\t'.expandtabs(10**10)",
    "x = (1).to_bytes(10**10, 'big')",
    "x = []\nx.extend(range(10**10))",
    "x = []\nx += range(10**10)",
    "x = 'ab'\nx *= 10**10",
    "x = 2\nx **= 10**9",
    "x = dict.fromkeys(range(10**9))",
    "x = ''.join(map(str, range(10**9)))",
    "x = ','.join(['a' * 1000] * 100000)",
    "x = [*range(10**9)]",
    "l = [0] * 5_000_000\nx = [l[:] for _ in range(100)]",
    "s = 'ab' * 10**7\nx = s.split('a')",
    "s = 'a' * 60_000_000\nx = [s.upper() for _ in range(5)]",
    "l = [0] * 5_000_000\nx = [l.copy() for _ in range(50)]",
    "x = list(zip(range(10**9), range(10**9)))",
    # A refusal caught by the script is raised again: the budget cannot be swallowed.
    "x = 0\nwhile x >= 0:\n    try:\n        while x >= 0:\n            x += 1\n    except Exception:\n        x += 1",
    "x = 0\nwhile x >= 0:\n    try:\n        y = [0] * 5_000_000\n        z = [y[:] for _ in range(9)]\n"
    "    except:\n        pass",
    "x = 0\ntry:\n    while x >= 0:\n        x += 1\nfinally:\n    while x >= 0:\n        x += 1",
    "x = sum([[1]] * 100000, [])",
    "n = 10 ** 8\nx = round(5, -n)",
    # Small in memory, a billion items to compare or hash: each repetition counts.
    "l = [0] * 1000\nm = [l] * 1000\na = [m] * 1000\nb = [[l[:]] * 1000] * 1000\nx = a == b",
    "t = (0,) * 1000\nu = (t,) * 1000\nv = (u,) * 1000\nx = {v}",
    "t = (0,) * 1000\nu = (t,) * 1000\nv = (u,) * 1000\nx = {v: 1}",
    "t = (0,) * 1000\nu = (t,) * 1000\nv = (u,) * 1000\nd = {}\nd[v] = 1",
    "t = (0,) * 1000\nu = (t,) * 1000\nv = (u,) * 1000\nx = set([v])",
    "u = [[0] * 1000] * 1000\nv = []\nfor i in range(1000):\n    v.append(u)\nx = sorted([v[:], v[:]])",
    "u = [[0] * 1000] * 1000\nv = []\nfor i in range(1000):\n    v.append(u)\nx = [v].count(v[:])",
    "u = [[0] * 1000] * 1000\nv = []\nfor i in range(1000):\n    v.append(u)\nx = v in [v[:]]",
]
# What validation refuses outright: constant powers, shifts and repetitions over the budget, and
# `while True` loops nothing can leave.
STATIC_SCRIPTS = [
    "x = 10**10**10",
    "x = 'a' * 10**10",
    "x = [0] * 10**10",
    "x = 1 << 10**9",
    "x = -(2**10**8)",
    "x = '%d' % (10**100000)",
    "x = f'{10**100000}'",
    "x = f'{1:999999999}'",
    "while True:\n    pass",
    "while 1:\n    x = 1\n    for i in range(3):\n        break",
]


def _stopped_in_time(run: object) -> str:
    """Run a callable that must be refused within the budget; return the refusal's message."""
    started = time.thread_time()
    with pytest.raises(SandboxError) as refused:
        run()  # type: ignore[operator]
    assert time.thread_time() - started < WITHIN
    return str(refused.value)


@pytest.mark.parametrize("script", RUNTIME_SCRIPTS)
def test_a_hostile_script_is_stopped_within_its_budget(script: str) -> None:
    assert sandbox.check_script(script) is None  # nothing to prove before running
    context = {"kept": [1, 2]}
    message = _stopped_in_time(lambda: sandbox.execute(script, context))
    assert "stopped" in message
    assert context == {"kept": [1, 2]}  # the task data is left as it was


@pytest.mark.parametrize("script", STATIC_SCRIPTS)
def test_a_provably_unbounded_script_is_refused_before_it_runs(script: str) -> None:
    problem = sandbox.check_script(script)
    assert problem is not None
    assert "forbidden" in problem
    _stopped_in_time(lambda: sandbox.execute(script, {}))


@pytest.mark.parametrize("expression", [
    "len(list(range(10**9)))", "sum(v for v in range(10**12))", "sorted(range(10**9))[0]",
    "(lambda f: f(f))(lambda f: f(f))", "len(str([[[0] * 1000] * 1000] * 1000))", "n ** n ** n",
])
def test_a_hostile_condition_is_stopped_within_its_budget(expression: str) -> None:
    message = _stopped_in_time(lambda: sandbox.evaluate(expression, {"n": 10}))
    assert message.startswith("stopped: ")


def test_a_deadline_of_a_billion_working_days_is_refused_at_once() -> None:
    started = time.thread_time()
    with pytest.raises(ValueError, match="working_days\\(\\) counts at most 3660 days"):
        sandbox.evaluate("working_days(n)", {"n": 10**9})
    assert time.thread_time() - started < 0.1


def test_the_refusal_names_the_budget() -> None:
    cpu = _stopped_in_time(lambda: sandbox.execute("x = 0\nwhile x >= 0:\n    x += 1", {}))
    assert cpu == "stopped: the script went over its CPU-time budget of 0.2 s"
    memory = _stopped_in_time(lambda: sandbox.evaluate("'a'.ljust(n)", {"n": 10**9}))
    assert memory == "stopped: the expression went over its memory budget of 64 MB"


def test_ordinary_scripts_still_run() -> None:
    context = {"answers": [3, 1, 2], "level": "alto", "n": 7}
    sandbox.execute(
        "total = sum(a * 2 for a in answers)\nordered = sorted(set(answers))\nlabel = f'{level:>6}|{n:03d}'\n"
        "text = '%s-%d' % (level, n)\nbig = 2 ** 200 * 3\nwords = ', '.join(str(a) for a in answers)\n"
        "kind = isinstance(answers, list) and isinstance(level, (str, int))\nlines = ''\n"
        "for i in range(5000):\n    lines += 'line %d\\n' % i\nsize = len(lines)\ndel lines\n"
        "pairs = dict(zip(['a', 'b'], range(2)))\nhead = answers[:2] + [0] * 3",
        context,
    )
    assert context["total"] == 12
    assert context["ordered"] == [1, 2, 3]
    assert context["label"] == "  alto|007"
    assert context["text"] == "alto-7"
    assert context["big"] == 2**200 * 3
    assert context["words"] == "3, 1, 2"
    assert context["kind"] is True
    assert context["pairs"] == {"a": 0, "b": 1}
    assert context["head"] == [3, 1, 0, 0, 0]
    assert context["size"] > 40_000


def test_limits_come_from_the_environment() -> None:
    assert budget.limits_from_env({}) == budget.Limits(cpu_seconds=1.0, memory_bytes=64 * 2**20)
    limits = budget.limits_from_env({budget.CPU_ENV: "0.5", budget.MEMORY_ENV: "32"})
    assert (limits.cpu_seconds, limits.memory_bytes) == (0.5, 32 * 2**20)
    with pytest.raises(ValueError, match="COORDINA_SCRIPT_CPU_SECONDS must be greater than zero"):
        budget.limits_from_env({budget.CPU_ENV: "0"})


# --- Through validation, the designer's try and a real case ------------------------------------


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize("script", ["while True:\n    pass", "checked = 10**10**10", "checked = 'a' * 10**10"])
def test_validation_refuses_a_provably_unbounded_script_naming_the_element(session: Session, script: str) -> None:
    problems = validate(session, with_forms([source("simple.bpmn", {MARK: script})])).problems
    assert [p.element_id for p in problems] == ["mark"]
    assert "forbidden" in problems[0].message


@pytest.mark.usefixtures("world")
def test_validation_refuses_unbounded_conditions_and_deadlines(session: Session) -> None:
    problems = validate(session, with_forms([source("simple.bpmn", {"'P3D'": "'P%dD' % 10**10**10"}),
                                             source("period.dmn", {'"P30D"': '"P" * 10**10'})])).problems
    assert {p.element_id for p in problems} >= {"review"}
    assert any(p.file == "period.dmn" for p in problems)
    assert all("forbidden" in p.message for p in problems)


@pytest.mark.usefixtures("deployed")
def test_a_try_stops_a_hostile_script_and_names_the_element_and_the_budget(
    session: Session, world: World, clock: FakeClock
) -> None:
    hostile = source("simple.bpmn", {MARK: "checked = sum(v for v in range(10**12))"})
    scenario = Scenario("simple", world.territory.id, steps=(Step("review", {"note": "a"}),
                                                             Step("police_check", {"note": "b"})))
    started = time.thread_time()
    report = run_trial(session, [hostile], scenario, actor=DESIGNER, now=clock.now())
    assert time.thread_time() - started < 5 * WITHIN  # a deploy, two steps and one stopped script
    [problem] = report.problems
    assert "CPU-time budget of 0.2 s" in problem
    assert "mark" in problem


@pytest.mark.usefixtures("deployed")
def test_a_try_stops_a_hostile_dmn_cell(session: Session, world: World, clock: FakeClock) -> None:
    hostile = source("period.dmn", {'"P30D"': '"P%dD" % len(sorted(range(10**9)))'})
    report = run_trial(session, [hostile], Scenario("cycle", world.territory.id, data={"level": "medio"}),
                       actor=DESIGNER, now=clock.now())
    [problem] = report.problems
    assert "sorted() of more than" in problem
    assert "period" in problem


@pytest.mark.usefixtures("deployed")
def test_a_loop_of_automatic_steps_is_stopped(session: Session, world: World, clock: FakeClock) -> None:
    # Each pass of `turn` and `again` is within budget; the loop between them never waits for anyone.
    spin = SourceFile("spin.bpmn", (Path(__file__).parent / "bounded" / "spin.bpmn").read_bytes())
    assert validate(session, [spin]).problems == []
    started = time.thread_time()
    report = run_trial(session, [spin], Scenario("spin", world.territory.id), actor=DESIGNER, now=clock.now())
    assert time.thread_time() - started < 10 * WITHIN
    [problem] = report.problems
    assert f"ran {budget.MAX_AUTOMATIC_STEPS:,} automatic steps without waiting for anyone" in problem


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(("script", "why"), [
    ("checked = 0\nwhile checked >= 0:\n    checked += 1", "CPU-time budget of 0.2 s"),
    ("n = len(note) + 9\nchecked = n ** n ** n", "digits"),
    ("checked = len(list(range(10**9 + len(note))))", "list() of more than"),
])
def test_a_case_step_that_runs_a_hostile_script_is_refused_and_left_as_it_was(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition], script: str, why: str
) -> None:
    deploy(session, with_forms([source("simple.bpmn", {MARK: script})]), actor="tests", now=clock.now())
    session.commit()
    case = start_simple(session, world, clock)
    [task] = open_tasks(session, case)
    complete_task(session, task.id, {"note": "ok"}, expected_version=1, now=clock.now(),
                  actor=world.actor("social_services"))
    session.commit()
    session.expire_all()
    before = _snapshot(session)
    [police] = open_tasks(session, case)
    started = time.thread_time()
    with pytest.raises(ExecutionError) as refused:
        complete_task(session, police.id, {"note": "x"}, expected_version=1, now=clock.now(),
                      actor=world.actor("state_police"))
    assert time.thread_time() - started < WITHIN
    assert why in str(refused.value)
    assert "at mark" in str(refused.value)
    session.rollback()  # as the web request or the CLI command that owns the transaction does
    session.expire_all()
    assert _snapshot(session) == before
