"""The agreement process: its step goes to the agency chosen at the Mesa, checked on deploy and when it runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.definitions import SourceFile, read_directory
from engine.deploy import validate
from engine.errors import ExecutionError
from engine.execution import start_process
from engine.models import Agency, OpenTask, ProcessInstance
from engine.transfer import transfer_case
from tests.support.protocol import PROCESSES, Protocol, detection

AGREEMENT_FILE = (PROCESSES / "agreement.bpmn").read_text(encoding="utf-8")


def deadline(protocol: Protocol) -> str:
    return (protocol.clock.now() + timedelta(days=7)).isoformat()


def test_the_step_goes_to_the_chosen_agency_with_its_deadline(protocol: Protocol) -> None:
    case = protocol.open_case(detection())
    social = protocol.world.agencies["social_services"]
    start_process(protocol.session, case, "agreement", {"agency_id": social.id, "due_at": deadline(protocol)},
                  now=protocol.clock.now(), actor=protocol.world.actor("mesa_coordinator"))
    protocol.session.commit()
    task = protocol.task(case, "fulfil_agreement")
    assert (task.agency_id, task.agency_kind, task.lane) == (social.id, "social_services",
                                                             "Organismo responsable del acuerdo")
    assert task.due_at == protocol.clock.now() + timedelta(days=7)
    protocol.complete(case, "fulfil_agreement", {"outcome": "done", "done_on": "2026-03-03", "report": "Hecho."})
    assert protocol.instances(case)[-1] == ("agreement", "completed")


def test_an_agency_outside_the_case_territory_is_refused_and_nothing_is_stored(protocol: Protocol) -> None:
    case = protocol.open_case(detection())
    outsider = Agency(name="Servicios sociales de Madrid", kind="social_services", active=True,
                      territories=[protocol.world.other_territory])
    protocol.session.add(outsider)
    protocol.session.commit()
    with pytest.raises(ExecutionError, match="not an active agency serving the case's territory"):
        start_process(protocol.session, case, "agreement", {"agency_id": outsider.id, "due_at": deadline(protocol)},
                      now=protocol.clock.now(), actor=protocol.world.actor("mesa_coordinator"))
    protocol.session.rollback()
    assert protocol.session.execute(select(ProcessInstance).where(ProcessInstance.process_key == "agreement")
                                    ).first() is None


def test_on_a_transfer_the_agreement_moves_to_the_agency_of_the_same_kind(protocol: Protocol) -> None:
    case = protocol.open_case(detection())
    there = Agency(name="Servicios sociales de Madrid", kind="social_services", active=True,
                   territories=[protocol.world.other_territory])
    protocol.session.add(there)
    protocol.session.flush()
    start_process(protocol.session, case, "agreement",
                  {"agency_id": protocol.world.agencies["social_services"].id, "due_at": deadline(protocol)},
                  now=protocol.clock.now(), actor=protocol.world.actor("mesa_coordinator"))
    transfer_case(protocol.session, case.id, protocol.world.other_territory.id, now=protocol.clock.now(),
                  actor=protocol.world.actor("mesa_coordinator"))
    protocol.session.commit()
    moved = protocol.session.execute(select(OpenTask).where(OpenTask.element_id == "fulfil_agreement")).scalar_one()
    assert (moved.agency_id, moved.version) == (there.id, 2)


@pytest.mark.parametrize(("change", "problem"), [
    (lambda xml: xml.replace('<spiffworkflow:property name="assignedAgency" value="agency_id"/>', ""),
     "lane 'Organismo responsable del acuerdo' names no known agency kind"),
    (lambda xml: xml.replace('value="agency_id"', 'value="agency_id +"'), "assignedAgency refused"),
])
def test_deploy_checks_the_assigned_agency(protocol: Protocol, change: object, problem: str) -> None:
    files = [f for f in read_directory(PROCESSES) if f.name != "agreement.bpmn"]
    files.append(SourceFile("agreement.bpmn", change(AGREEMENT_FILE).encode("utf-8")))  # type: ignore[operator]
    problems = validate(protocol.session, files).problems
    assert [p for p in problems if p.element_id == "fulfil_agreement" and problem in p.message], problems
