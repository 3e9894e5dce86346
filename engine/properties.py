"""The extension properties a model gives its steps and start event, read once per process version.

A BPMN element carries them as `<spiffworkflow:property name="..." value="..."/>`; the engine reads
them here, when a version is parsed or loaded (`engine.definitions`), and every other module uses the
typed values. Their syntax is checked at deploy time (`engine.validation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Property names as written in the models.
FORM, TRACK, REPLACES = "form", "track", "replaces"
DUE, VISIBLE_BEFORE, PRIORITY = "due", "visibleBefore", "priority"
NEEDS_IDENTITY, ASSIGNED_AGENCY = "needsIdentity", "assignedAgency"
REMINDER_BEFORE, ESCALATE_AGENCY_AFTER = "reminderBefore", "escalateAgencyAfter"
ESCALATE_SUPERVISOR_AFTER, ESCALATE_COORDINATOR_AFTER = "escalateSupervisorAfter", "escalateCoordinatorAfter"


@dataclass(frozen=True)
class StepProperties:
    """What the model says about one user task: its form, deadline, escalation periods, who does it.

    The expressions are kept as written ("" when the model sets none) and evaluated on the task's data.
    """

    form: str | None = None
    due: str = ""  # a date, or a duration from the task's creation
    visible_before: str = ""  # how long before its deadline the task shows in the worklist
    priority: str = ""
    needs_identity: bool = False  # the step needs to know who she is (need-to-know)
    # An expression naming the agency (an agency id in the task's data) instead of the lane's kind.
    assigned_agency: str = ""
    reminder_before: str = ""
    escalate_agency_after: str = ""
    escalate_supervisor_after: str = ""
    escalate_coordinator_after: str = ""

    @classmethod
    def from_raw(cls, raw: Mapping[str, str]) -> StepProperties:
        """Read a user task's extension properties."""
        return cls(
            form=raw.get(FORM),
            due=raw.get(DUE, ""),
            visible_before=raw.get(VISIBLE_BEFORE, ""),
            priority=raw.get(PRIORITY, ""),
            needs_identity=raw.get(NEEDS_IDENTITY, "").strip().lower() == "true",
            assigned_agency=raw.get(ASSIGNED_AGENCY, ""),
            reminder_before=raw.get(REMINDER_BEFORE, "").strip(),
            escalate_agency_after=raw.get(ESCALATE_AGENCY_AFTER, "").strip(),
            escalate_supervisor_after=raw.get(ESCALATE_SUPERVISOR_AFTER, "").strip(),
            escalate_coordinator_after=raw.get(ESCALATE_COORDINATOR_AFTER, "").strip(),
        )


@dataclass(frozen=True)
class StartProperties:
    """What the model says about a process's start: the form a person fills in, its line of work."""

    form: str | None = None
    track: str | None = None  # the line of work (police, social...): one running instance per track and case
    replaces: tuple[str, ...] = ()  # process keys whose running instances the start cancels
    # Set when the process is started for an agency chosen elsewhere (a Mesa agreement), not reported by one.
    assigned_agency: str | None = None

    @classmethod
    def from_raw(cls, raw: Mapping[str, str]) -> StartProperties:
        """Read a start event's extension properties."""
        return cls(
            form=raw.get(FORM),
            track=(raw.get(TRACK) or "").strip() or None,
            replaces=tuple(key.strip() for key in raw.get(REPLACES, "").split(",") if key.strip()),
            assigned_agency=raw.get(ASSIGNED_AGENCY),
        )


@dataclass(frozen=True)
class ProcessProperties:
    """The properties of a process version: its start event's and each user task's, by element id."""

    start: StartProperties = StartProperties()
    steps: Mapping[str, StepProperties] = field(default_factory=dict)

    def step(self, element_id: str) -> StepProperties:
        """Return a user task's properties (none set for an element the model does not describe)."""
        return self.steps.get(element_id, _NO_STEP_PROPERTIES)

    def forms(self) -> set[str]:
        """Return the names of the forms the start event and the steps show."""
        names = {step.form for step in self.steps.values()} | {self.start.form}
        return {name for name in names if name}


_NO_STEP_PROPERTIES = StepProperties()


def read_properties(start: Mapping[str, str], steps: Mapping[str, Mapping[str, str]]) -> ProcessProperties:
    """Read the raw properties of a start event and of user tasks (by element id)."""
    return ProcessProperties(
        StartProperties.from_raw(start), {element_id: StepProperties.from_raw(raw) for element_id, raw in steps.items()}
    )
