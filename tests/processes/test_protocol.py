"""Scenarios of the real protocol (processes/ and forms/), one behaviour each, with a fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from engine.errors import TaskDataError
from engine.levels import SHIPPED
from engine.models import Case, ProcessInstance
from tests.support.protocol import COMPLAINT, Protocol, detection, risk_answers

INACTIVATE = {"decision": "inactivate", "confirm_low_risk": True, "confirm_no_court_measure": True,
              "confirm_in_person_contact": True, "reason": "Riesgo bajo sostenido."}


def through_intake(p: Protocol, level: str, **detected: object) -> Case:
    """Open a case (with a complaint unless told otherwise), assess it at `level`, finish protection."""
    case = p.open_case(detection(**detected))
    if "police_report_to_court" in p.tasks(case):
        p.complete(case, "police_report_to_court", COMPLAINT)
    p.assess(case, "police_risk_assessment", "reassessment_review", level)
    p.finish_protection(case)
    p.session.refresh(case)
    return case


@pytest.mark.parametrize(
    ("level", "period"),
    [("extremo", timedelta(hours=72)), ("alto", timedelta(days=7)), ("medio", timedelta(days=30)),
     ("bajo", timedelta(days=60))],
)
def test_each_level_gives_a_reassessment_due_by_its_period_after_the_assessment(
    protocol: Protocol, level: str, period: timedelta
) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_report_to_court", COMPLAINT)
    protocol.complete(case, "police_risk_assessment", risk_answers(level))
    assessed_at = protocol.clock.now()
    protocol.complete(case, "reassessment_review", {"final_level": level, "especial_relevancia": False,
                                                  "minors_at_risk": False})
    reassessment = protocol.task(case, "police_reassessment")  # at once: protection steps are still open
    assert reassessment.agency_id == protocol.world.agencies["state_police"].id
    assert reassessment.due_at == assessed_at + period
    protocol.clock.advance(timedelta(hours=5))
    protocol.finish_protection(case)  # the social line follows at the level's period from its care plan
    assert protocol.task(case, "social_services_followup").due_at == protocol.clock.now() + period
    protocol.session.refresh(case)
    assert case.risk_level == level
    assert case.facts["last_assessment_at"] == assessed_at.isoformat()


def test_the_case_shows_which_rules_produced_its_level(protocol: Protocol) -> None:
    case = through_intake(protocol, "alto")
    assert case.facts["computed_level"] == "alto"
    assert case.facts["level_rule"] == "Puntuación de 18 a 29"
    assert case.facts["risk_score"] == 18
    assert "Historia de la violencia: Amenazas de muerte (+4)" in case.facts["risk_reasons"]
    assert len(case.facts["risk_reasons"]) == 6


def test_an_officer_cannot_lower_the_computed_level(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_report_to_court", COMPLAINT)
    protocol.complete(case, "police_risk_assessment", risk_answers("alto"))
    with pytest.raises(TaskDataError) as refused:
        protocol.complete(case, "reassessment_review", {"final_level": "medio", "especial_relevancia": False,
                                                      "minors_at_risk": False})
    protocol.session.rollback()
    assert refused.value.errors == {"final_level": ["El nivel no puede ser inferior al calculado."]}
    assert "reassessment_review" in protocol.tasks(case)


def test_an_officer_may_raise_the_level_with_a_reason(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_report_to_court", COMPLAINT)
    protocol.complete(case, "police_risk_assessment", risk_answers("medio"))
    with pytest.raises(TaskDataError) as refused:
        protocol.complete(case, "reassessment_review", {"final_level": "alto", "especial_relevancia": False,
                                                      "minors_at_risk": False})
    protocol.session.rollback()
    assert list(refused.value.errors) == ["raise_reason"]
    protocol.complete(case, "reassessment_review", {"final_level": "alto", "raise_reason": "Arma en el domicilio",
                                                  "especial_relevancia": True, "minors_at_risk": False})
    protocol.session.refresh(case)
    assert (case.risk_level, case.facts["computed_level"]) == ("alto", "medio")
    assert case.facts["raise_reason"] == "Arma en el domicilio"


def test_police_measures_for_the_level_come_from_the_decision_table(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_report_to_court", COMPLAINT)
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "extremo")
    required = protocol.run_data(case, "apply_police_measures")["required_measures"]
    assert "continuous_surveillance" in required
    with pytest.raises(TaskDataError) as refused:
        protocol.complete(case, "apply_police_measures", {"measures_applied": ["phone_contact"],
                                                          "weapons_withdrawn": True})
    protocol.session.rollback()
    assert refused.value.errors == {"measures_applied": ["Faltan medidas obligatorias para el nivel de riesgo."]}


def test_protection_runs_in_parallel_for_police_and_social_services(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_report_to_court", COMPLAINT)
    tasks = protocol.tasks(case)
    assert {"personal_safety_plan", "social_assessment_care_plan", "police_risk_assessment"} <= set(tasks)
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "medio")
    tasks = protocol.tasks(case)
    assert {"apply_police_measures", "personal_safety_plan", "social_assessment_care_plan"} <= set(tasks)
    assert tasks["social_assessment_care_plan"].agency_id == protocol.world.agencies["social_services"].id
    assert "forensic_risk_report" not in tasks  # medio without flags: no forensic report


def test_a_forensic_report_is_proposed_for_high_risk_and_due_within_72_hours(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_report_to_court", COMPLAINT)
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "alto")
    forensic = protocol.task(case, "forensic_risk_report")
    assert forensic.agency_id == protocol.world.agencies["court"].id
    assert forensic.due_at == protocol.clock.now() + timedelta(hours=72)


def test_immediate_danger_calls_the_police_with_a_one_hour_deadline(protocol: Protocol) -> None:
    case = protocol.open_case(detection(immediate_danger=True))
    urgent = protocol.task(case, "urgent_police_intervention")
    assert urgent.due_at == protocol.clock.now() + timedelta(hours=1)
    assert urgent.priority == 100
    assert "police_report_to_court" not in protocol.tasks(case)  # the complaint comes after the intervention
    assert protocol.task(case, "police_risk_assessment").due_at == protocol.clock.now() + timedelta(hours=4)


def test_the_protocolo_cero_path_protects_without_a_complaint(protocol: Protocol) -> None:
    case = protocol.open_case(detection(wants_to_report=False, source_kind="family_neighbour"))
    tasks = protocol.tasks(case)
    assert "protocol_zero" in tasks
    assert "police_report_to_court" not in tasks
    protocol.complete(case, "protocol_zero", {"testimonies_collected": 3, "testimony_summary": "Vecinas y hermana.",
                                              "protection_without_complaint": True, "report_to_prosecutor": True})
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "medio")
    assert {"apply_police_measures", "personal_safety_plan"} <= set(protocol.tasks(case))
    protocol.session.refresh(case)
    assert case.facts["complaint_dates"] == []


def test_injuries_send_an_injury_report_to_court_telling_her(protocol: Protocol) -> None:
    case = protocol.open_case(detection(injuries=True))
    report = protocol.task(case, "injury_report_to_court")
    assert report.agency_id == protocol.world.agencies["health_centre"].id
    with pytest.raises(TaskDataError) as refused:
        protocol.complete(case, "injury_report_to_court", {"issued_on": "2026-03-02", "sent_to_court": True,
                                                           "victim_informed": False})
    protocol.session.rollback()
    assert "victim_informed" in refused.value.errors


def test_a_court_hearing_not_held_within_72_hours_escalates(protocol: Protocol) -> None:
    case = protocol.open_case(detection(protection_order_requested=True))
    hearing = protocol.task(case, "protection_order_hearing")
    assert hearing.due_at == protocol.clock.now() + timedelta(hours=72)
    protocol.clock.advance(timedelta(hours=71))
    assert protocol.timers() == 0
    protocol.clock.advance(timedelta(hours=2))
    assert protocol.timers() == 1
    chase = protocol.task(case, "chase_court_hearing")
    assert chase.agency_id == protocol.world.agencies["mesa_coordinator"].id
    assert "protection_order_hearing" in protocol.tasks(case)  # the hearing is still owed


def test_a_granted_order_is_notified_within_24_hours_and_the_agencies_informed(protocol: Protocol) -> None:
    case = protocol.open_case(detection(protection_order_requested=True))
    protocol.complete(case, "protection_order_hearing", {"hearing_held_at": "2026-03-03T10:00:00+01:00",
                                                         "order_granted": True, "measures": ["restraining_order"]})
    notify = protocol.task(case, "notify_coordination_point")
    assert notify.due_at == protocol.clock.now() + timedelta(hours=24)
    protocol.complete(case, "notify_coordination_point", {"notified_at": "2026-03-03T12:00:00+01:00"})
    inform = protocol.task(case, "inform_agencies_of_order")
    assert inform.agency_id == protocol.world.agencies["coordination_point"].id
    protocol.complete(case, "inform_agencies_of_order", {"informed_agencies": ["state_police", "social_services"],
                                                         "informed_at": "2026-03-03T13:00:00+01:00"})
    protocol.session.refresh(case)
    assert case.facts["court_measure_in_force"] is True


def test_low_risk_with_conditions_met_reaches_ordinary_inactivation(protocol: Protocol) -> None:
    case = through_intake(protocol, "bajo")
    protocol.clock.advance(timedelta(days=59))
    protocol.followup_cycle(case, "bajo", in_person_contact=True)
    inactivation = protocol.task(case, "ordinary_inactivation")
    assert "police_reassessment" in protocol.tasks(case)  # the police line goes on while it is decided
    protocol.complete(case, "ordinary_inactivation", INACTIVATE)
    protocol.session.refresh(case)
    assert inactivation.agency_id == protocol.world.agencies["state_police"].id
    assert case.status == "inactive"
    assert protocol.tasks(case) == {}  # the police, social and equality lines stop with it
    assert protocol.running(case) == []


def test_low_risk_without_an_in_person_contact_stays_in_follow_up(protocol: Protocol) -> None:
    case = through_intake(protocol, "bajo")
    protocol.followup_cycle(case, "bajo", in_person_contact=False)
    assert "police_reassessment" in protocol.tasks(case)
    assert "ordinary_inactivation" not in protocol.tasks(case)


def test_a_complex_case_goes_to_supervised_inactivation_for_six_months(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_report_to_court", COMPLAINT)
    protocol.complete(case, "police_risk_assessment", risk_answers("bajo"))
    protocol.complete(case, "reassessment_review", {"final_level": "bajo", "especial_relevancia": True,
                                                  "minors_at_risk": False})
    protocol.finish_protection(case)
    protocol.followup_cycle(case, "bajo", in_person_contact=True)
    protocol.session.refresh(case)
    assert case.status == "supervised_inactivation"
    assert "police_reassessment" in protocol.tasks(case)  # supervised: the police keep re-assessing
    protocol.clock.advance(timedelta(days=150))
    assert protocol.timers() == 0
    protocol.clock.advance(timedelta(days=40))
    assert protocol.timers() == 1
    review = protocol.task(case, "supervised_inactivation_review")
    assert review.agency_id == protocol.world.agencies["mesa_coordinator"].id
    protocol.complete(case, "supervised_inactivation_review", {"decision": "extend", "reason": "Aún hay riesgo."})
    protocol.clock.advance(timedelta(days=95))
    assert protocol.timers() == 1
    protocol.complete(case, "supervised_inactivation_review", {"decision": "extend", "reason": "Segunda prórroga."})
    protocol.clock.advance(timedelta(days=95))
    assert protocol.timers() == 1
    with pytest.raises(TaskDataError):  # only two extensions
        protocol.complete(case, "supervised_inactivation_review", {"decision": "extend", "reason": "Tercera."})
    protocol.session.rollback()
    protocol.complete(case, "supervised_inactivation_review", {"decision": "inactivate", "reason": "Estable."})
    protocol.session.refresh(case)
    assert case.status == "inactive"
    assert "police_reassessment" not in protocol.tasks(case)


def test_a_new_incident_during_a_cycle_reassesses_now_and_leaves_no_duplicate_cycle(protocol: Protocol) -> None:
    case = through_intake(protocol, "medio")
    protocol.clock.advance(timedelta(days=10))
    protocol.report_incident(case, immediate_danger=False)
    tasks = protocol.tasks(case)
    assert "police_reassessment" not in tasks  # the pending 30-day cycle was replaced
    assert tasks["incident_reassessment"].due_at == protocol.clock.now() + timedelta(hours=4)
    assert protocol.running(case).count("followup") == 1
    protocol.assess(case, "incident_reassessment", "reassessment_review", "alto")
    protocol.apply_measures(case)
    assert protocol.running(case).count("followup") == 1
    assert protocol.task(case, "police_reassessment").due_at == protocol.clock.now() + timedelta(days=7)
    cancelled = protocol.history(case, "instance_cancelled")
    assert [e.data for e in cancelled] == [{"reason": "replaced by followup"}]


def test_a_new_incident_reactivates_an_inactive_case(protocol: Protocol) -> None:
    case = through_intake(protocol, "bajo")
    protocol.followup_cycle(case, "bajo", in_person_contact=True)
    protocol.complete(case, "ordinary_inactivation", INACTIVATE)
    protocol.report_incident(case, complaint_filed=True)
    protocol.session.refresh(case)
    assert case.status == "active"
    assert {"incident_reassessment", "police_report_to_court", "social_assessment_care_plan",
            "equality_office_followup"} <= set(protocol.tasks(case))


def test_three_years_of_weekly_follow_ups_stay_bounded(protocol: Protocol, db_engine: Engine) -> None:
    case = through_intake(protocol, "alto")
    statements: list[int] = []

    def count(*_args: object) -> None:
        statements[-1] += 1

    event.listen(db_engine, "before_cursor_execute", count)
    try:
        sizes = []
        for _week in range(156):
            protocol.clock.advance(timedelta(days=6))
            statements.append(0)
            protocol.followup_cycle(case, "alto")
            state = protocol.session.execute(
                select(func.sum(func.length(ProcessInstance.state))).where(
                    ProcessInstance.case_id == case.id, ProcessInstance.status == "running")
            ).scalar_one()
            sizes.append(state)
    finally:
        event.remove(db_engine, "before_cursor_execute", count)
    # The facts keep six months of dates (for the complex-case rule): after that the live state stops growing.
    assert sizes[-1] <= sizes[52] * 1.05
    assert statements[-1] <= statements[0]  # nor does the work of a step
    assert protocol.running(case).count("followup") == 1
    protocol.session.refresh(case)
    assert datetime.fromisoformat(case.facts["last_assessment_at"]) == protocol.clock.now()


def test_a_changed_level_reorders_the_open_steps_of_other_agencies(protocol: Protocol) -> None:
    case = through_intake(protocol, "medio")
    protocol.clock.advance(timedelta(days=29))
    social = protocol.task(case, "social_services_followup")
    assert social.risk_rank == SHIPPED.rank("medio")
    protocol.assess(case, "police_reassessment", "reassessment_review", "extremo")
    protocol.session.refresh(social)
    assert social.risk_rank == SHIPPED.rank("extremo")  # still open, now sorted as extreme in worklists
