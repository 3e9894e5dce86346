"""Errors raised by the engine; each carries enough context for a clear message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One validation finding: which file, which element, which line, and why."""

    file: str
    message: str
    element_id: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.element_id:
            where += f" [{self.element_id}]"
        return f"{where}: {self.message}"


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class DefinitionError(EngineError):
    """A BPMN, DMN or form definition was refused; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid definition")


class SandboxError(EngineError):
    """A script, condition or expression tried something the sandbox forbids."""


class ConflictError(EngineError):
    """The caller acted on a stale version of a task or instance."""


class NotFoundError(EngineError):
    """The task, case or definition does not exist (or is no longer open)."""


class PermissionDeniedError(EngineError):
    """The acting user may not perform this operation."""


class TaskDataError(EngineError):
    """Submitted task data failed validation; `errors` maps field path to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))


class ExecutionError(EngineError):
    """The workflow failed while running (a script error, a bad expression...)."""
