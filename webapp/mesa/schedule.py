"""When a Mesa meets: create a territory's Mesa, plan its ordinary meetings, convene extraordinary ones.

Meeting dates fall on working days of the territory's region (weekends, national and regional holidays:
the engine's calendar), at a wall-clock time of the local time zone. Each function works in the caller's
transaction and only flushes; the view or CLI command commits.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.calendar import working_day_on_or_after
from engine.errors import ConflictError, PermissionDeniedError
from engine.localtime import LOCAL_TZ
from engine.models import Agency, AgendaItem, Case, Meeting, Mesa, MesaMember, UserAccount, agency_territory
from engine.models.mesa import DEFAULT_MEETING_INTERVAL_DAYS
from webapp.mesa.queries import mesa_of_territory, territory_name, territory_region
from webapp.validation import InvalidInput

MEETING_HOUR = time(10, 0)  # meetings are planned at 10:00 local time unless the coordinator says otherwise


def create_mesa(session: Session, territory_id: int, *, now: datetime, name: str | None = None,
                interval_days: int = DEFAULT_MEETING_INTERVAL_DAYS) -> Mesa:
    """Create a territory's Mesa: coordinated by its mesa_coordinator agency, every other agency a member.

    Each member's first professional (by name) represents it until the coordinator says otherwise;
    the first ordinary meeting is planned for the next working day of the territory's region at 10:00.
    """
    if mesa_of_territory(session, territory_id) is not None:
        raise ConflictError("the territory already has a Mesa")
    agencies = session.execute(
        select(Agency).join(agency_territory, agency_territory.c.agency_id == Agency.id)
        .where(agency_territory.c.territory_id == territory_id, Agency.active.is_(True)).order_by(Agency.id)
    ).scalars().all()
    coordinator = next((a for a in agencies if a.kind == "mesa_coordinator"), None)
    if coordinator is None:
        raise ConflictError("the territory has no agency of kind mesa_coordinator to coordinate its Mesa")
    default_name = f"Mesa de Coordinación — {territory_name(session, territory_id)}"
    mesa = Mesa(territory_id=territory_id, name=name or default_name,
                coordinator_agency_id=coordinator.id, meeting_interval_days=interval_days, active=True,
                created_at=now, version=1)
    session.add(mesa)
    session.flush()
    for agency in agencies:
        if agency.id == coordinator.id:
            continue
        representative = session.execute(
            select(UserAccount.id).where(UserAccount.agency_id == agency.id, UserAccount.active.is_(True))
            .order_by(UserAccount.id).limit(1)
        ).scalar_one_or_none()
        session.add(MesaMember(mesa_id=mesa.id, agency_id=agency.id, representative_id=representative))
    when = _next_day_at(now, 1, territory_region(session, territory_id))
    session.add(Meeting(mesa_id=mesa.id, scheduled_at=when, kind="ordinary", status="planned",
                        created_at=now, version=1))
    session.flush()
    return mesa


def _next_day_at(now: datetime, days: int, region: str | None, at: time = MEETING_HOUR) -> datetime:
    """Return 10:00 local time `days` days after `now`, or on the first working day of the region after it."""
    day = now.astimezone(LOCAL_TZ).date() + timedelta(days=days)
    return on_working_day(datetime.combine(day, at, LOCAL_TZ), region)


def on_working_day(when: datetime, region: str | None) -> datetime:
    """Move `when` to the region's first working day on or after its local date, keeping its wall-clock time."""
    local = when.astimezone(LOCAL_TZ)
    day = working_day_on_or_after(local.date(), region)
    return datetime.combine(day, local.time(), LOCAL_TZ).astimezone(UTC)


def next_working_day(session: Session, mesa: Mesa, now: datetime) -> datetime:
    """Return the Mesa's next working day at 10:00 local time (when an extraordinary meeting is proposed for)."""
    return _next_day_at(now, 1, territory_region(session, mesa.territory_id))


def next_working_day_iso(session: Session, mesa: Mesa, now: datetime) -> str:
    """Return `next_working_day` as a datetime-local value (local time)."""
    return next_working_day(session, mesa, now).astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M")


def plan_next_meeting(session: Session, mesa: Mesa, now: datetime) -> Meeting:
    """Return the next planned ordinary meeting, planning it (last ordinary meeting + interval, moved to a working
    day of the territory's region) if there is none."""
    planned = session.execute(
        select(Meeting).where(Meeting.mesa_id == mesa.id, Meeting.kind == "ordinary", Meeting.status == "planned")
        .order_by(Meeting.scheduled_at).limit(1)
    ).scalar_one_or_none()
    if planned is not None:
        return planned
    last = session.execute(
        select(Meeting.scheduled_at).where(Meeting.mesa_id == mesa.id, Meeting.kind == "ordinary")
        .order_by(Meeting.scheduled_at.desc()).limit(1)
    ).scalar_one_or_none()
    interval = timedelta(days=mesa.meeting_interval_days)
    when = (last or now) + interval
    while when <= now:
        when += interval
    when = on_working_day(when, territory_region(session, mesa.territory_id))
    meeting = Meeting(mesa_id=mesa.id, scheduled_at=when, kind="ordinary", status="planned", created_at=now, version=1)
    session.add(meeting)
    session.flush()
    return meeting


def convene_extraordinary(
    session: Session, mesa: Mesa, case: Case, trigger: str, scheduled_at: datetime, *, actor: Actor, now: datetime,
) -> Meeting:
    """Convene an extraordinary meeting for a new incident or complaint; the case is on its agenda."""
    if case.territory_id != mesa.territory_id:
        raise PermissionDeniedError("the case is not of the Mesa's territory")
    if trigger not in ("incident", "complaint"):
        raise ValueError(f"unknown trigger {trigger!r}")
    if scheduled_at < now - timedelta(hours=1):
        raise InvalidInput({"scheduled_at": [_("La reunión no puede convocarse en el pasado.")]})
    what = _("Nuevo incidente") if trigger == "incident" else _("Nueva denuncia")
    meeting = Meeting(mesa_id=mesa.id, scheduled_at=scheduled_at, kind="extraordinary", status="planned",
                      reason=f"{what}: {case.reference}", created_at=now, created_by_id=actor.user_id, version=1)
    session.add(meeting)
    session.flush()
    session.add(AgendaItem(meeting_id=meeting.id, case_id=case.id, reasons=[], pinned=trigger,
                           added_by_id=actor.user_id, added_at=now))
    session.flush()
    return meeting
