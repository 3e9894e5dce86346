"""Protocol safety (issue 11): one scenario per finding, each failing on the protocol before the tracks.

The police re-assessment must never wait for another agency, never run twice, never be lost
(DOMAIN.md §9). Each test drives the real shipped protocol with a fake clock.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from engine.deadlines import run_escalations
from engine.models import ProcessInstance
from tests.support.protocol import COMPLAINT, Protocol, detection, risk_answers

REVIEW = {"especial_relevancia": False, "minors_at_risk": False}
HOURS_72 = timedelta(hours=72)


# --- Finding 1: intake_join made the follow-up wait for every intake branch ------------------------
def test_an_extreme_case_gets_its_72_hour_reassessment_while_the_care_plan_is_open(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_risk_assessment", risk_answers("extremo"))
    assessed_at = protocol.clock.now()
    protocol.complete(case, "reassessment_review", {"final_level": "extremo", **REVIEW})
    assert "social_assessment_care_plan" in protocol.tasks(case)  # social services have not answered
    reassessment = protocol.task(case, "police_reassessment")
    assert reassessment.due_at == assessed_at + HOURS_72
    protocol.clock.advance(timedelta(hours=49))  # 24 h before the deadline: the reminder goes out on time
    reminded = run_escalations(protocol.session, protocol.clock.now())
    protocol.session.commit()
    assert reminded.reminded == 1
    protocol.session.refresh(reassessment)
    assert reassessment.escalation_level == 1


def test_a_hearing_never_recorded_does_not_stop_the_reassessments_of_a_high_case(protocol: Protocol) -> None:
    case = protocol.open_case(detection(protection_order_requested=True))
    protocol.complete(case, "police_report_to_court", COMPLAINT)
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "alto")
    protocol.finish_protection(case)
    for _week in range(5):  # 35 days: the court never records the hearing
        protocol.clock.advance(timedelta(days=7))
        assert protocol.task(case, "police_reassessment").due_at == protocol.clock.now()
        protocol.followup_cycle(case, "alto")
    assert "protection_order_hearing" in protocol.tasks(case)
    assert protocol.task(case, "police_reassessment").due_at == protocol.clock.now() + timedelta(days=7)


# --- Finding 2: followup_join made the next police cycle wait for social services and equality ----
def test_social_services_four_days_late_do_not_delay_the_next_extreme_reassessment(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_report_to_court", COMPLAINT)
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "extremo")
    protocol.finish_protection(case)
    social = protocol.task(case, "social_services_followup")
    protocol.clock.advance(timedelta(hours=70))
    protocol.assess(case, "police_reassessment", "reassessment_review", "extremo")
    assessed_at = protocol.clock.now()
    protocol.clock.advance(timedelta(days=4))
    assert protocol.clock.now() > social.due_at + timedelta(days=3)  # social services are 4 days late
    assert "social_services_followup" in protocol.tasks(case)
    assert protocol.task(case, "police_reassessment").due_at == assessed_at + HOURS_72


# --- Finding 3: duplicate cycles ---------------------------------------------------------------------
def test_an_incident_while_the_court_hearing_waits_leaves_one_police_line(protocol: Protocol) -> None:
    case = protocol.open_case(detection(protection_order_requested=True))
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "medio")
    protocol.report_incident(case)
    protocol.assess(case, "incident_reassessment", "reassessment_review", "medio")
    assert "protection_order_hearing" in protocol.tasks(case)
    assert protocol.running(case).count("followup") == 1
    assert [element for element in protocol.tasks(case) if element.endswith("reassessment")] == ["police_reassessment"]


def test_two_incidents_an_hour_apart_give_one_immediate_reassessment(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "medio")
    protocol.report_incident(case)
    first_incident = protocol.clock.now()
    protocol.clock.advance(timedelta(hours=1))
    protocol.report_incident(case, complaint_filed=True)
    tasks = protocol.tasks(case)
    # The second incident restarts the police line but never postpones the re-assessment the first made due.
    assert tasks["incident_reassessment"].due_at == first_incident + timedelta(hours=4)
    assert protocol.running(case).count("followup") == 1
    protocol.assess(case, "incident_reassessment", "reassessment_review", "alto")
    assert protocol.running(case).count("followup") == 1  # the chain goes on once, not twice


def test_the_database_refuses_a_second_running_instance_of_a_track(protocol: Protocol) -> None:
    case = protocol.open_case()
    running = protocol.session.query(ProcessInstance).filter_by(case_id=case.id, track="police",
                                                                status="running").one()
    protocol.session.add(ProcessInstance(
        case_id=case.id, definition_id=running.definition_id, process_key="followup", track="police",
        status="running", state="", serializer_version=running.serializer_version, started_at=protocol.clock.now()))
    with pytest.raises(IntegrityError):
        protocol.session.flush()
    protocol.session.rollback()


def test_an_incident_never_postpones_a_reassessment_already_overdue(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "extremo")
    due = protocol.task(case, "police_reassessment").due_at
    assert due is not None
    protocol.clock.advance(timedelta(hours=80))  # the police are 8 hours late
    protocol.report_incident(case)
    assert protocol.task(case, "incident_reassessment").due_at == due


# --- Finding 4: the forensic report after intake, and the minors-vulnerable flag -------------------
def test_a_reassessment_that_rises_to_high_proposes_the_forensic_report(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "medio")
    protocol.finish_protection(case)
    assert "forensic_risk_report" not in protocol.tasks(case)
    protocol.clock.advance(timedelta(days=20))
    protocol.assess(case, "police_reassessment", "reassessment_review", "alto")
    assert protocol.task(case, "forensic_risk_report").due_at == protocol.clock.now() + HOURS_72


def test_medium_risk_with_vulnerable_minors_proposes_the_forensic_report(protocol: Protocol) -> None:
    case = protocol.open_case(detection(minors_present=True, minors_count=2))
    protocol.complete(case, "police_risk_assessment", risk_answers("medio"))
    protocol.complete(case, "reassessment_review", {"final_level": "medio", **REVIEW, "minors_vulnerable": True})
    assert "forensic_risk_report" in protocol.tasks(case)
    protocol.session.refresh(case)
    assert case.facts["minors_vulnerable"] is True


# --- Finding 5: a court measure can end; civil measures lapse after 30 days -------------------------
def test_a_measure_no_longer_in_force_lets_inactivation_be_proposed(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.complete(case, "police_risk_assessment", risk_answers("bajo", court_measure_in_force=True))
    protocol.complete(case, "reassessment_review", {"final_level": "bajo", **REVIEW})
    protocol.finish_protection(case)
    protocol.clock.advance(timedelta(days=59))
    protocol.followup_cycle(case, "bajo", in_person_contact=True, court_measure_in_force=True)
    assert "ordinary_inactivation" not in protocol.tasks(case)
    protocol.clock.advance(timedelta(days=59))
    protocol.followup_cycle(case, "bajo", in_person_contact=True, court_measure_in_force=False)
    protocol.session.refresh(case)
    assert case.facts["court_measure_in_force"] is False
    assert "ordinary_inactivation" in protocol.tasks(case)


def test_civil_measures_lapse_after_30_days_without_a_family_proceeding(protocol: Protocol) -> None:
    case = protocol.open_case(detection(protection_order_requested=True))
    protocol.complete(case, "protection_order_hearing", {
        "hearing_held_at": "2026-03-03T10:00:00+01:00", "order_granted": True,
        "measures": ["restraining_order", "civil_measures"]})
    protocol.complete(case, "notify_coordination_point", {"notified_at": "2026-03-03T12:00:00+01:00"})
    protocol.complete(case, "inform_agencies_of_order", {"informed_agencies": ["state_police"],
                                                         "informed_at": "2026-03-03T13:00:00+01:00"})
    protocol.session.refresh(case)
    assert case.facts["civil_measures_in_force"] is True
    protocol.clock.advance(timedelta(days=29))
    assert protocol.timers() == 0
    protocol.clock.advance(timedelta(days=2))
    assert protocol.timers() == 1
    protocol.complete(case, "civil_measures_review", {"family_proceeding_started": False})
    protocol.session.refresh(case)
    assert case.facts["civil_measures_in_force"] is False
    assert case.facts["court_measures"] == ["restraining_order"]
    assert case.facts["court_measure_in_force"] is True  # the restraining order is still in force


# --- Finding 6: an order of protection after an incident or during follow-up -----------------------
def test_an_order_of_protection_can_be_requested_with_a_new_incident(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "medio")
    protocol.report_incident(case, protection_order_requested=True)
    assert protocol.task(case, "protection_order_hearing").agency_id == protocol.world.agencies["court"].id
    protocol.clock.advance(timedelta(hours=73))
    assert protocol.timers() == 1
    assert "chase_court_hearing" in protocol.tasks(case)


def test_an_order_of_protection_can_be_requested_at_a_reassessment(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "medio")
    protocol.finish_protection(case)
    protocol.clock.advance(timedelta(days=25))
    protocol.followup_cycle(case, "medio", protection_order_requested=True)
    assert "protection_order_hearing" in protocol.tasks(case)
    protocol.session.refresh(case)
    assert protocol.running(case).count("protection_order") == 1


# --- Finding 7: an ordinary inactivation can be declined, and never stops the follow-up ------------
def test_a_pending_inactivation_can_be_declined_and_the_follow_up_goes_on(protocol: Protocol) -> None:
    case = protocol.open_case()
    protocol.assess(case, "police_risk_assessment", "reassessment_review", "bajo")
    protocol.finish_protection(case)
    protocol.clock.advance(timedelta(days=50))
    protocol.followup_cycle(case, "bajo", in_person_contact=True)
    assert "ordinary_inactivation" in protocol.tasks(case)
    protocol.clock.advance(timedelta(days=90))  # nobody decides for 90 days: the police still re-assess
    assert protocol.task(case, "police_reassessment").due_at == protocol.clock.now() - timedelta(days=30)
    protocol.complete(case, "ordinary_inactivation", {"decision": "keep", "reason": "Sigue habiendo contacto."})
    protocol.session.refresh(case)
    assert case.status == "active"
    assert "police_reassessment" in protocol.tasks(case)
    assert "inactivation" not in protocol.running(case)


# --- Finding 8: the police assess at once, from the detection ---------------------------------------
def test_the_first_assessment_is_due_24_hours_after_detection_on_the_protocolo_cero_path(
    protocol: Protocol,
) -> None:
    detected_at = protocol.clock.now()
    case = protocol.open_case(detection(wants_to_report=False, source_kind="family_neighbour"))
    tasks = protocol.tasks(case)
    assert "protocol_zero" in tasks  # still owed, beside the assessment
    assert tasks["police_risk_assessment"].due_at == detected_at + timedelta(hours=24)


# --- Finding 9: the detection record is part of the case --------------------------------------------
def test_the_detection_record_survives_the_end_of_intake(protocol: Protocol) -> None:
    data = detection(minors_present=True, minors_count=2, consent_to_share="legal_basis",
                     legal_basis="Riesgo grave para su vida (art. 11 LOPDGDD).")
    case = protocol.open_case(data)
    assert ("intake", "completed") in protocol.instances(case)
    [record] = protocol.history(case, "form_submitted")
    assert record.element_id == "detection_registered"
    assert record.data is not None
    assert record.data["observed"] == data["observed"]
    assert record.data["minors_count"] == 2
    assert record.data["legal_basis"] == "Riesgo grave para su vida (art. 11 LOPDGDD)."
