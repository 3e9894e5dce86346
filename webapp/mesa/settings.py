"""A Mesa's settings: the interval between ordinary meetings and who represents each member agency."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Meeting, Mesa, MesaMember, UserAccount
from engine.persistence import check_version
from webapp.mesa.queries import territory_region
from webapp.mesa.schedule import on_working_day
from webapp.validation import InvalidInput

MAX_INTERVAL_DAYS = 90


def update_settings(
    session: Session, mesa: Mesa, *, interval_days: int, representatives: Mapping[int, int | None],
    expected_version: int,
) -> None:
    """Change the Mesa's meeting interval and its members' representatives (each a member of her agency)."""
    check_version(mesa.version, expected_version, "the Mesa")
    if not 1 <= interval_days <= MAX_INTERVAL_DAYS:
        raise InvalidInput({"interval": [_("Escriba un número de días entre 1 y %(max)s.", max=MAX_INTERVAL_DAYS)]})
    members = {m.agency_id: m
               for m in session.execute(select(MesaMember).where(MesaMember.mesa_id == mesa.id)).scalars()}
    for agency_id, user_id in representatives.items():
        member = members.get(agency_id)
        if member is None:
            continue
        if user_id is not None:
            user = session.get(UserAccount, user_id)
            if user is None or user.agency_id != agency_id or not user.active:
                raise InvalidInput({f"rep-{agency_id}": [_("Elija a una persona de ese organismo.")]})
        member.representative_id = user_id
    if interval_days != mesa.meeting_interval_days:
        mesa.meeting_interval_days = interval_days
        _reschedule_planned(session, mesa)
    mesa.version += 1
    session.flush()


def _reschedule_planned(session: Session, mesa: Mesa) -> None:
    """Move the planned ordinary meeting to the last held ordinary meeting plus the new interval (a working day)."""
    last_held = session.execute(
        select(Meeting.scheduled_at).where(Meeting.mesa_id == mesa.id, Meeting.kind == "ordinary",
                                           Meeting.status != "planned")
        .order_by(Meeting.scheduled_at.desc()).limit(1)
    ).scalar_one_or_none()
    if last_held is None:
        return
    for meeting in session.execute(select(Meeting).where(Meeting.mesa_id == mesa.id, Meeting.kind == "ordinary",
                                                         Meeting.status == "planned")).scalars():
        meeting.scheduled_at = on_working_day(last_held + timedelta(days=mesa.meeting_interval_days),
                                              territory_region(session, mesa.territory_id))
        meeting.version += 1
