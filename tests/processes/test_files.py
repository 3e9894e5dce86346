"""Every file of processes/ and forms/ is deployable, documented, and drawn as it is."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy.orm import Session

from engine.definitions import SourceFile, read_directory
from engine.deploy import validate
from engine.forms import load_catalog
from tests.support.environment import unavailable
from tests.support.protocol import FORMS, PROCESSES, ROOT
from tests.support.world import World
from tools import bpmn_layout, process_docs

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"


# Every process of the shipped protocol (one file each): the dispatchers and every line of work.
PROCESS_KEYS = ["agreement", "equality_followup", "followup", "forensic_report", "inactivation", "incident",
                "injury_report", "intake", "police_measures", "police_response", "protection_order", "safety_plan",
                "social_care"]

def _properties(element: etree._Element) -> dict[str, str]:
    path = f"{BPMN}extensionElements/{SPIFF}properties/{SPIFF}property"
    return {p.get("name", ""): p.get("value", "") for p in element.iterfind(path)}


def _bpmn_trees() -> dict[str, etree._ElementTree]:
    return {path.name: etree.parse(str(path)) for path in sorted(PROCESSES.glob("*.bpmn"))}


def test_every_process_and_decision_file_passes_deploy_time_validation(session: Session, world: World) -> None:
    checked = validate(session, read_directory(PROCESSES, FORMS))
    assert [str(p) for p in checked.problems] == []
    assert set(checked.processes) == set(PROCESS_KEYS)
    assert set(checked.forms) == {path.stem for path in FORMS.glob("*.json")}
    assert set(checked.decisions) == {"risk_points", "risk_level", "police_measures", "reassessment_period",
                              "inactivation_policy"}


def test_every_form_is_used_by_a_step_of_the_protocol() -> None:
    forms, _ = load_catalog(FORMS)
    used = {
        _properties(element).get("form")
        for tree in _bpmn_trees().values()
        for element in tree.getroot().iter(f"{BPMN}userTask", f"{BPMN}startEvent")
    }
    assert set(forms) - used == set()


def test_every_user_task_has_a_deadline() -> None:
    missing = []
    for name, tree in _bpmn_trees().items():
        attached = {b.get("attachedToRef") for b in tree.getroot().iter(f"{BPMN}boundaryEvent")
                    if b.find(f"{BPMN}timerEventDefinition") is not None}
        for task in tree.getroot().iter(f"{BPMN}userTask"):
            if not _properties(task).get("due") and task.get("id") not in attached:
                missing.append(f"{name}:{task.get('id')}")
    assert missing == []


def test_the_diagrams_are_laid_out_for_the_current_files() -> None:
    assert bpmn_layout.main(["--check", *map(str, sorted(PROCESSES.glob("*.bpmn")))]) == 0


def test_the_readme_tables_list_the_current_steps() -> None:
    assert process_docs.main(["--check"]) == 0


def test_the_pictures_are_rendered_from_the_current_files(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not Path("/usr/bin/chromium").exists() or not (ROOT / "node_modules" / "bpmn-js").exists():
        unavailable("needs node, npm ci and chromium to render the diagrams")
    files = sorted(str(p) for p in PROCESSES.glob("*.bpmn"))
    run = subprocess.run([node, str(ROOT / "tools" / "render_diagrams.mjs"), "--out", str(tmp_path), *files],  # noqa: S603
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    stale = [p.name for p in sorted(tmp_path.glob("*.svg"))
             if not filecmp.cmp(p, PROCESSES / "img" / p.name, shallow=False)]
    assert stale == [], "run `npm run diagrams` and commit processes/img"


@pytest.mark.parametrize("name", PROCESS_KEYS)
def test_the_readme_shows_each_diagram(name: str) -> None:
    readme = (PROCESSES / "README.md").read_text(encoding="utf-8")
    assert f"(img/{name}.svg)" in readme
    assert (PROCESSES / "img" / f"{name}.svg").exists()


@pytest.mark.parametrize("name", PROCESS_KEYS)
def test_a_standard_modeller_reads_and_writes_the_file_without_losing_our_extensions(
    name: str, session: Session, world: World, tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "bpmn-moddle").exists():
        unavailable("needs node and npm ci (bpmn-moddle, the model layer of bpmn.io and Camunda Modeler)")
    run = subprocess.run([node, str(ROOT / "tools" / "moddle_roundtrip.mjs"), str(PROCESSES / f"{name}.bpmn")],  # noqa: S603
                         cwd=ROOT, capture_output=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr.decode()
    files = [f for f in read_directory(PROCESSES, FORMS) if f.name != f"{name}.bpmn"]
    first = validate(session, read_directory(PROCESSES, FORMS))
    assert first.problems == []
    original = first.processes
    files.append(type(files[0])(f"{name}.bpmn", run.stdout))
    second = validate(session, files)
    assert [str(p) for p in second.problems] == []
    again = second.processes
    assert again[name].user_tasks == original[name].user_tasks  # ids, names, lanes
    assert again[name].properties == original[name].properties  # form, due, track, ... of every step and the start
    assert again[name].called_decisions == original[name].called_decisions


def test_a_script_that_starts_a_process_that_does_not_exist_is_refused(session: Session, world: World) -> None:
    files = read_directory(PROCESSES, FORMS)
    followup = next(f for f in files if f.name == "followup.bpmn")
    typo = followup.content.replace(b'start_process("police_measures"', b'start_process("police_measure"')
    checked = validate(session, [*[f for f in files if f is not followup], SourceFile("followup.bpmn", typo)])
    assert [(p.file, p.element_id, p.message) for p in checked.problems] == [
        ("followup.bpmn", "followup_apply_level",
         "the script starts the process 'police_measure', which does not exist")]
