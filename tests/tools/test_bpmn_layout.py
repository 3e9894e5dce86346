"""The diagram layout tool: complete, valid, readable and stable diagrams."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.spiff.parser import VALIDATOR
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from tools.bpmn_layout import BPMN_NS, BPMNDI_NS, DC_NS, DI_NS, layout_bytes, main

REPO = Path(__file__).resolve().parents[2]
NS = {"bpmn": BPMN_NS, "bpmndi": BPMNDI_NS, "dc": DC_NS, "di": DI_NS}

# Two lanes, a loop back through an exclusive gateway, a boundary timer with an exception
# path, Spiff extensions, a CDATA script and a stale diagram that must be replaced.
SMALL_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
    xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    id="small_defs" targetNamespace="http://coordina.example/bpmn">
  <bpmn:process id="small" name="Pequeño" isExecutable="true">
    <bpmn:laneSet id="small_lanes">
      <bpmn:lane id="lane_police" name="Policía">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>collect</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>done</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
      <bpmn:lane id="lane_social" name="Servicios sociales">
        <bpmn:flowNodeRef>review</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>late</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>remind</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end_late</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start" name="Denuncia"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="collect" name="Recoger datos">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="form" value="note" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:incoming>f_again</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="review" name="Revisar">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="late" name="48 horas" attachedToRef="review">
      <bpmn:outgoing>f_late</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"PT48H"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:scriptTask id="remind" name="Recordatorio">
      <bpmn:incoming>f_late</bpmn:incoming><bpmn:outgoing>f_late_end</bpmn:outgoing>
      <bpmn:script><![CDATA[reminded = 1 < 2]]></bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end_late"><bpmn:incoming>f_late_end</bpmn:incoming></bpmn:endEvent>
    <bpmn:exclusiveGateway id="done" name="¿Completo?" default="f_yes">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f_yes</bpmn:outgoing><bpmn:outgoing>f_again</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="end" name="Fin"><bpmn:incoming>f_yes</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="collect" />
    <bpmn:sequenceFlow id="f2" sourceRef="collect" targetRef="review" />
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="done" />
    <bpmn:sequenceFlow id="f_yes" name="Sí" sourceRef="done" targetRef="end" />
    <bpmn:sequenceFlow id="f_again" name="No" sourceRef="done" targetRef="collect">
      <bpmn:conditionExpression>complete == False</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_late" sourceRef="late" targetRef="remind" />
    <bpmn:sequenceFlow id="f_late_end" sourceRef="remind" targetRef="end_late" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="stale">
    <bpmndi:BPMNPlane id="stale_plane" bpmnElement="small">
      <bpmndi:BPMNShape id="stale_shape" bpmnElement="collect">
        <dc:Bounds x="0" y="0" width="10" height="10" />
      </bpmndi:BPMNShape>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""

FLOW_NODES = {"start", "collect", "review", "late", "remind", "end_late", "done", "end"}
FLOWS = {"f1", "f2", "f3", "f_yes", "f_again", "f_late", "f_late_end"}
LANES = {
    "lane_police": {"start", "collect", "done", "end"},
    "lane_social": {"review", "late", "remind", "end_late"},
}

Box = tuple[float, float, float, float]


def _bounds(el: etree._Element) -> Box:
    b = el.find("dc:Bounds", NS)
    assert b is not None
    return (float(b.get("x", "")), float(b.get("y", "")), float(b.get("width", "")), float(b.get("height", "")))


def _inside(inner: Box, outer: Box) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


@pytest.fixture(scope="module")
def laid_out() -> bytes:
    return layout_bytes(SMALL_BPMN.encode()).data


@pytest.fixture(scope="module")
def root(laid_out: bytes) -> etree._Element:
    return etree.fromstring(laid_out)


def test_every_node_has_a_shape_and_every_flow_an_edge(root: etree._Element) -> None:
    diagrams = root.findall("bpmndi:BPMNDiagram", NS)
    assert len(diagrams) == 1
    planes = diagrams[0].findall("bpmndi:BPMNPlane", NS)
    assert len(planes) == 1
    shapes = {s.get("bpmnElement") for s in planes[0].iterfind("bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement") for e in planes[0].iterfind("bpmndi:BPMNEdge", NS)}
    assert shapes >= FLOW_NODES | set(LANES) | {"small_pool"}
    assert edges == FLOWS
    assert root.find(".//bpmndi:BPMNShape[@id='stale_shape']", NS) is None


def test_a_collaboration_puts_the_lanes_in_a_pool(root: etree._Element) -> None:
    children = [etree.QName(c).localname for c in root if isinstance(c.tag, str)]
    assert children.index("collaboration") < children.index("process")
    participant = root.find("bpmn:collaboration[@id='small_collab']/bpmn:participant", NS)
    assert participant is not None
    assert participant.attrib == {"id": "small_pool", "name": "Pequeño", "processRef": "small"}
    plane = root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    assert plane is not None
    assert plane.get("bpmnElement") == "small_collab"


def test_every_shape_lies_inside_its_lane_and_lanes_inside_the_pool(root: etree._Element) -> None:
    shapes = {s.get("bpmnElement"): s for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    pool = _bounds(shapes["small_pool"])
    lane_boxes = [_bounds(shapes[lane]) for lane in LANES]
    for (lane, members), box in zip(LANES.items(), lane_boxes, strict=True):
        assert _inside(box, pool), lane
        for node in members:
            assert _inside(_bounds(shapes[node]), box), (node, lane)
    top, bottom = sorted(lane_boxes, key=lambda b: b[1])
    assert top[1] + top[3] <= bottom[1]  # bands do not overlap


def test_shapes_do_not_overlap(root: etree._Element) -> None:
    shapes = {s.get("bpmnElement"): _bounds(s) for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    nodes = sorted(FLOW_NODES - {"late"})  # a boundary event sits on its host's edge by design
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            ax, ay, aw, ah = shapes[a]
            bx, by, bw, bh = shapes[b]
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (a, b)
    hx, hy, hw, hh = shapes["review"]
    lx, ly, lw, lh = shapes["late"]
    assert hx <= lx + lw / 2 <= hx + hw
    assert ly + lh / 2 == hy + hh


def test_edges_are_orthogonal_and_leave_and_enter_their_shapes(root: etree._Element) -> None:
    shapes = {s.get("bpmnElement"): _bounds(s) for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    flows = {f.get("id"): f for f in root.iterfind("bpmn:process/bpmn:sequenceFlow", NS)}
    for edge in root.iterfind(".//bpmndi:BPMNEdge", NS):
        points = [(float(p.get("x", "")), float(p.get("y", ""))) for p in edge.iterfind("di:waypoint", NS)]
        assert len(points) >= 2
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            assert x1 == x2 or y1 == y2, edge.get("bpmnElement")
        flow = flows[edge.get("bpmnElement")]
        sx, sy, sw, sh = shapes[flow.get("sourceRef")]
        tx, ty, tw, th = shapes[flow.get("targetRef")]
        assert points[0][0] in (sx + sw, sx + sw / 2)  # out of the right side, or down from the bottom
        assert sy <= points[0][1] <= sy + sh
        # into the left side of the target (or the bottom corner of a gateway, from a channel below it)
        assert points[-1] in ((tx, ty + th / 2), (tx + tw / 2, ty + th))


def test_events_and_gateways_have_labels(root: etree._Element) -> None:
    for node in ("start", "done", "end", "late"):
        shape = root.find(f".//bpmndi:BPMNShape[@bpmnElement='{node}']", NS)
        assert shape is not None
        assert shape.find("bpmndi:BPMNLabel/dc:Bounds", NS) is not None, node
    gateway = root.find(".//bpmndi:BPMNShape[@bpmnElement='done']", NS)
    assert gateway is not None
    assert gateway.get("isMarkerVisible") == "true"


def test_output_validates_and_parses_with_spiff(laid_out: bytes) -> None:
    tree = etree.ElementTree(etree.fromstring(laid_out))
    VALIDATOR.validate(tree)
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_xml(tree.getroot(), filename="small.bpmn")
    spec = parser.get_spec("small")
    assert {"collect", "review", "late", "remind", "done"} <= set(spec.task_specs)


def test_everything_else_is_preserved(laid_out: bytes) -> None:
    assert laid_out.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    text = laid_out.decode()
    assert "<![CDATA[reminded = 1 < 2]]>" in text
    assert '<spiffworkflow:property name="form" value="note"/>' in text
    before = etree.fromstring(SMALL_BPMN.encode()).find("bpmn:process", NS)
    after = etree.fromstring(laid_out).find("bpmn:process", NS)
    assert before is not None
    assert after is not None
    assert etree.tostring(before, method="c14n", exclusive=True) == etree.tostring(after, method="c14n", exclusive=True)
    assert 'xmlns:di="http://www.omg.org/spec/DD/20100524/DI"' in text.splitlines()[1]


def test_a_second_run_changes_nothing(laid_out: bytes) -> None:
    again = layout_bytes(laid_out)
    assert again.data == laid_out
    assert not again.stale


def test_check_fails_without_di_and_passes_after_layout(tmp_path: Path) -> None:
    path = tmp_path / "small.bpmn"
    path.write_text(SMALL_BPMN, encoding="utf-8")
    command = [sys.executable, "-m", "tools.bpmn_layout", "--check", str(path)]
    stale = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603
    assert stale.returncode == 1, stale.stderr
    assert "out of date" in stale.stderr
    assert path.read_text(encoding="utf-8") == SMALL_BPMN  # --check writes nothing
    assert main([str(path)]) == 0
    fresh = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603
    assert fresh.returncode == 0, fresh.stderr
    written = path.read_bytes()
    assert main([str(path)]) == 0
    assert path.read_bytes() == written


def test_a_process_without_lanes_or_diagram_gets_a_pool(tmp_path: Path) -> None:
    source = (
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">'
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:task id="t"/>'
        '<bpmn:endEvent id="e"/><bpmn:sequenceFlow id="a" sourceRef="s" targetRef="t"/>'
        '<bpmn:sequenceFlow id="b" sourceRef="t" targetRef="e"/></bpmn:process></bpmn:definitions>'
    )
    result = layout_bytes(source.encode())
    assert result.stale
    root = etree.fromstring(result.data)
    VALIDATOR.validate(etree.ElementTree(root))
    shapes = {s.get("bpmnElement"): _bounds(s) for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    assert set(shapes) == {"p_pool", "s", "t", "e"}
    assert shapes["s"][0] < shapes["t"][0] < shapes["e"][0]  # left to right
    assert result.data.count(b"\n") > 10  # an unformatted file comes out pretty-printed


# Two lanes with a parallel split/join across them and an exclusive decision whose "no" branch
# skips a task: exercises branches leaving a gateway's bottom and channels under a track.
SPLIT_BPMN = """<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    id="split_defs" targetNamespace="x">
  <bpmn:process id="split" isExecutable="true">
    <bpmn:laneSet id="split_lanes">
      <bpmn:lane id="la" name="Mesa"><bpmn:flowNodeRef>s</bpmn:flowNodeRef><bpmn:flowNodeRef>fork</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>a1</bpmn:flowNodeRef><bpmn:flowNodeRef>a2</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>join</bpmn:flowNodeRef><bpmn:flowNodeRef>q</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>extra</bpmn:flowNodeRef><bpmn:flowNodeRef>merge</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="lb" name="Juzgado"><bpmn:flowNodeRef>b1</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="s"/><bpmn:parallelGateway id="fork"/><bpmn:task id="a1" name="A1"/>
    <bpmn:task id="a2" name="A2"/><bpmn:task id="b1" name="B1"/><bpmn:parallelGateway id="join"/>
    <bpmn:exclusiveGateway id="q" name="¿Más?" default="no"/><bpmn:task id="extra" name="Extra"/>
    <bpmn:exclusiveGateway id="merge"/><bpmn:endEvent id="e"/>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="fork"/>
    <bpmn:sequenceFlow id="f2" sourceRef="fork" targetRef="a1"/>
    <bpmn:sequenceFlow id="f3" sourceRef="fork" targetRef="a2"/>
    <bpmn:sequenceFlow id="f4" sourceRef="fork" targetRef="b1"/>
    <bpmn:sequenceFlow id="f5" sourceRef="a1" targetRef="join"/>
    <bpmn:sequenceFlow id="f6" sourceRef="a2" targetRef="join"/>
    <bpmn:sequenceFlow id="f7" sourceRef="b1" targetRef="join"/>
    <bpmn:sequenceFlow id="f8" sourceRef="join" targetRef="q"/>
    <bpmn:sequenceFlow id="yes" name="Sí" sourceRef="q" targetRef="extra">
      <bpmn:conditionExpression>more</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="no" name="No" sourceRef="q" targetRef="merge"/>
    <bpmn:sequenceFlow id="f9" sourceRef="extra" targetRef="merge"/>
    <bpmn:sequenceFlow id="f10" sourceRef="merge" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_splits_joins_and_skips_stay_clear_of_the_shapes() -> None:
    result = layout_bytes(SPLIT_BPMN.encode())
    root = etree.fromstring(result.data)
    VALIDATOR.validate(etree.ElementTree(root))
    shapes = {s.get("bpmnElement"): _bounds(s) for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    lanes = {"la": {"s", "fork", "a1", "a2", "join", "q", "extra", "merge", "e"}, "lb": {"b1"}}
    for lane, members in lanes.items():
        for node in members:
            assert _inside(shapes[node], shapes[lane]), node
    nodes = sorted(lanes["la"] | lanes["lb"])
    assert shapes["a1"][0] == shapes["a2"][0] == shapes["b1"][0]  # the branches share a column
    assert shapes["a1"][1] < shapes["a2"][1]  # stacked in the lane
    for edge in root.iterfind(".//bpmndi:BPMNEdge", NS):
        points = [(float(p.get("x", "")), float(p.get("y", ""))) for p in edge.iterfind("di:waypoint", NS)]
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            assert x1 == x2 or y1 == y2
            for node in nodes:  # no segment runs through a shape other than its own ends
                x, y, w, h = shapes[node]
                inside_x = max(min(x1, x2), x + 1) < min(max(x1, x2), x + w - 1) or x + 1 < x1 < x + w - 1
                inside_y = max(min(y1, y2), y + 1) < min(max(y1, y2), y + h - 1) or y + 1 < y1 < y + h - 1
                assert not (inside_x and inside_y), (edge.get("bpmnElement"), node)
    skip = root.find(".//bpmndi:BPMNEdge[@bpmnElement='no']", NS)
    assert skip is not None
    assert len(skip.findall("di:waypoint", NS)) == 4  # down from "¿Más?", along, up into the merge
