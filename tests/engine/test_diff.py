"""What changed between two versions: BPMN elements, DMN rules and form fields, named as a designer reads them."""

from __future__ import annotations

import json

from engine.diff import ADDED, CHANGED, REMOVED, Change, Detail, diff_definitions
from tests.support.protocol import FORMS, PROCESSES


def read(name: str) -> str:
    return (PROCESSES / name).read_text(encoding="utf-8")


def by_id(changes: list[Change]) -> dict[str, Change]:
    return {change.element_id: change for change in changes}


def test_the_same_file_has_no_changes() -> None:
    for name, kind in (("followup.bpmn", "process"), ("reassessment_period.dmn", "decision")):
        assert diff_definitions(kind, read(name), read(name)) == []


def test_moving_shapes_on_the_diagram_is_no_change() -> None:
    before = read("followup.bpmn")
    after = before.replace('<dc:Bounds x="', '<dc:Bounds x="1', 1)
    assert after != before
    assert diff_definitions("process", before, after) == []


def test_a_changed_dmn_cell_names_the_rule_the_column_and_both_values() -> None:
    before = read("reassessment_period.dmn")
    after = before.replace('<text>"P30D"</text>', '<text>"P21D"</text>')
    [change] = diff_definitions("decision", before, after)
    assert (change.status, change.element_id, change.kind) == (CHANGED, "period_medium", "rule")
    assert change.details == (Detail("output reassessment_period", '"P30D"', '"P21D"'),)


def test_dmn_rules_added_and_removed() -> None:
    before = read("reassessment_period.dmn")
    start, end = before.index('<rule id="period_low">'), before.index("</rule>", before.index('<rule id="period_low">'))
    low = before[start:end + len("</rule>")]
    after = before.replace(low, low.replace("period_low", "period_none").replace('"bajo"', '"ninguno"'))
    changes = by_id(diff_definitions("decision", before, after))
    assert changes["period_low"].status == REMOVED
    assert changes["period_none"].status == ADDED
    assert Detail("input Nivel", "", '"ninguno"') in changes["period_none"].details


def test_bpmn_changes_name_the_element_and_what_changed_in_it() -> None:
    before = read("followup.bpmn")
    after = (before
             .replace('name="Revaloración policial del riesgo"', 'name="Revaloración del riesgo"')
             .replace('<spiffworkflow:property name="reminderBefore" value="\'PT24H\'"/>',
                      '<spiffworkflow:property name="reminderBefore" value="\'PT48H\'"/>', 1))
    changes = by_id(diff_definitions("process", before, after))
    change = changes["police_reassessment"]
    assert change.status == CHANGED
    assert Detail("name", "Revaloración policial del riesgo", "Revaloración del riesgo") in change.details
    assert Detail("property reminderBefore", "'PT24H'", "'PT48H'") in change.details
    assert list(changes) == ["police_reassessment"]


def test_a_step_moved_to_another_lane_and_a_changed_condition() -> None:
    before = read("protection_order.bpmn")
    after = (before.replace("<bpmn:flowNodeRef>chase_court_hearing</bpmn:flowNodeRef>", "")
             .replace("<bpmn:flowNodeRef>protection_order_hearing</bpmn:flowNodeRef>",
                      "<bpmn:flowNodeRef>protection_order_hearing</bpmn:flowNodeRef>"
                      "<bpmn:flowNodeRef>chase_court_hearing</bpmn:flowNodeRef>"))
    change = by_id(diff_definitions("process", before, after))["chase_court_hearing"]
    assert Detail("lane", "Coordinación de la Mesa", "Juzgado de violencia sobre la mujer") in change.details


def test_a_removed_element_is_listed_with_what_it_was() -> None:
    before = read("equality_followup.bpmn")
    start = before.index('<bpmn:userTask id="equality_office_followup"')
    end = before.index("</bpmn:userTask>", start) + len("</bpmn:userTask>")
    changes = by_id(diff_definitions("process", before, before[:start] + before[end:]))
    removed = changes["equality_office_followup"]
    assert removed.status == REMOVED
    assert Detail("property form", "followup_equality", "") in removed.details


def test_form_fields_added_removed_and_changed_with_required_and_checks() -> None:
    before = (FORMS / "risk_review.json").read_text(encoding="utf-8")
    raw = json.loads(before)
    raw["schema"]["properties"]["next_contact_on"] = {"type": "string", "format": "date", "title": "Próximo contacto"}
    del raw["schema"]["properties"]["minors_at_risk"]
    raw["schema"]["required"] = ["final_level", "especial_relevancia", "raise_reason"]
    raw["schema"]["properties"]["raise_reason"]["maxLength"] = 500
    raw["checks"][0]["message"] = "Nunca por debajo del nivel calculado."
    raw["checks"].pop(1)
    changes = by_id(diff_definitions("form", before, json.dumps(raw, ensure_ascii=False)))
    assert changes["next_contact_on"].status == ADDED
    assert Detail("format", "", "date") in changes["next_contact_on"].details
    assert changes["minors_at_risk"].status == REMOVED
    reason = changes["raise_reason"]
    assert Detail("required", "no", "yes") in reason.details
    assert Detail("maxLength", "2000", "500") in reason.details
    checks = [c for c in changes.values() if c.kind == "check"]
    assert {c.status for c in checks} == {CHANGED, REMOVED}
    changed = next(c for c in checks if c.status == CHANGED)
    assert Detail("message", "El nivel no puede ser inferior al calculado.", "Nunca por debajo del nivel calculado.") \
        in changed.details
