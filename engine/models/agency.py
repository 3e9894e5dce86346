"""Agency kinds (what lanes name) and concrete agencies serving territories."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base
from engine.models.territory import Territory

agency_territory = Table(
    "agency_territory",
    Base.metadata,
    Column("agency_id", ForeignKey("agency.id", ondelete="CASCADE"), primary_key=True),
    Column("territory_id", ForeignKey("territory.id", ondelete="CASCADE"), primary_key=True, index=True),
)


# The agency kinds of the protocol (DOMAIN.md section 1); lanes name one by code or by label.
DEFAULT_KINDS: dict[str, str] = {
    "state_police": "Policía estatal (Guardia Civil / Policía Nacional)",
    "local_police": "Policía Local",
    "social_services": "Servicios sociales",
    "health_centre": "Centro de salud",
    "equality_office": "Oficina de igualdad",
    "psychological_care": "Punto de atención psicológica",
    "school": "Centro educativo",
    "court": "Juzgado de violencia sobre la mujer",
    "prosecutor": "Fiscalía",
    "coordination_point": "Punto de coordinación de órdenes de protección",
    "womens_institute": "Instituto de la Mujer",
    "mesa_coordinator": "Coordinación de la Mesa",
}


class AgencyKind(Base):
    """A kind of agency a BPMN lane can name (state police, social services, ...)."""

    __tablename__ = "agency_kind"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))  # Spanish label, also accepted as a lane name


class Agency(Base):
    """A concrete agency (Guardia Civil de Puebla, SSB Vegas Bajas...) serving some territories."""

    __tablename__ = "agency"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(ForeignKey("agency_kind.code"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    territories: Mapped[list[Territory]] = relationship(secondary=agency_territory)
