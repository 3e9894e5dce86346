"""Generated case histories on a simulated clock, run by the real engine in a private in-memory database.

A `Simulator` deploys a protocol (its BPMN, DMN and form files) into its own SQLite database with
a synthetic territory served by one agency of every kind, then plays histories: one case opened
by a detection at the entry process, agencies that answer each step on time, late or never,
incidents at random moments (right after detection and back to back too), the case's timers fired
as the clock passes them, and the invariants checked after every event. Each history runs in one
transaction rolled back at its end, so every history starts from the same empty database.

This module holds the simulated world (its database, territory, agencies and invariant checker);
playing one history, and what it did, is `engine.simulated_history`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from engine.actor import Actor
from engine.db import Base, make_engine
from engine.definitions import SourceFile, forget_cached_database, latest_runnable, start_form
from engine.deploy import deploy
from engine.errors import NotFoundError
from engine.form_data import Leaning
from engine.forms import FormDefinition
from engine.invariants import current_invariants
from engine.levels import current_levels
from engine.models import Agency, AgencyKind, Territory
from engine.simulated_history import ENTRY, START, Breach, Event, HistoryPlay, HistoryResult
from engine.violations import Lookups, find_violations

DEFAULT_LEVELS = ("no_apreciado", "bajo", "medio", "alto", "extremo")


@dataclass(frozen=True)
class Checker:
    """The invariants to check: a function of (session, now, case ids) and each invariant's titles."""

    check: Callable[[Session, datetime, list[int]], Sequence[Any]]
    titles: dict[str, tuple[str, str]]


CheckerFactory = Callable[[Session], Checker]


def invariant_checker(session: Session) -> Checker:
    """Check the protocol's declared invariants (`engine.invariants`, newest deployed `*.invariants.json`)."""
    declared = list(current_invariants(session))
    lookups = Lookups(session)  # the private database is deployed once: its periods and tracks never change
    return Checker(lambda s, now, ids: find_violations(s, now, declared, case_ids=ids, lookups=lookups),
                   {i.id: (i.title, i.title_en) for i in declared})


@dataclass(frozen=True)
class World:
    """Where the simulated cases live: the agency kinds (code -> label) and the territory's region."""

    kinds: dict[str, str]
    region: str | None = "MD"


class Simulator:
    """One private database with the protocol deployed, playing histories one after another."""

    def __init__(self, files: Sequence[SourceFile], world: World, checker: CheckerFactory = invariant_checker,
                 *, days: int = 365, seed: int = 1) -> None:
        self.url = f"sqlite:///file:verifier_{uuid.uuid4().hex}?mode=memory&uri=true"
        self.engine = make_engine(self.url, poolclass=StaticPool)  # one connection holds the database
        Base.metadata.create_all(self.engine)
        self.session = Session(self.engine, expire_on_commit=False)
        self.days, self.seed = days, seed
        self.kinds = dict(world.kinds)
        territory = Territory(code="simulado", name="Territorio simulado", region=world.region)
        self.session.add_all([AgencyKind(code=code, name=label) for code, label in self.kinds.items()])
        self.session.add(territory)
        self.session.flush()
        self.agencies: dict[str, int] = {}
        for code in self.kinds:
            agency = Agency(name=f"{code} (simulada)", kind=code, active=True, territories=[territory])
            self.session.add(agency)
            self.session.flush()
            self.agencies[code] = agency.id
        self.territory_id = territory.id
        deploy(self.session, files, actor="verificador", now=START, comment="(verificación)", origin="trial")
        self.session.commit()
        self.checker = checker(self.session)
        self.session.commit()
        self.levels = _levels(self.session)
        try:
            self.entry_form = self.start_form(ENTRY)
        except NotFoundError:
            self.entry_form = None
        self.incidents = incident_processes(self.session, self.entry_form[0] if self.entry_form else None)

    def close(self) -> None:
        """Drop the database and what the definition caches hold of it."""
        self.session.close()
        self.engine.dispose()
        forget_cached_database(self.url)

    # --- Generated histories --------------------------------------------------------------------
    def history(self, index: int) -> HistoryResult:
        """Generate and play history number `index` (the same seed and index, the same history)."""
        rng = random.Random(f"{self.seed}:{index}")  # noqa: S311 -- reproducible simulation, not secrecy
        target = self.levels[index % len(self.levels)]
        rank = self.levels.index(target)
        leaning = Leaning(self.levels, target, 0.25 * (rank / max(len(self.levels) - 1, 1)) ** 2)
        play = HistoryPlay(self, index, rng, leaning)
        try:
            return play.run()
        finally:
            self.session.rollback()

    # --- Replays --------------------------------------------------------------------------------
    def replay(self, events: Sequence[Event], horizon: timedelta, invariant_id: str) -> Breach | None:
        """Play `events` and let the clock run to `horizon`; return the first breach of `invariant_id`."""
        rng = random.Random(f"{self.seed}:replay")  # noqa: S311 -- reproducible simulation, not secrecy
        play = HistoryPlay(self, -1, rng, Leaning(self.levels), watch=invariant_id)
        try:
            return play.replay(events, horizon)
        finally:
            self.session.rollback()

    # --- Helpers ---------------------------------------------------------------------------------
    def start_form(self, key: str) -> tuple[str, FormDefinition] | None:
        """Return a process's start form (name and pinned version), or None if it has none."""
        definition = latest_runnable(self.session, key)
        name = definition.properties.start.form
        form = start_form(self.session, definition)
        return (name, form) if name and form else None

    def actor(self, kind: str | None) -> Actor:
        """Return a member of the simulated agency of `kind` (the system when there is none)."""
        agency = self.agencies.get(kind or "")
        return Actor(user_id=None, name="verificador", agency_id=agency, roles=frozenset({"professional"}))


def incident_processes(session: Session, entry_form: str | None) -> list[str]:
    """Name the processes a new incident starts: a start form other than the entry process's, no chosen agency.

    Agreements of the Mesa also start from a form, but assigned to the agency the Mesa chose: they are
    not reported by agencies as incidents.
    """
    from engine.models import Definition

    keys = sorted(set(session.execute(select(Definition.key).where(Definition.kind == "process")).scalars()))
    found = []
    for key in keys:
        if key == ENTRY:
            continue
        start = latest_runnable(session, key).properties.start
        if start.form and start.form != entry_form and start.assigned_agency is None:
            found.append(key)
    return found


def _levels(session: Session) -> tuple[str, ...]:
    """Return the deployed scale's codes, lowest first (the shipped scale until one is declared)."""
    codes = current_levels(session).codes
    return tuple(codes) if codes else DEFAULT_LEVELS
