"""The clock SpiffWorkflow sees, and the sandboxed script engine with the calls scripts may make."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer

from engine import sandbox
from engine.errors import ExecutionError

# --- Clock -------------------------------------------------------------------------------------
# SpiffWorkflow reads datetime.now(timezone.utc) inside its timer module and offers no clock hook.
# We give that module a datetime subclass whose now() answers the engine's injected time while an
# engine operation runs (a context variable, so threads and workers never share it) and the real
# time otherwise. Only the timer module's name binding changes; the library's classes do not.
_engine_now: ContextVar[datetime | None] = ContextVar("coordina_engine_now", default=None)


class _EngineDatetime(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _EngineDatetime:
        injected = _engine_now.get()
        real = injected if injected is not None else datetime.now(UTC)
        local = real.astimezone(tz) if tz is not None else real.astimezone(UTC).replace(tzinfo=None)
        return cls.combine(local.date(), local.time(), local.tzinfo)


spiff_timer.datetime = _EngineDatetime


@contextmanager
def engine_time(now: datetime) -> Iterator[None]:
    """Make SpiffWorkflow see `now` as the current time inside the block."""
    token = _engine_now.set(now)
    try:
        yield
    finally:
        _engine_now.reset(token)


# --- Sandboxed scripts -------------------------------------------------------------------------
# Scripts may call update_case(...) to change the case's status, risk level or facts,
# start_process(...) to start another line of work of the case, and cancel_track(...) to stop one;
# the engine collects those calls per operation and applies them after the step.
@dataclass
class ScriptEffects:
    """What the scripts of one operation asked of the case, applied by the engine after the step."""

    case_updates: dict[str, Any] = field(default_factory=dict)
    # Each start: {"process": key, "data": {...}, "after": ISO duration or None, "if_idle": bool}.
    starts: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)

    def merge(self, other: ScriptEffects) -> None:
        """Add another operation's effects after these."""
        self.case_updates.update(other.case_updates)
        self.starts.extend(other.starts)
        self.cancels.extend(other.cancels)


_effects: ContextVar[ScriptEffects | None] = ContextVar("coordina_script_effects", default=None)


def _collector(name: str) -> ScriptEffects:
    collector = _effects.get()
    if collector is None:
        raise ExecutionError(f"{name}() can only run inside an engine operation")
    return collector


def _update_case(**changes: Any) -> None:
    collector = _collector("update_case")
    json.dumps(changes)  # refuse values that could not be stored
    collector.case_updates.update(changes)


def _start_process(
    process: str, data: Mapping[str, Any] | None = None, after: str | None = None, if_idle: bool = False
) -> None:
    collector = _collector("start_process")
    if not isinstance(process, str) or not process:
        raise ExecutionError(f"start_process() needs a process key, got {process!r}")
    payload = dict(data or {})
    json.dumps(payload)
    collector.starts.append({"process": process, "data": payload, "after": after, "if_idle": bool(if_idle)})


def _cancel_track(track: str) -> None:
    collector = _collector("cancel_track")
    if not isinstance(track, str) or not track:
        raise ExecutionError(f"cancel_track() needs a track name, got {track!r}")
    collector.cancels.append(track)


def _value_of(context: Mapping[str, Any]) -> Any:
    """Give scripts value(name, default): a start datum that a caller may leave out (a trial, an old start)."""

    def value(name: str, default: Any = None) -> Any:
        return context.get(name, default)

    return value


def script_now() -> datetime:
    """Return the engine's injected time inside an operation, else the real time."""
    injected = _engine_now.get()
    return injected if injected is not None else datetime.now(UTC)


class _SandboxEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """Evaluate and execute through RestrictedPython (see engine.sandbox), never plain eval/exec.

    Besides the sandbox helpers, models get now() (the engine's clock) and, in scripts,
    update_case(...).
    """

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Any = None) -> Any:
        return sandbox.evaluate(expression, context, {"now": script_now, "value": _value_of(context),
                                                      **(external_context or {})})

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        external = {"now": script_now, "update_case": _update_case, "start_process": _start_process,
                    "cancel_track": _cancel_track, "value": _value_of(context), **(external_context or {})}
        sandbox.execute(script, context, external)
        return True


SCRIPT_ENGINE = PythonScriptEngine(environment=_SandboxEnvironment())


@contextmanager
def collect_effects() -> Iterator[ScriptEffects]:
    """Collect update_case(...), start_process(...) and cancel_track(...) calls made inside the block."""
    collected = ScriptEffects()
    token = _effects.set(collected)
    try:
        yield collected
    finally:
        _effects.reset(token)
