"""Synthetic demo data: two territories, one agency per kind in each, two users per agency, a few cases.

Every name here is invented or a public place name: no real person appears in demo data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.definitions import latest_definition
from engine.execution import start_case
from engine.models import Agency, AgencyKind, Mesa, Resource, Territory, UserAccount
from webapp.auth.mfa import mark_exempt
from webapp.auth.passwords import hash_password

INTAKE = "intake"
# Every demo account's password: synthetic data on a demo install only (README, Quick start).
DEMO_PASSWORD = "demo-coordina-2026"  # noqa: S105 - a documented demo password, not a secret
DEMO_CASES = 12


@dataclass(frozen=True)
class DemoTerritory:
    """A demo territory and the places its agencies are named after (name, username slug)."""

    code: str
    name: str
    region: str
    town: tuple[str, str]
    area: tuple[str, str]
    court_town: tuple[str, str]
    province: tuple[str, str]


TERRITORIES = (
    DemoTerritory(
        code="vegas-bajas", name="Mancomunidad Integral de Servicios Vegas Bajas", region="EX",
        town=("Puebla de la Calzada", "puebla"), area=("Vegas Bajas", "vegas"),
        court_town=("Montijo", "montijo"), province=("Badajoz", "badajoz"),
    ),
    DemoTerritory(
        code="sierra-san-pedro", name="Mancomunidad Sierra de San Pedro", region="EX",
        town=("San Vicente de Alcántara", "sanvicente"), area=("Sierra de San Pedro", "sierra"),
        court_town=("Valencia de Alcántara", "valencia"), province=("Cáceres", "caceres"),
    ),
)

# Agency kind -> (username prefix, agency name, which place of the territory names it).
AGENCY_NAMES: dict[str, tuple[str, str, str]] = {
    "state_police": ("gc", "Guardia Civil", "town"),
    "local_police": ("pl", "Policía Local", "town"),
    "social_services": ("ssb", "Servicio Social de Base", "area"),
    "health_centre": ("cs", "Centro de Salud", "town"),
    "equality_office": ("oig", "Oficina de Igualdad", "area"),
    "psychological_care": ("pap", "Punto de Atención Psicológica", "area"),
    "school": ("ies", "Instituto de Educación Secundaria", "town"),
    "court": ("jvm", "Juzgado de Violencia sobre la Mujer", "court_town"),
    "prosecutor": ("fis", "Fiscalía Provincial", "province"),
    "coordination_point": ("pco", "Punto de Coordinación de Órdenes de Protección", "province"),
    "womens_institute": ("imex", "Instituto de la Mujer de Extremadura", "province"),
    "mesa_coordinator": ("mesa", "Coordinación de la Mesa", "area"),
}

# How the demo cases reached the Mesa: synthetic detections, one entry per case in turn.
DETECTIONS: tuple[dict[str, Any], ...] = (
    {"source_kind": "health_centre", "injuries": True, "wants_to_report": True,
     "observed": "Lesiones en brazos; relata control económico y aislamiento."},
    {"source_kind": "state_police", "immediate_danger": True, "wants_to_report": True,
     "observed": "Llamada de auxilio; el agresor ha roto la puerta."},
    {"source_kind": "social_services", "wants_to_report": False, "minors_present": True, "minors_count": 2,
     "observed": "Insultos y amenazas delante de los menores durante una visita."},
    {"source_kind": "school", "wants_to_report": False, "minors_present": True, "minors_count": 1,
     "observed": "El alumno cuenta gritos y golpes en casa."},
    {"source_kind": "equality_office", "wants_to_report": True, "protection_order_requested": True,
     "observed": "Acude a la oficina tras meses de acoso por mensajes."},
    {"source_kind": "family_neighbour", "wants_to_report": False, "consent_to_share": "legal_basis",
     "legal_basis": "Riesgo para la vida (art. 9.2.c RGPD).", "observed": "Vecinas oyen golpes de madrugada."},
)


@dataclass
class SeedReport:
    """What `seed_demo` created, or why it did nothing."""

    already_seeded: bool = False
    territories: int = 0
    agencies: int = 0
    users: int = 0
    cases: int = 0
    mesas: int = 0
    notes: list[str] = field(default_factory=list)


def seed_demo(session: Session, *, now: datetime, actor: Actor) -> SeedReport:
    """Create the demo territories, agencies, users and (if intake is deployed) cases; only flush."""
    report = SeedReport()
    if session.execute(select(Territory).where(Territory.code == TERRITORIES[0].code)).first():
        report.already_seeded = True
        report.mesas = seed_mesas(session, now=now)  # a demo seeded before the Mesa existed gets it now
        return report
    kinds = session.execute(select(AgencyKind).order_by(AgencyKind.code)).scalars().all()
    password_hash = hash_password(DEMO_PASSWORD)  # one hash for every demo account: argon2 is slow on purpose
    territories = []
    members: dict[tuple[str, str], UserAccount] = {}
    created: list[UserAccount] = []
    for spec in TERRITORIES:
        territory = Territory(code=spec.code, name=spec.name, region=spec.region)
        session.add(territory)
        territories.append(territory)
        report.territories += 1
        for kind in kinds:
            agency, users = _agency(spec, territory, kind)
            session.add(agency)
            session.flush()
            for user in users:
                user.agency_id = agency.id
                user.password_hash = password_hash
            session.add_all(users)
            created.extend(users)
            members[(spec.code, kind.code)] = users[0]
            report.agencies += 1
            report.users += len(users)
    created.extend([
        UserAccount(username="admin", display_name="Administración demo", roles=["admin"], active=True,
                    password_hash=password_hash, language="es", failed_logins=0, session_generation=1),
        UserAccount(username="disenadora", display_name="Diseñadora del protocolo demo", roles=["designer"],
                    agency_id=None, active=True, password_hash=password_hash, language="es", failed_logins=0,
                    session_generation=1),
    ])
    session.add_all(created)
    report.users += 2
    session.flush()
    # The demo's synthetic accounts sign in with the password alone, whatever roles require MFA.
    mark_exempt(session, [user.id for user in created])
    report.mesas = seed_mesas(session, now=now)
    if latest_definition(session, INTAKE, required=False) is None:
        report.notes.append(f"no process named {INTAKE!r} is deployed: no demo cases were started")
        return report
    for number in range(1, DEMO_CASES + 1):
        spec, territory = (TERRITORIES[0], territories[0]) if number % 3 else (TERRITORIES[1], territories[1])
        data = _intake_data(number, now)
        # The agency that detected the case registers it (and so may see it); the system otherwise.
        reporter = members.get((spec.code, data["source_kind"]))
        start_case(
            session, territory_id=territory.id, process_key=INTAKE, data=data, now=now,
            actor=_actor(reporter) if reporter else actor, victim=_party("V", number),
            aggressor=_party("A", number), check_form=True,
        )
        report.cases += 1
    return report


# Each demo territory's resources directory: 016 is the real national hotline; every other contact is invented.
RESOURCES: tuple[tuple[str, str, str, str, str], ...] = (
    ("hotline_016", "016 — Atención a víctimas de violencia de género",
     "Teléfono 016 (gratuito, no deja rastro en la factura); WhatsApp 600 000 016", "24 horas, todos los días",
     "Atención en 53 idiomas. Ficticio salvo el número 016."),
    ("psychological_care", "Punto de Atención Psicológica — {area}", "Tel. 900 000 101 · pap@{slug}.example.org",
     "Lunes a viernes, 9:00-14:00", "Cita previa a través de la oficina de igualdad."),
    ("equality_office", "Oficina de Igualdad y Violencia de Género — {area}",
     "Tel. 900 000 102 · igualdad@{slug}.example.org", "Lunes a viernes, 8:00-15:00; jueves, 16:00-19:00", ""),
    ("atenpro", "ATENPRO — teleasistencia móvil", "Solicitud por servicios sociales · Tel. 900 000 103",
     "Servicio 24 horas", "Necesita informe de servicios sociales."),
    ("shelter", "Casa de la Mujer (acogida)", "A través del 016 o de servicios sociales · Tel. 900 000 104",
     "Ingreso urgente 24 horas", "Dirección reservada."),
    ("victim_office", "Oficina de Asistencia a las Víctimas del Delito — {province}",
     "Tel. 900 000 105 · oav@{slug}.example.org", "Lunes a viernes, 9:00-14:00", ""),
    ("social_services", "Servicio Social de Base — {area}", "Tel. 900 000 106", "Lunes a viernes, 8:00-15:00", ""),
)


def seed_mesas(session: Session, *, now: datetime) -> int:
    """Give each demo territory without one its Mesa (members, representatives, next meeting) and resources."""
    from webapp.mesa.schedule import create_mesa

    created = 0
    for spec in TERRITORIES:
        territory = session.execute(select(Territory).where(Territory.code == spec.code)).scalar_one_or_none()
        if territory is None or session.execute(select(Mesa.id).where(Mesa.territory_id == territory.id)).first():
            continue
        create_mesa(session, territory.id, now=now, name=f"Mesa de Coordinación de {spec.area[0]}")
        for kind, name, contact, hours, notes in RESOURCES:
            values = {"area": spec.area[0], "slug": spec.area[1], "province": spec.province[0]}
            session.add(Resource(territory_id=territory.id, kind=kind, name=name.format(**values),
                                 contact=contact.format(**values), hours=hours, notes=notes, active=True,
                                 updated_at=now, version=1))
        created += 1
    session.flush()
    return created


def _actor(user: UserAccount) -> Actor:
    return Actor(user_id=user.id, name=user.username, agency_id=user.agency_id, roles=frozenset(user.roles))


def _agency(spec: DemoTerritory, territory: Territory, kind: AgencyKind) -> tuple[Agency, list[UserAccount]]:
    prefix, label, place_attr = AGENCY_NAMES.get(kind.code, (kind.code.replace("_", ""), kind.name, "area"))
    place, slug = getattr(spec, place_attr)
    name = f"{label} — {place}"
    agency = Agency(name=name, kind=kind.code, active=True, territories=[territory])
    username = f"{prefix}.{slug}"
    users = [
        UserAccount(username=username, display_name=f"Profesional demo ({name})", roles=["professional"],
                    active=True, password_hash=None),
        UserAccount(username=f"{username}.jefa", display_name=f"Supervisora demo ({name})",
                    roles=["professional", "supervisor"], active=True, password_hash=None),
    ]
    return agency, users


def _intake_data(number: int, now: datetime) -> dict[str, Any]:
    """A valid detection form, varied from case to case."""
    base: dict[str, Any] = {
        "detected_on": now.date().isoformat(), "immediate_danger": False, "injuries": False,
        "minors_present": False, "protection_order_requested": False, "consent_to_share": "yes",
    }
    return {**base, **DETECTIONS[number % len(DETECTIONS)]}


def _party(letter: str, number: int) -> dict[str, Any]:
    return {"name": f"Persona ficticia {letter}-{number:02d}", "synthetic": True}
