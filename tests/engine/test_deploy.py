"""Deploying definitions: versions, immutability, and deploy-time validation with clear errors."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import FakeClock
from engine.definitions import SourceFile, latest_definition, read_directory
from engine.deploy import DeployResult, deploy
from engine.errors import DefinitionError, SandboxError
from engine.execution import start_case
from engine.forms import FormDefinition
from engine.models import Definition, ProcessInstance
from engine.persistence import load_run
from tests.support.engine_files import BPMN_DIR, FORMS_DIR, source, with_forms
from tests.support.world import World


def definitions(session: Session) -> list[tuple[str, str, int]]:
    rows = session.execute(select(Definition.kind, Definition.key, Definition.version)).all()
    return sorted((k, key, v) for k, key, v in rows)


def refused(session: Session, forms: dict[str, FormDefinition], clock: FakeClock, *files: SourceFile) -> str:
    """Deploy files that must be refused; check nothing was stored; return the messages."""
    before = definitions(session)
    with pytest.raises(DefinitionError) as exc:
        deploy(session, with_forms(list(files)), actor="tests", now=clock.now())
    session.rollback()
    assert definitions(session) == before
    return "\n".join(str(p) for p in exc.value.problems)


def test_every_file_is_deployed_with_version_hash_author_and_comment(deployed: DeployResult, session: Session) -> None:
    assert definitions(session) == [
        ("decision", "reassessment_period", 1), ("form", "assessment", 1), ("form", "note", 1),
        ("process", "cycle", 1), ("process", "hearing", 1), ("process", "parallel", 1), ("process", "simple", 1),
    ]
    simple = latest_definition(session, "simple")
    assert simple is not None
    assert (simple.deployed_by, simple.file_name, len(simple.content_hash)) == ("tests", "simple.bpmn", 64)
    assert simple.spec is not None


@pytest.mark.usefixtures("deployed")
def test_redeploying_unchanged_files_creates_no_version(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    result = deploy(session, read_directory(BPMN_DIR, FORMS_DIR), actor="tests", now=clock.now())
    assert result.created == []
    assert sorted(result.unchanged) == ["assessment", "cycle", "hearing", "note", "parallel", "reassessment_period",
                                        "simple"]


@pytest.mark.usefixtures("deployed")
def test_changing_a_decision_table_gives_new_versions_of_it_and_its_processes(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    old = latest_definition(session, "cycle")
    assert old is not None
    old_source = old.source
    changed = source("period.dmn", {'"P30D"': '"P21D"'})
    result = deploy(session, with_forms([changed]), actor="designer", now=clock.now(), comment="medio: 21 días")
    session.commit()
    assert sorted((d.key, d.version) for d in result.created) == [("cycle", 2), ("reassessment_period", 2)]
    assert result.created[0].comment == "medio: 21 días"
    session.refresh(old)
    assert (old.version, old.source) == (1, old_source)  # the deployed version is immutable


@pytest.mark.usefixtures("deployed")
def test_a_new_instance_uses_the_new_decision_and_a_running_one_keeps_its_own(
    session: Session, world: World, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    _, before = start_case(session, territory_id=world.territory.id, process_key="cycle", data={"level": "medio"},
                           now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    deploy(session, with_forms([source("period.dmn", {'"P30D"': '"P21D"'})]), actor="d", now=clock.now())
    session.commit()
    _, after = start_case(session, territory_id=world.territory.id, process_key="cycle", data={"level": "medio"},
                          now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    due = {}
    for instance in (before, after):
        [ready] = load_run(session, instance)[0].ready_tasks()
        due[instance.id] = ready.data["reassessment_period"]
    assert due == {before.id: "P30D", after.id: "P21D"}
    assert session.get(ProcessInstance, before.id).definition_id != after.definition_id  # type: ignore[union-attr]


@pytest.mark.usefixtures("world")
def test_a_user_task_outside_any_lane_is_refused(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    broken = source("simple.bpmn", {"<bpmn:flowNodeRef>review</bpmn:flowNodeRef>": ""})
    message = refused(session, forms, clock, broken)
    assert "simple.bpmn" in message
    assert "[review]" in message
    assert "outside any lane" in message


@pytest.mark.usefixtures("world")
def test_a_lane_that_names_no_agency_kind_is_refused(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    broken = source("simple.bpmn", {'name="social_services"': 'name="Vecinos"'})
    message = refused(session, forms, clock, broken)
    assert "lane 'Vecinos' names no known agency kind" in message
    assert "[review]" in message


@pytest.mark.usefixtures("world")
def test_a_missing_form_is_refused_with_its_line(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    broken = source("simple.bpmn", {'name="form" value="note" />\n        <spiffworkflow:property name="due" '
                                    'value="\'P3D\'"': 'name="form" value="nonexistent" />\n        '
                                    '<spiffworkflow:property name="due" value="\'P3D\'"'})
    message = refused(session, forms, clock, broken)
    assert "simple.bpmn:" in message
    assert "form 'nonexistent' does not exist" in message


@pytest.mark.usefixtures("world")
def test_an_invalid_form_schema_is_refused(session: Session, clock: FakeClock) -> None:
    bad = SourceFile("bad.json", b'{"title": "Mal", "schema": {"type": "object", "properties": {"x": {"type": 3}}}}')
    with pytest.raises(DefinitionError) as exc:
        deploy(session, [*read_directory(BPMN_DIR, FORMS_DIR), bad], actor="tests", now=clock.now())
    assert "bad.json" in str(exc.value)
    assert "invalid JSON Schema" in str(exc.value)


@pytest.mark.usefixtures("world")
def test_a_deadline_that_does_not_parse_is_refused(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    broken = source("simple.bpmn", {"value=\"'P3D'\"": "value=\"'three days'\""})
    message = refused(session, forms, clock, broken)
    assert "[review]" in message
    assert "due 'three days' is not an ISO-8601 duration" in message


@pytest.mark.usefixtures("world")
def test_an_unquoted_timer_duration_is_refused_at_deploy_not_when_reached(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    broken = source("timers.bpmn", {'"PT72H"': "PT72H"})
    message = refused(session, forms, clock, broken)
    assert "[late]" in message or "[late_def]" in message
    assert "quoted" in message


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    "script",
    ["x = ().__class__.__base__.__subclasses__()", "x = __import__('os')", "import os", "x = open('/etc/passwd')"],
)
def test_a_script_escaping_the_sandbox_is_refused_at_deploy(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock, script: str
) -> None:
    broken = source("simple.bpmn", {"checked = note": script})
    message = refused(session, forms, clock, broken)
    assert "[mark]" in message
    assert "script refused" in message


@pytest.mark.usefixtures("world")
def test_overlapping_dmn_rules_are_refused(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    broken = source("period.dmn", {'<text>"bajo"</text>': '<text>"medio"</text>'})
    message = refused(session, forms, clock, broken)
    assert "period.dmn" in message
    assert "r_medium" in message
    assert "r_low" in message


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is not xml", "not"),
        (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % x SYSTEM "file:///dev/zero"> %x;]><d/>', "DOCTYPE"),
        (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
         b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><l>&c;</l>', "DOCTYPE"),
        (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>', "DOCTYPE"),
        (b'<?xml version="1.0"?><definitions xmlns="http://example.com/not-bpmn"><process id="p"/></definitions>',
         "not a BPMN 2.0 file"),
    ],
)
def test_hostile_or_foreign_files_are_refused_quickly_and_store_nothing(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock, content: bytes, expected: str
) -> None:
    started = time.monotonic()
    message = refused(session, forms, clock, SourceFile("upload.bpmn", content))
    assert time.monotonic() - started < 1.0
    assert "upload.bpmn" in message
    assert expected in message
    assert "root:" not in message  # nothing of /etc/passwd leaks into the error


@pytest.mark.usefixtures("deployed")
def test_a_restored_workflow_still_runs_scripts_in_the_sandbox(
    session: Session, world: World, clock: FakeClock
) -> None:
    _, instance = start_case(session, territory_id=world.territory.id, process_key="simple", data={},
                             now=clock.now() + timedelta(0), actor=world.actor("health_centre"))
    session.commit()
    run, _ = load_run(session, instance)
    [ready] = run.ready_tasks()
    task = run.workflow.get_tasks(spec_name="review")[0]
    engine = run.workflow.script_engine
    assert engine.evaluate(task, "1 + 1") == 2
    for escape in ("().__class__.__base__.__subclasses__()", "__import__('os')"):
        with pytest.raises(Exception) as exc:  # noqa: PT011 - Spiff wraps our SandboxError
            engine.evaluate(task, escape)
        chain = [exc.value, exc.value.__cause__, exc.value.__context__]
        assert any(isinstance(e, SandboxError) for e in chain), chain
    assert ready.spec.element_id == "review"


@pytest.mark.usefixtures("world")
def test_validation_reports_every_problem_at_once(
    session: Session, forms: dict[str, FormDefinition], clock: FakeClock
) -> None:
    broken = source("simple.bpmn", {'name="social_services"': 'name="Vecinos"', "checked = note": "import os"})
    message = refused(session, forms, clock, broken)
    assert "Vecinos" in message
    assert "script refused" in message
    assert session.execute(select(func.count()).select_from(Definition)).scalar_one() == 0
