"""The agenda rules of a Mesa meeting: which cases are reviewed, and why. A pure function over facts.

The facts are read by `webapp.mesa.queries.agenda_facts` (already limited to the followed cases of the
Mesa's territory); `build_agenda` turns them into one item per case with all its reasons, the most
urgent first. Reasons, in the order they are shown:

- `incident` / `complaint`: the new incident or complaint an extraordinary meeting was convened for;
- `new`: the case was registered since the previous meeting;
- `high_risk`: the case is at a level the deployed risk scale flags `high` (*alto*, *extremo*);
- `overdue_steps`: one of its protocol steps is past its deadline;
- `level_changed`: its risk level changed since the previous meeting;
- `inactivation`: it is proposed for inactivation (an open inactivation step or a running inactivation);
- `open_agreement` / `overdue_agreement`: an agreement of the Mesa is still open (and past its date);
- `manual`: a member put it on the agenda by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.levels import SHIPPED, RiskScale

REASONS = ("incident", "complaint", "new", "high_risk", "overdue_steps", "level_changed", "inactivation",
           "open_agreement", "overdue_agreement", "manual")
PINNED = ("incident", "complaint", "manual")  # reasons an item keeps whatever the rules say


@dataclass(frozen=True)
class AgendaFacts:
    """What the rules look at, per case id (every case here is followed and of the Mesa's territory)."""

    levels: Mapping[int, str | None] = field(default_factory=dict)  # risk level of every case considered
    references: Mapping[int, str] = field(default_factory=dict)
    new: frozenset[int] = frozenset()
    overdue_steps: frozenset[int] = frozenset()
    level_changed: frozenset[int] = frozenset()
    inactivation: frozenset[int] = frozenset()
    open_agreements: frozenset[int] = frozenset()
    overdue_agreements: frozenset[int] = frozenset()
    pinned: Mapping[int, str] = field(default_factory=dict)  # case id -> incident | complaint | manual
    scale: RiskScale = SHIPPED  # the deployed risk scale: which levels are high, and their order


@dataclass(frozen=True)
class AgendaEntry:
    """One case on the agenda and every reason it is there, in REASONS order."""

    case_id: int
    reasons: tuple[str, ...]

    @property
    def rule_reasons(self) -> tuple[str, ...]:
        """Return the reasons found by the rules (refreshed), without the pinned one."""
        return tuple(reason for reason in self.reasons if reason not in PINNED)


def case_reasons(facts: AgendaFacts, case_id: int) -> tuple[str, ...]:
    """Return every reason the rules (and a pin) give for one case, in REASONS order."""
    found = set()
    if case_id in facts.pinned:
        found.add(facts.pinned[case_id])
    if case_id in facts.new:
        found.add("new")
    if facts.levels.get(case_id) in facts.scale.high:
        found.add("high_risk")
    if case_id in facts.overdue_steps:
        found.add("overdue_steps")
    if case_id in facts.level_changed:
        found.add("level_changed")
    if case_id in facts.inactivation:
        found.add("inactivation")
    if case_id in facts.overdue_agreements:
        found.add("overdue_agreement")
    elif case_id in facts.open_agreements:
        found.add("open_agreement")
    return tuple(reason for reason in REASONS if reason in found)


def build_agenda(facts: AgendaFacts) -> list[AgendaEntry]:
    """Return one entry per case with a reason: highest risk first, then the most reasons, then by reference."""
    candidates = set(facts.levels) | set(facts.pinned)
    entries = [AgendaEntry(case_id, reasons) for case_id in candidates if (reasons := case_reasons(facts, case_id))]
    return sorted(entries, key=lambda e: (-facts.scale.rank(facts.levels.get(e.case_id)), -len(e.reasons),
                                          facts.references.get(e.case_id, ""), e.case_id))
