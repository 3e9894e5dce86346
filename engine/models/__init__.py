"""Every table of Coordina, imported in one place so Alembic sees them all."""

from engine.models.agency import Agency, AgencyKind, agency_territory
from engine.models.audit import AuditEvent
from engine.models.case import Case, CaseParty, ReferenceCounter
from engine.models.definition import Definition, DefinitionDraft
from engine.models.instance import ProcessInstance
from engine.models.invariant import OpenViolation
from engine.models.mesa import (
    AgendaItem,
    Agreement,
    Attendance,
    CaseTransfer,
    Meeting,
    MeetingNote,
    Mesa,
    MesaMember,
    MinutesVersion,
    Resource,
)
from engine.models.mfa import MfaRecoveryCode, MfaRolePolicy, UserMfa
from engine.models.notification import Notification, NotificationPreference, OutboxEmail
from engine.models.step_timing import StepTimingDay, StepTimingPending
from engine.models.task import OpenTask, TaskEvent
from engine.models.territory import Territory
from engine.models.timer import DueTimer
from engine.models.user import UserAccount
from engine.models.user_session import UserSession

__all__ = [
    "Agency",
    "AgencyKind",
    "AgendaItem",
    "Agreement",
    "Attendance",
    "AuditEvent",
    "Case",
    "CaseParty",
    "CaseTransfer",
    "Definition",
    "DefinitionDraft",
    "DueTimer",
    "Meeting",
    "MeetingNote",
    "Mesa",
    "MesaMember",
    "MfaRecoveryCode",
    "MfaRolePolicy",
    "MinutesVersion",
    "Notification",
    "NotificationPreference",
    "OpenTask",
    "OpenViolation",
    "OutboxEmail",
    "ProcessInstance",
    "ReferenceCounter",
    "Resource",
    "StepTimingDay",
    "StepTimingPending",
    "TaskEvent",
    "Territory",
    "UserAccount",
    "UserMfa",
    "UserSession",
    "agency_territory",
]
