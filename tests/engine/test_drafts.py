"""Drafts, versions and origins: no lost update, no silent revert, forms pinned per process version."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import definitions
from engine.clock import FakeClock
from engine.definitions import ORIGIN_DESIGNER, ORIGIN_FILES, SourceFile, latest_definition, read_directory
from engine.deploy import DeployResult, deploy, deploy_files
from engine.drafts import deploy_drafts, discard_draft, list_drafts, save_draft, upload_file
from engine.errors import ConflictError, DefinitionError, TaskDataError
from engine.execution import complete_task, start_case
from engine.models import Definition, DefinitionDraft, OpenTask
from tests.support.engine_files import BPMN_DIR, FORMS_DIR, source
from tests.support.world import World

P21 = {'"P30D"': '"P21D"'}


def text_of(name: str, replace: dict[str, str] | None = None) -> str:
    return source(name, replace).content.decode("utf-8")


def note_form(**extra_fields: dict[str, object]) -> str:
    raw = json.loads((FORMS_DIR / "note.json").read_text(encoding="utf-8"))
    raw["schema"]["properties"].update(extra_fields)
    raw["schema"]["required"] = [*raw["schema"]["required"], *extra_fields]
    return json.dumps(raw, ensure_ascii=False, indent=2)


def counts(session: Session) -> tuple[int, int]:
    return (session.execute(select(func.count()).select_from(Definition)).scalar_one(),
            session.execute(select(func.count()).select_from(DefinitionDraft)).scalar_one())


@pytest.mark.usefixtures("deployed")
def test_a_save_on_a_stale_copy_of_a_draft_is_refused(session: Session, clock: FakeClock) -> None:
    draft = save_draft(session, "period.dmn", text_of("period.dmn", P21), expected_version=None, actor="ana",
                       now=clock.now())
    session.commit()
    assert draft.row_version == 1
    again = save_draft(session, "period.dmn", text_of("period.dmn"), expected_version=1, actor="eva", now=clock.now())
    session.commit()
    assert again.row_version == 2
    with pytest.raises(ConflictError):  # Ana still edits version 1
        save_draft(session, "period.dmn", text_of("period.dmn", P21), expected_version=1, actor="ana", now=clock.now())
    with pytest.raises(ConflictError):  # a new editor that did not see the draft
        save_draft(session, "period.dmn", "<x/>", expected_version=None, actor="luz", now=clock.now())
    with pytest.raises(ConflictError):
        discard_draft(session, "period.dmn", expected_version=1)
    session.rollback()
    [kept] = list_drafts(session)
    assert (kept.updated_by, kept.row_version, kept.content) == ("eva", 2, text_of("period.dmn"))


@pytest.mark.usefixtures("deployed")
def test_deploying_drafts_based_on_an_older_version_is_refused(session: Session, clock: FakeClock) -> None:
    save_draft(session, "period.dmn", text_of("period.dmn", P21), expected_version=None, actor="ana", now=clock.now())
    session.commit()
    deploy(session, [source("period.dmn", {'"P60D"': '"P45D"'})], actor="eva", now=clock.now(), origin=ORIGIN_DESIGNER)
    session.commit()
    before = counts(session)
    with pytest.raises(DefinitionError) as refused:
        deploy_drafts(session, actor="ana", now=clock.now(), comment="medio: 21 días")
    session.rollback()
    assert "version 2 of this file was deployed by eva" in str(refused.value)
    assert counts(session) == before


@pytest.mark.usefixtures("deployed")
def test_deploying_drafts_stores_designer_versions_and_drops_the_drafts(session: Session, clock: FakeClock) -> None:
    save_draft(session, "period.dmn", text_of("period.dmn", P21), expected_version=None, actor="ana", now=clock.now())
    upload_file(session, "note.json", note_form(place={"type": "string", "title": "Lugar"}).encode(),
                expected_version=None, actor="ana", now=clock.now())
    result = deploy_drafts(session, actor="ana", now=clock.now(), comment="medio: 21 días")
    session.commit()
    created = {(d.kind, d.key): d for d in result.created}
    assert created[("decision", "reassessment_period")].origin == ORIGIN_DESIGNER
    assert created[("form", "note")].origin == "upload"
    assert created[("process", "simple")].form_ids == {"note": created[("form", "note")].id}
    assert {d.comment for d in result.created} == {"medio: 21 días"}
    assert list_drafts(session) == []


def deploy_from_disk(session: Session, clock: FakeClock, directory: object = None) -> DeployResult:
    files = read_directory(BPMN_DIR, FORMS_DIR) if directory is None else directory
    result = deploy_files(session, files, actor="cli", now=clock.now())  # type: ignore[arg-type]
    session.commit()
    return result


@pytest.mark.usefixtures("world")
def test_a_deploy_from_files_never_reverts_what_a_designer_deployed(session: Session, clock: FakeClock) -> None:
    deploy_from_disk(session, clock)
    deploy(session, [source("period.dmn", P21)], actor="ana", now=clock.now(), origin=ORIGIN_DESIGNER)
    session.commit()
    again = deploy_from_disk(session, clock)  # what `make run` does on every start
    assert again.created == []
    assert again.kept == ["period.dmn"]
    latest = latest_definition(session, "reassessment_period", kind="decision")
    assert latest is not None
    assert (latest.version, latest.origin, '"P21D"' in latest.source) == (2, ORIGIN_DESIGNER, True)


@pytest.mark.usefixtures("world")
def test_a_file_changed_on_disk_and_in_the_designer_is_not_deployed(session: Session, clock: FakeClock) -> None:
    deploy_from_disk(session, clock)
    deploy(session, [source("period.dmn", P21)], actor="ana", now=clock.now(), origin=ORIGIN_DESIGNER)
    session.commit()
    files = [f if f.name != "period.dmn" else source("period.dmn", {'"P60D"': '"P90D"'})
             for f in read_directory(BPMN_DIR, FORMS_DIR)]
    result = deploy_from_disk(session, clock, files)
    assert result.conflicts == ["period.dmn"]
    assert result.created == []
    latest = latest_definition(session, "reassessment_period", kind="decision")
    assert latest is not None
    assert latest.origin == ORIGIN_DESIGNER


@pytest.mark.usefixtures("world")
def test_a_file_changed_only_on_disk_is_deployed_from_files(session: Session, clock: FakeClock) -> None:
    deploy_from_disk(session, clock)
    files = [f if f.name != "period.dmn" else source("period.dmn", P21) for f in read_directory(BPMN_DIR, FORMS_DIR)]
    result = deploy_from_disk(session, clock, files)
    assert sorted((d.kind, d.key, d.origin) for d in result.created) == [
        ("decision", "reassessment_period", ORIGIN_FILES), ("process", "cycle", ORIGIN_FILES)]


@pytest.mark.usefixtures("deployed")
def test_a_process_version_from_before_forms_were_versioned_uses_the_newest_form(
    session: Session, clock: FakeClock
) -> None:
    simple = latest_definition(session, "simple")
    assert simple is not None
    simple.form_ids = None  # as migrated: deployed when forms were files
    session.commit()
    definitions.forget_cached_definitions()
    deploy(session, [SourceFile("note.json", note_form(place={"type": "string"}).encode())], actor="ana",
           now=clock.now(), origin=ORIGIN_DESIGNER)
    session.commit()
    form = definitions.pinned_form(session, definitions.runnable(session, simple.id), "note")
    assert form is not None
    assert "place" in form.schema["properties"]


@pytest.mark.usefixtures("deployed")
def test_an_open_task_of_an_old_version_is_validated_with_its_old_form(
    session: Session, world: World, clock: FakeClock
) -> None:
    _, old = start_case(session, territory_id=world.territory.id, process_key="simple", data={}, now=clock.now(),
                        actor=world.actor("health_centre"))
    session.commit()
    deploy(session, [SourceFile("note.json", note_form(place={"type": "string", "title": "Lugar"}).encode())],
           actor="ana", now=clock.now(), origin=ORIGIN_DESIGNER)
    session.commit()
    _, new = start_case(session, territory_id=world.territory.id, process_key="simple", data={}, now=clock.now(),
                        actor=world.actor("health_centre"))
    session.commit()
    tasks = {t.instance_id: t for t in session.execute(select(OpenTask)).scalars()}
    member = world.actor("social_services")
    clock.advance(timedelta(minutes=5))
    with pytest.raises(TaskDataError) as refused:  # the new version's form requires the new field
        complete_task(session, tasks[new.id].id, {"note": "visto"}, expected_version=1, now=clock.now(), actor=member)
    session.rollback()
    assert refused.value.errors == {"place": ["required"]}
    with pytest.raises(TaskDataError) as unknown:  # the old version's form does not know it
        complete_task(session, tasks[old.id].id, {"note": "visto", "place": "x"}, expected_version=1,
                      now=clock.now(), actor=member)
    session.rollback()
    assert unknown.value.errors == {"place": ["unknown field"]}
    complete_task(session, tasks[old.id].id, {"note": "visto"}, expected_version=1, now=clock.now(), actor=member)
    complete_task(session, tasks[new.id].id, {"note": "visto", "place": "Centro"}, expected_version=1,
                  now=clock.now(), actor=member)
    session.commit()
