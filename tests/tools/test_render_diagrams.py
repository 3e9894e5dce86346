"""The diagram renderer: bpmn-js in headless Chromium writes an SVG and a PNG per BPMN file.

Needs node, `npm ci` (bpmn-js, playwright-core) and Debian's chromium; skipped without them.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.support.environment import unavailable
from tools.bpmn_layout import layout_bytes

REPO = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
VIEWER = REPO / "node_modules" / "bpmn-js" / "dist" / "bpmn-viewer.production.min.js"
PLAYWRIGHT = REPO / "node_modules" / "playwright-core" / "package.json"



@pytest.fixture(autouse=True)
def _renderer_tools() -> None:
    """Skip without node, npm ci and chromium; in CI they must be there."""
    if NODE is None or not CHROMIUM.exists() or not VIEWER.exists() or not PLAYWRIGHT.exists():
        unavailable("needs node, npm ci and chromium (apt-get install -y chromium fonts-liberation)")

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="r_defs" targetNamespace="x">
  <bpmn:process id="render_me" name="Dibujo" isExecutable="true">
    <bpmn:laneSet id="r_lanes">
      <bpmn:lane id="r_a" name="Policía"><bpmn:flowNodeRef>s</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>t</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="r_b" name="Juzgado"><bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="s" name="Inicio"/><bpmn:userTask id="t" name="Registrar"/><bpmn:endEvent id="e" name="Fin"/>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/><bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>
"""


def _render(*args: str) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    command = [NODE, str(REPO / "tools" / "render_diagrams.mjs"), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)  # noqa: S603


def test_renders_an_svg_and_a_png_that_fits_it(tmp_path: Path) -> None:
    source = tmp_path / "dibujo.bpmn"
    source.write_bytes(layout_bytes(BPMN.encode()).data)
    out = tmp_path / "img"
    run = _render("--out", str(out), str(source))
    assert run.returncode == 0, run.stderr
    svg = (out / "dibujo.svg").read_text(encoding="utf-8")
    assert "<svg" in svg
    for text in ("Registrar", "Policía", "Juzgado", "Dibujo"):
        assert text in svg
    png = (out / "dibujo.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    svg_width = re.search(r'<svg[^>]*\swidth="([0-9.]+)"', svg)
    svg_height = re.search(r'<svg[^>]*\sheight="([0-9.]+)"', svg)
    assert svg_width is not None
    assert svg_height is not None
    # device scale factor 1: the picture is the diagram's size plus a 10 px margin
    assert (width, height) == (math.ceil(float(svg_width[1])) + 20, math.ceil(float(svg_height[1])) + 20)

    again = _render("--out", str(out), str(source))
    assert again.returncode == 0, again.stderr
    assert (out / "dibujo.svg").read_text(encoding="utf-8") == svg  # stable output, no churn in git


def test_a_file_without_diagram_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "sin_di.bpmn"
    source.write_text(BPMN, encoding="utf-8")
    run = _render("--out", str(tmp_path / "img"), str(source))
    assert run.returncode == 1
    assert "tools.bpmn_layout" in run.stderr
    assert not (tmp_path / "img").exists()
