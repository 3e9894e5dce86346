"""Verify a protocol before deploying it: many generated case histories, the invariants after every event.

`verify` plays `histories` generated histories of `days` days (engine.simulation: the real engine
on a simulated clock, a private in-memory database per worker process) and, for each invariant
some history broke, shrinks the first such history to a shortest event sequence that still breaks
it (delta debugging, each candidate re-run by the engine). The report tells it in Spanish and in
English. The same seed gives the same histories and the same sequences, whatever the workers.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.assignment import known_kinds
from engine.definitions import SourceFile, current_sources
from engine.models import Territory
from engine.simulated_history import Breach, Event, HistoryResult
from engine.simulation import CheckerFactory, Simulator, World, invariant_checker

SHRINK_RUNS = 150  # candidate re-runs per broken invariant, at most


@dataclass(frozen=True)
class Settings:
    """How much to verify: histories, their length, the seed, worker processes, a time budget in seconds."""

    histories: int = 500
    days: int = 365
    seed: int = 1
    workers: int = 1
    budget: float | None = None  # stop starting histories after this many seconds
    shrink_runs: int = SHRINK_RUNS
    shrink_seconds: float = 60.0  # per broken invariant


@dataclass
class Finding:
    """One broken invariant: how many histories broke it, and a shortest sequence that does."""

    invariant_id: str
    title: str
    title_en: str
    histories: int
    history: int  # the (first) history shrunk
    breach: Breach
    sequence: list[Event]
    runs: int  # candidate sequences re-run while shrinking

    def lines(self, lang: str = "es") -> list[str]:
        """Tell the sequence step by step, then the breach, in Spanish or English."""
        told = [describe(event, lang) for event in self.sequence]
        b = self.breach
        if lang == "es":
            told.append(f"{when(b.at, lang)}: se incumple «{self.title}»: {b.message}")
            if b.open_steps:
                told.append("  Pasos abiertos en ese momento: " + "; ".join(
                    f"«{name}» ({agency})" if agency else f"«{name}»" for name, agency in b.open_steps))
        else:
            told.append(f"{when(b.at, lang)}: \"{self.title_en}\" is broken: {b.message_en}")
            if b.open_steps:
                told.append("  Steps open at that moment: " + "; ".join(
                    f"\"{name}\" ({agency})" if agency else f"\"{name}\"" for name, agency in b.open_steps))
        return told


@dataclass
class Report:
    """What a verification did and found."""

    settings: Settings
    histories: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    levels: Counter[str] = field(default_factory=Counter)
    incidents: int = 0
    late: int = 0
    unanswered: int = 0
    cases: int = 0  # histories that opened a case (none: the protocol has no entry process)
    errors: list[str] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def ok(self) -> bool:
        """Tell whether no history broke an invariant."""
        return not self.findings

    @property
    def per_second(self) -> float:
        """Histories played per second of wall-clock time."""
        return self.histories / self.seconds if self.seconds else 0.0


def verify(
    files: Sequence[SourceFile], world: World, settings: Settings = Settings(),
    checker: CheckerFactory = invariant_checker,
) -> Report:
    """Verify a protocol (every file it needs) on generated histories; see the module's docstring.

    Raises DefinitionError when the files do not validate. `checker` must be a module-level
    function when `settings.workers` > 1 (it goes to the worker processes).
    """
    report = Report(settings)
    started = time.perf_counter()
    with _workers(files, world, settings, checker) as pool:
        results: list[HistoryResult] = []
        for result in pool.histories(range(settings.histories)):
            results.append(result)
            if settings.budget is not None and time.perf_counter() - started > settings.budget:
                report.stopped_early = True
                break
        report.seconds = time.perf_counter() - started
        results.sort(key=lambda r: r.index)
        _tally(report, results)
        first: dict[str, HistoryResult] = {}
        counts: Counter[str] = Counter()
        for result in results:
            for invariant_id, breach in result.breaches.items():
                counts[invariant_id] += 1
                shortest = first.get(invariant_id)
                if shortest is None or breach.events < shortest.breaches[invariant_id].events:
                    first[invariant_id] = result
        jobs = [(first[i].events[:first[i].breaches[i].events], first[i].breaches[i], i)
                for i in sorted(first)]
        titles = pool.titles
        shrunk = pool.shrink(jobs, settings.shrink_runs, settings.shrink_seconds)
        for invariant_id, (sequence, breach, runs) in zip(sorted(first), shrunk, strict=True):
            title, title_en = titles.get(invariant_id, (invariant_id, invariant_id))
            report.findings.append(Finding(invariant_id, title, title_en, counts[invariant_id],
                                           first[invariant_id].index, breach, sequence, runs))
    return report


def deployed_protocol(session: Session, drafts: Sequence[SourceFile] = ()) -> list[SourceFile]:
    """Return every deployed file as last deployed, with `drafts` over them (what a deploy would give)."""
    files = {name: SourceFile(name, content) for name, content in current_sources(session).items()}
    files.update({f.name: f for f in drafts})
    return [files[name] for name in sorted(files)]


def world_of(session: Session) -> World:
    """Return the agency kinds of the installation and the region of its first territory (holidays)."""
    region = session.execute(select(Territory.region).order_by(Territory.id).limit(1)).scalar_one_or_none()
    return World(known_kinds(session), region or "MD")


def _tally(report: Report, results: Sequence[HistoryResult]) -> None:
    report.histories = len(results)
    for result in results:
        report.cases += bool(result.events)
        report.levels.update(result.levels)
        report.incidents += result.incidents
        report.late += result.late
        report.unanswered += result.unanswered
        for error in result.errors:
            if error not in report.errors and len(report.errors) < 20:
                report.errors.append(error)


# --- Shrinking -------------------------------------------------------------------------------------
def shrink(
    sim: Simulator, events: Sequence[Event], breach: Breach, invariant_id: str, runs: int = SHRINK_RUNS,
    seconds: float = 60.0,
) -> tuple[list[Event], Breach, int]:
    """Return a shortest sub-sequence of `events` that still breaks the invariant, its breach, and the re-runs made.

    The detection (the first event) always stays; the rest is reduced by delta debugging (ddmin),
    each candidate played again by the engine up to the moment of the original breach. After
    `runs` re-runs or `seconds`, the shortest sequence found so far is returned.
    """
    stop = time.perf_counter() + seconds
    head, rest = list(events[:1]), list(events[1:])
    horizon = breach.at
    seen: dict[tuple[int, ...], Breach | None] = {}
    positions = {id(e): n for n, e in enumerate(rest)}

    def test(candidate: list[Event]) -> bool:
        key = tuple(positions[id(e)] for e in candidate)
        if key not in seen:
            if len(seen) >= runs or time.perf_counter() > stop:
                return False
            seen[key] = sim.replay(head + candidate, horizon, invariant_id)
        return seen[key] is not None

    kept = ddmin(rest, test) if test(rest) else rest
    final = seen.get(tuple(positions[id(e)] for e in kept)) or breach
    return head + kept, final, len(seen)


def ddmin(items: list[Event], test: Callable[[list[Event]], bool]) -> list[Event]:
    """Zeller's delta debugging: a 1-minimal sub-list of `items` for which `test` still holds."""
    if test([]):
        return []
    n = 2
    while len(items) >= 2:
        size = len(items)
        chunks = [items[size * i // n: size * (i + 1) // n] for i in range(n)]
        for i, chunk in enumerate(chunks):
            if test(chunk):
                items, n = chunk, 2
                break
            complement = [e for j, c in enumerate(chunks) if j != i for e in c]
            if n > 2 and test(complement):
                items, n = complement, max(n - 1, 2)
                break
        else:
            if n >= len(items):
                break
            n = min(2 * n, len(items))
    if len(items) == 1 and test([]):
        return []
    return items


# --- Telling ---------------------------------------------------------------------------------------
def when(at: timedelta, lang: str = "es") -> str:
    """Say a moment of a history: 'día 3, 14:05' counted from the detection (day 0 at 08:00)."""
    minutes = int((at + timedelta(hours=8)).total_seconds() // 60)
    day, minute = divmod(minutes, 24 * 60)
    return f"{'día' if lang == 'es' else 'day'} {day}, {minute // 60:02d}:{minute % 60:02d}"


def describe(event: Event, lang: str = "es") -> str:
    """Tell one event of a sequence in Spanish or English."""
    answers = "; ".join(f"{title}: {es if lang == 'es' else en}" for title, es, en in event.summary)
    told = f" ({answers})" if answers else ""
    late = ""
    if event.late is not None:
        hours = round(event.late.total_seconds() / 3600)
        amount = f"{hours} h" if hours < 48 else (f"{hours // 24} días" if lang == "es" else f"{hours // 24} days")
        late = f", {amount} tarde" if lang == "es" else f", {amount} late"
    if event.action == "start":
        return (f"{when(event.at, lang)}: detección registrada, «{event.label}»{told}" if lang == "es"
                else f"{when(event.at, lang)}: detection recorded, \"{event.label}\"{told}")
    if event.action == "incident":
        return (f"{when(event.at, lang)}: nuevo incidente comunicado, «{event.label}»{told}" if lang == "es"
                else f"{when(event.at, lang)}: new incident reported, \"{event.label}\"{told}")
    who = event.agency or ("el organismo" if lang == "es" else "the agency")
    return (f"{when(event.at, lang)}: {who} completa «{event.label}»{late}{told}" if lang == "es"
            else f"{when(event.at, lang)}: {who} completes \"{event.label}\"{late}{told}")


# --- Workers -----------------------------------------------------------------------------------------
class _Local:
    """Histories and shrinking in this process (one worker)."""

    def __init__(self, files: Sequence[SourceFile], world: World, settings: Settings, checker: CheckerFactory) -> None:
        self.sim = Simulator(files, world, checker, days=settings.days, seed=settings.seed)
        self.titles = self.sim.checker.titles

    def histories(self, indexes: range) -> Iterator[HistoryResult]:
        return (self.sim.history(i) for i in indexes)

    def shrink(self, jobs: list[tuple[list[Event], Breach, str]], runs: int, seconds: float,
               ) -> list[tuple[list[Event], Breach, int]]:
        return [shrink(self.sim, events, breach, invariant_id, runs, seconds) for events, breach, invariant_id in jobs]

    def close(self) -> None:
        self.sim.close()


class _Pool:
    """Histories and shrinking spread over worker processes, each with its own simulator."""

    def __init__(self, files: Sequence[SourceFile], world: World, settings: Settings, checker: CheckerFactory) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads and sockets
        self.pool = context.Pool(settings.workers, _init_worker, (list(files), world, settings, checker))
        self.titles: dict[str, tuple[str, str]] = self.pool.apply(_worker_titles)

    def histories(self, indexes: range) -> Iterator[HistoryResult]:
        return self.pool.imap_unordered(_worker_history, indexes, chunksize=2)

    def shrink(self, jobs: list[tuple[list[Event], Breach, str]], runs: int, seconds: float,
               ) -> list[tuple[list[Event], Breach, int]]:
        return self.pool.starmap(_worker_shrink, [(*job, runs, seconds) for job in jobs], chunksize=1)

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


class _workers:  # noqa: N801 -- used as a context manager, read as a verb
    def __init__(self, files: Sequence[SourceFile], world: World, settings: Settings, checker: CheckerFactory) -> None:
        self.runner: _Local | _Pool = (_Pool if settings.workers > 1 else _Local)(files, world, settings, checker)

    def __enter__(self) -> _Local | _Pool:
        return self.runner

    def __exit__(self, *_exc: object) -> None:
        self.runner.close()


_SIM: Simulator | None = None


def _init_worker(files: list[SourceFile], world: World, settings: Settings, checker: CheckerFactory) -> None:
    global _SIM  # one simulator per worker process, made once
    _SIM = Simulator(files, world, checker, days=settings.days, seed=settings.seed)


def _worker_titles() -> dict[str, tuple[str, str]]:
    assert _SIM is not None
    return _SIM.checker.titles


def _worker_history(index: int) -> HistoryResult:
    assert _SIM is not None
    return _SIM.history(index)


def _worker_shrink(
    events: list[Event], breach: Breach, invariant_id: str, runs: int, seconds: float,
) -> tuple[list[Event], Breach, int]:
    assert _SIM is not None
    return shrink(_SIM, events, breach, invariant_id, runs, seconds)


def summary(report: Report, lang: str = "es") -> list[str]:
    """Tell a report in a few lines (what ran, how fast, each broken invariant's count), then each sequence."""
    es = lang == "es"
    lines = [
        (f"{report.histories} historias de {report.settings.days} días (semilla {report.settings.seed}) en "
         f"{report.seconds:.1f} s: {report.per_second:.2f} historias/segundo" if es else
         f"{report.histories} histories of {report.settings.days} days (seed {report.settings.seed}) in "
         f"{report.seconds:.1f} s: {report.per_second:.2f} histories/second"),
        ("Niveles alcanzados: " if es else "Levels reached: ")
        + (", ".join(f"{level} {count}" for level, count in sorted(report.levels.items())) or "-")
        + (f"; incidentes {report.incidents}; respuestas tardías {report.late}; sin respuesta {report.unanswered}" if es
           else f"; incidents {report.incidents}; late answers {report.late}; never answered {report.unanswered}"),
    ]
    if report.stopped_early:
        lines.append("Se alcanzó el tiempo máximo: se verificaron menos historias." if es
                     else "The time budget ran out: fewer histories were verified.")
    if report.ok:
        lines.append("Ninguna invariante incumplida." if es else "No invariant broken.")
    for finding in report.findings:
        title = finding.title if es else finding.title_en
        lines.append(f"Incumplida «{title}» en {finding.histories} de {report.histories} historias. "
                     f"Secuencia más corta ({len(finding.sequence)} sucesos):" if es else
                     f"Broken \"{title}\" in {finding.histories} of {report.histories} histories. "
                     f"Shortest sequence ({len(finding.sequence)} events):")
        lines.extend(f"  {line}" for line in finding.lines(lang))
    for error in report.errors[:5]:
        lines.append(("Aviso del motor: " if es else "Engine notice: ") + error)
    return lines

