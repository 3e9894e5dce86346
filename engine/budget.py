"""The CPU-time and memory budget of one sandboxed evaluation (a script, condition, DMN cell, timer).

Sandboxed code runs in-process, so a budget cannot be an OS limit. Instead `engine.sandbox_policy`
rewrites the code so that every loop pass, comprehension item and function call ticks a `Meter`,
and every operation that can build a large value from small inputs in one C-level step (`**`,
`*`, `<<`, `%`, f-strings, slices, growing string methods, builtins that consume an iterable)
goes through `engine.sandbox_limits`, which estimates the result BEFORE computing it, refuses one
over the memory budget and charges the rest to the meter. Every `CHECK_EVERY` ticks, and after
every quarter of the memory budget charged, the meter compares the thread's CPU time with the
deadline and the process's resident memory with the figure at the start of the evaluation.

The limits come from the environment (`COORDINA_SCRIPT_CPU_SECONDS`, default 1;
`COORDINA_SCRIPT_MEMORY_MB`, default 64) and can be changed with `configure()`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass

from engine.errors import SandboxError

CPU_ENV = "COORDINA_SCRIPT_CPU_SECONDS"
MEMORY_ENV = "COORDINA_SCRIPT_MEMORY_MB"
CHECK_EVERY = 1024  # ticks between two clock/memory readings (about 0.1 ms of looping)
# Above this size, dividing or printing an integer takes time quadratic in its length
# (a million-bit division takes seconds); no deadline or score needs numbers this large.
MAX_INT_BITS = 1 << 17
# One advance of a workflow (after a step, a message or a timer) runs at most this many automatic
# steps (scripts, gateways, events): each evaluation has its budget, and a loop of them has this one.
MAX_AUTOMATIC_STEPS = 500
MAX_FORMAT_WIDTH = 10_000  # widths and precisions in %-formats and f-strings
_MEASURE_FROM = 2**20  # smaller values do not need the resident memory read before them
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Limits:
    """What one evaluation may spend."""

    cpu_seconds: float = 1.0
    memory_bytes: int = 64 * 2**20

    @property
    def max_items(self) -> int:
        """Most items a builtin may consume or build at once (8 bytes per reference, a safe margin)."""
        return max(self.memory_bytes // 64, 1024)

    def describe_cpu(self) -> str:
        """Say the CPU budget for a message."""
        return f"{self.cpu_seconds:g} s"

    def describe_memory(self) -> str:
        """Say the memory budget for a message."""
        return f"{self.memory_bytes / 2**20:g} MB"


class BudgetExceededError(SandboxError):
    """An evaluation went over its CPU-time or memory budget and was stopped."""


def limits_from_env(environ: Mapping[str, str] | None = None) -> Limits:
    """Read the limits from the environment, refusing values that are not positive numbers."""
    env = os.environ if environ is None else environ
    defaults = Limits()
    cpu = _positive(env, CPU_ENV, defaults.cpu_seconds)
    memory = _positive(env, MEMORY_ENV, defaults.memory_bytes / 2**20)
    return Limits(cpu_seconds=cpu, memory_bytes=int(memory * 2**20))


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    """Return the positive number in env[name], or default when it is not set."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{name} must be greater than zero, not {raw!r}")
    return value


_limits: Limits = limits_from_env()


def configure(limits: Limits) -> None:
    """Set the limits of every evaluation from now on (app configuration, tests)."""
    global _limits  # one process-wide setting, read on every evaluation
    _limits = limits


def current_limits() -> Limits:
    """Return the limits evaluations run under."""
    return _limits


def _resident_bytes() -> int:
    """Return the process's resident memory, or 0 where /proc is not available."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class Meter:
    """The running account of one evaluation: ticks, CPU deadline, memory."""

    __slots__ = ("countdown", "deadline", "limits", "pending", "refusal", "resident_at_start", "what")

    def __init__(self, limits: Limits, what: str) -> None:
        self.limits = limits
        self.what = what
        self.deadline = time.thread_time() + limits.cpu_seconds
        self.countdown = CHECK_EVERY
        self.pending = 0  # bytes charged since memory was last measured
        self.resident_at_start = -1  # read when first needed: most evaluations never get there
        self.refusal = ""  # once over budget, the evaluation stays over it (see `caught`)

    def tick(self) -> bool:
        """Count one loop pass, comprehension item or call; check the budget now and then."""
        self.countdown -= 1
        if self.countdown <= 0:
            self.countdown = CHECK_EVERY
            self.check()
        return True

    def check(self) -> None:
        """Stop the evaluation if it is over its CPU time or has grown the process over its memory."""
        if self.refusal:
            self.countdown = 1  # every tick from now on raises again
            raise BudgetExceededError(self.refusal)
        if time.thread_time() > self.deadline:
            self._stop(f"stopped: the {self.what} went over its CPU-time budget of {self.limits.describe_cpu()}")
        resident = _resident_bytes()
        if self.resident_at_start < 0:
            self.resident_at_start = resident
        elif resident - self.resident_at_start > self.limits.memory_bytes:
            self.over_memory()

    def charge(self, nbytes: int) -> None:
        """Account for a value about to be built: refuse one over the budget, measure after every quarter."""
        if nbytes > self.limits.memory_bytes:
            self.over_memory()
        if self.resident_at_start < 0 and nbytes >= _MEASURE_FROM:
            self.resident_at_start = _resident_bytes()  # before the first large value is built
        self.pending += nbytes
        if self.pending > self.limits.memory_bytes // 4:
            self.pending = 0
            self.countdown = CHECK_EVERY
            self.check()
        else:
            self.tick()

    def over_memory(self) -> None:
        """Stop the evaluation for going over its memory budget."""
        self._stop(f"stopped: the {self.what} went over its memory budget of {self.limits.describe_memory()}")

    def _stop(self, refusal: str) -> None:
        """Refuse to go on, now and at every later tick or exception handler."""
        self.refusal = refusal
        self.countdown = 1
        raise BudgetExceededError(refusal)

    def caught(self) -> None:
        """Re-raise the refusal in an `except` block: a script cannot swallow its budget and go on."""
        if self.refusal:
            raise BudgetExceededError(self.refusal)


_meter: ContextVar[Meter | None] = ContextVar("coordina_sandbox_meter", default=None)


def start(what: str) -> tuple[Meter, Token[Meter | None] | None]:
    """Start an evaluation with a fresh budget; one inside another shares the outer budget.

    Pass the token to `stop` when the evaluation ends (a plain function pair, not a context
    manager: this runs for every condition the engine evaluates).
    """
    outer = _meter.get()
    if outer is not None:
        return outer, None
    fresh = Meter(_limits, what)
    return fresh, _meter.set(fresh)


def stop(token: Token[Meter | None] | None) -> None:
    """End the evaluation `start` began."""
    if token is not None:
        _meter.reset(token)


def meter() -> Meter:
    """Return the running evaluation's meter (a throw-away one outside any evaluation)."""
    current = _meter.get()
    return current if current is not None else Meter(_limits, "expression")
