"""Automatic layout of BPMN process diagrams: regenerate the diagram interchange (BPMNDI).

Process files are written by hand, without diagram information or with stale one. This
tool throws away every ``bpmndi:BPMNDiagram`` and draws a new one from the semantic model:

* each process is a pool (a ``bpmn:collaboration`` with one participant per process is
  created when the file has none); each lane of its lane set is a horizontal band;
* the flow goes left to right: a node's column is its longest-path rank from the start
  events over the sequence flows (back edges of loops are ignored);
* nodes of the same lane in the same column are stacked in "tracks", the main path kept
  straight, branches and exception paths (boundary events) below it;
* sequence flows are orthogonal polylines: out of the right side of the source, a vertical
  segment in the gap between columns, into the left side of the target; the branches of a
  split leave the gateway by its bottom; loops (targets to the left) and flows that would
  cross other shapes go down to a channel under the track and run along it;
* events and gateways get their label under the shape (above it when a flow leaves or
  enters by the bottom); boundary events sit on the bottom edge of their host.

Everything outside the diagram is kept as written (including its formatting). Running the
tool twice gives identical bytes.

    python -m tools.bpmn_layout processes/*.bpmn          # rewrite the diagrams
    python -m tools.bpmn_layout --check processes/*.bpmn  # exit 1 if a diagram is stale
"""

from __future__ import annotations

import argparse
import copy
import heapq
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
DI_NSMAP = {"bpmndi": BPMNDI_NS, "dc": DC_NS, "di": DI_NS}

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

ACTIVITIES = frozenset(
    {
        "task", "userTask", "manualTask", "scriptTask", "serviceTask", "businessRuleTask",
        "sendTask", "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
    }
)  # fmt: skip
EVENTS = frozenset({"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"})
GATEWAYS = frozenset({"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"})
# Process children that would need a shape but are not drawn by this tool.
NOT_DRAWN = frozenset({"dataObjectReference", "dataStoreReference", "textAnnotation", "group", "association"})

# Geometry (pixels).
TASK_W, TASK_H = 100, 80
EVENT_SIZE = 36
GATEWAY_SIZE = 50
COLUMN_W = 150
POOL_HEADER = 30
LANE_HEADER = 30
LEFT_MARGIN = 30  # between the lane header and the first gap
RIGHT_MARGIN = 20
TRACK_PAD = 20  # free space above and below the shapes of a track
EMPTY_BAND_H = 100
ORIGIN_X, ORIGIN_Y = 20, 20
POOL_GAP = 40  # vertical space between pools
EMPTY_POOL_W, EMPTY_POOL_H = 600, 80
LABEL_GAP = 4
LINE_H = 14
CHAR_W = 6
LABEL_MAX_W = 90
CHANNEL_STEP = 10  # distance between parallel horizontal routes in a channel
GAP_OFFSETS = (0, -8, 8, -16, 16, -24, 24)  # x offsets of parallel vertical routes in a gap


class LayoutError(Exception):
    """The file cannot be laid out (not BPMN, broken references...)."""


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return etree.QName(tag).localname


def _is_bpmn(el: etree._Element) -> bool:
    tag = el.tag
    return isinstance(tag, str) and etree.QName(tag).namespace == BPMN_NS


# --------------------------------------------------------------------------------------
# Semantic model
# --------------------------------------------------------------------------------------


@dataclass
class Label:
    """Text size estimate of an external label."""

    width: int
    height: int


@dataclass
class Node:
    id: str
    local: str
    kind: str  # "activity" | "event" | "gateway"
    name: str
    index: int
    band: int = 0
    host: str | None = None  # boundary events: the activity they are attached to
    boundary_slot: int = 0
    boundary_count: int = 0
    rank: int = 0
    track: int = 0
    label: Label | None = None
    label_above: bool = False
    x: int = 0
    y: int = 0
    w: int = 0
    h: int = 0
    outgoing: list[Flow] = field(default_factory=list)
    incoming: list[Flow] = field(default_factory=list)

    @property
    def cx(self) -> int:
        return self.x + self.w // 2

    @property
    def cy(self) -> int:
        return self.y + self.h // 2

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h


@dataclass
class Flow:
    id: str
    source: str
    target: str
    name: str
    back: bool = False


@dataclass
class Band:
    lane_id: str | None  # None: nodes that belong to no lane (no shape is drawn for the band)
    name: str = ""
    y: int = 0
    height: int = 0


@dataclass
class Route:
    """How a sequence flow is drawn, decided before the y coordinates are known."""

    flow: Flow
    kind: str  # straight | after | before | channel | loop | boundary | drop
    channel: tuple[int, int] | None = None  # (band, track) under which the flow runs
    channel_slot: int = 0
    exit_bottom: bool = False  # leaves the source by its bottom (else its right side)
    enter_bottom: bool = False  # enters the target by its bottom (else its left side)


@dataclass
class Shape:
    element: str
    bounds: tuple[int, int, int, int]
    attrs: dict[str, str] = field(default_factory=dict)
    label: tuple[int, int, int, int] | None = None


@dataclass
class Edge:
    element: str
    points: list[tuple[int, int]]
    label: tuple[int, int, int, int] | None = None


def _label_size(text: str) -> Label:
    """Estimate the box of a label as bpmn-js wraps it (11 px font, 90 px wide)."""
    lines = 0
    width = 0
    current = 0
    for word in text.split():
        word_w = len(word) * CHAR_W
        if current and current + CHAR_W + word_w <= LABEL_MAX_W - 12:
            current += CHAR_W + word_w
            continue
        if current:
            lines += 1
            width = max(width, current)
        current = word_w
    if current:
        lines += 1
        width = max(width, current)
    # bpmn-js wraps the text at the width of the label's bounds: leave room for wide letters.
    return Label(width=max(min(width + 12, LABEL_MAX_W), 20), height=max(lines, 1) * LINE_H)


def _boundary_offset(slot: int, count: int) -> int:
    """x of the centre of a boundary event on its host's bottom edge, from the host's left side."""
    if count <= 1:
        return TASK_W - 25
    if count == 2:
        return (TASK_W - 20, 20)[slot]
    return TASK_W - 18 - slot * (TASK_W - 36) // (count - 1)


def _node_size(kind: str) -> tuple[int, int]:
    if kind == "event":
        return EVENT_SIZE, EVENT_SIZE
    if kind == "gateway":
        return GATEWAY_SIZE, GATEWAY_SIZE
    return TASK_W, TASK_H


# --------------------------------------------------------------------------------------
# Layout of one process
# --------------------------------------------------------------------------------------


class ProcessLayout:
    """Place the nodes of one process inside a pool whose top-left corner is given."""

    def __init__(self, process: etree._Element) -> None:
        self.process = process
        self.nodes: dict[str, Node] = {}
        self.flows: list[Flow] = []
        self.bands: list[Band] = []
        self.skipped: list[str] = []
        self.occupied: set[tuple[int, int, int]] = set()  # (band, column, track) holding a shape
        self.content_x = 0  # x of the left edge of column 0's gap
        self._read()

    # -- reading -----------------------------------------------------------------------

    def _read(self) -> None:
        index = 0
        for child in self.process:
            if not _is_bpmn(child):
                continue
            local = _local(child)
            kind = (
                "activity" if local in ACTIVITIES
                else "event" if local in EVENTS
                else "gateway" if local in GATEWAYS
                else None
            )  # fmt: skip
            if kind is None:
                if local in NOT_DRAWN:
                    self.skipped.append(child.get("id", local))
                continue
            node_id = child.get("id")
            if not node_id:
                raise LayoutError(f"a {local} has no id")
            node = Node(id=node_id, local=local, kind=kind, name=(child.get("name") or "").strip(), index=index)
            node.w, node.h = _node_size(kind)
            if local == "boundaryEvent":
                node.host = child.get("attachedToRef")
            self.nodes[node_id] = node
            index += 1
        for node in self.nodes.values():
            if node.host is not None and node.host not in self.nodes:
                node.host = None  # dangling attachment: draw it as a free event
        hosts: dict[str, int] = defaultdict(int)
        for node in self.nodes.values():
            if node.host is not None:
                node.boundary_slot = hosts[node.host]
                hosts[node.host] += 1
        for node in self.nodes.values():
            if node.host is not None:
                node.boundary_count = hosts[node.host]
        for child in self.process.iterchildren(_q(BPMN_NS, "sequenceFlow")):
            source, target = child.get("sourceRef", ""), child.get("targetRef", "")
            if source not in self.nodes or target not in self.nodes:
                continue
            flow = Flow(id=child.get("id", ""), source=source, target=target, name=(child.get("name") or "").strip())
            self.flows.append(flow)
            self.nodes[source].outgoing.append(flow)
            self.nodes[target].incoming.append(flow)
        self._read_lanes()

    def _read_lanes(self) -> None:
        lane_set = self.process.find(_q(BPMN_NS, "laneSet"))
        lane_of: dict[str, int] = {}
        if lane_set is not None:
            for lane in lane_set.iterchildren(_q(BPMN_NS, "lane")):
                band = len(self.bands)
                self.bands.append(Band(lane_id=lane.get("id"), name=(lane.get("name") or "").strip()))
                # Nodes of nested lanes belong to the top-level lane that contains them.
                for ref in lane.iter(_q(BPMN_NS, "flowNodeRef")):
                    ref_id = (ref.text or "").strip()
                    if ref_id in self.nodes and ref_id not in lane_of:
                        lane_of[ref_id] = band
        orphans = [n for n in self.nodes.values() if n.host is None and n.id not in lane_of]
        if orphans or not self.bands:
            self.bands.append(Band(lane_id=None))
        free_band = len(self.bands) - 1
        for node in self.nodes.values():
            if node.host is None:
                node.band = lane_of.get(node.id, free_band)
        for node in self.nodes.values():
            if node.host is not None:
                node.band = self.nodes[node.host].band

    # -- ranks (columns) ---------------------------------------------------------------

    def _successors(self) -> dict[str, list[tuple[str, int, Flow | None]]]:
        succ: dict[str, list[tuple[str, int, Flow | None]]] = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            if node.host is not None:
                succ[node.host].append((node.id, 0, None))
        for flow in self.flows:
            succ[flow.source].append((flow.target, 1, flow))
        return succ

    def _rank(self) -> None:
        succ = self._successors()
        has_incoming = {flow.target for flow in self.flows} | {n.id for n in self.nodes.values() if n.host}
        ordered = sorted(self.nodes.values(), key=lambda n: n.index)
        roots = [n.id for n in ordered if n.local == "startEvent" and n.host is None]
        roots += [n.id for n in ordered if n.id not in has_incoming and n.id not in roots]
        roots += [n.id for n in ordered]
        state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
        for root in roots:
            if root in state:
                continue
            state[root] = 1
            stack: list[tuple[str, int]] = [(root, 0)]
            while stack:
                node_id, pos = stack[-1]
                if pos >= len(succ[node_id]):
                    state[node_id] = 2
                    stack.pop()
                    continue
                stack[-1] = (node_id, pos + 1)
                target, _weight, flow = succ[node_id][pos]
                seen = state.get(target)
                if seen == 1:
                    if flow is not None:
                        flow.back = True
                elif seen is None:
                    state[target] = 1
                    stack.append((target, 0))
        # Longest path over the acyclic rest (Kahn, ties broken by document order).
        indegree: dict[str, int] = dict.fromkeys(self.nodes, 0)
        for edges in succ.values():
            for target, _weight, flow in edges:
                if flow is None or not flow.back:
                    indegree[target] += 1
        heap = [(n.index, n.id) for n in ordered if indegree[n.id] == 0]
        heapq.heapify(heap)
        rank: dict[str, int] = dict.fromkeys(self.nodes, 0)
        while heap:
            _index, node_id = heapq.heappop(heap)
            for target, weight, flow in succ[node_id]:
                if flow is not None and flow.back:
                    continue
                rank[target] = max(rank[target], rank[node_id] + weight)
                indegree[target] -= 1
                if indegree[target] == 0:
                    heapq.heappush(heap, (self.nodes[target].index, target))
        for node_id, value in rank.items():
            self.nodes[node_id].rank = value

    # -- tracks (rows inside a lane) ---------------------------------------------------

    def _assign_tracks(self) -> None:
        preds: dict[str, list[tuple[Node, int, int]]] = defaultdict(list)
        for flow in self.flows:
            if flow.back:
                continue
            source = self.nodes[flow.source]
            delta = 0
            out_index = source.outgoing.index(flow)
            if source.host is not None:
                source = self.nodes[source.host]
                delta = 1  # exception paths start under their host
                out_index += 100
            preds[flow.target].append((source, delta, out_index))
        by_rank: dict[int, list[Node]] = defaultdict(list)
        for node in self.nodes.values():
            if node.host is None:
                by_rank[node.rank].append(node)
        occupied: set[tuple[int, int, int]] = set()
        for rank in sorted(by_rank):
            keyed: list[tuple[tuple[int, int, int, int, int], Node]] = []
            for node in by_rank[rank]:
                same = sorted(
                    (p.track + delta, p.track, out_index)
                    for p, delta, out_index in preds[node.id]
                    if p.band == node.band and p.rank < rank
                )
                if same:
                    pref, pred_track, out_index = same[0]
                    key = (pref, 0, pred_track, out_index, node.index)
                else:
                    key = (0, 1, 0, 0, node.index)
                keyed.append((key, node))
            keyed.sort(key=lambda item: item[0])
            for key, node in keyed:
                track = key[0]
                while (node.band, rank, track) in occupied:
                    track += 1
                node.track = track
                occupied.add((node.band, rank, track))
        for node in self.nodes.values():
            if node.host is not None:
                host = self.nodes[node.host]
                node.rank, node.track = host.rank, host.track
        self.occupied = occupied

    # -- routes ------------------------------------------------------------------------

    def _free(self, band: int, track: int, first: int, last: int) -> bool:
        """True when no shape sits on the track between columns first..last (inclusive)."""
        return all((band, column, track) not in self.occupied for column in range(first, last + 1))

    def _drop_free(self, source: Node, target: Node) -> bool:
        """Can a flow go straight down from `source` (or its boundary event) and turn right into `target`?"""
        if target.rank <= source.rank:
            return False
        source_pos, target_pos = (source.band, source.track), (target.band, target.track)
        if target_pos <= source_pos:
            return False
        for band, column, track in self.occupied:
            if column == source.rank and source_pos < (band, track) <= target_pos:
                return False
        return self._free(target.band, target.track, source.rank + 1, target.rank - 1)

    def _plan_routes(self) -> list[Route]:
        routes: list[Route] = []
        for flow in self.flows:
            source, target = self.nodes[flow.source], self.nodes[flow.target]
            route = self._plan_route(flow, source, target)
            if route.channel is not None and target.kind == "gateway":
                route.enter_bottom = route.channel == (target.band, target.track)
            if route.exit_bottom and source.host is None:
                source.label_above = True
            if route.enter_bottom:
                target.label_above = True
            routes.append(route)
        return routes

    def _plan_route(self, flow: Flow, source: Node, target: Node) -> Route:
        if source.host is not None:
            host = self.nodes[source.host]
            if self._drop_free(host, target):
                return Route(flow, "drop", exit_bottom=True)
            return Route(flow, "boundary", channel=(host.band, host.track), exit_bottom=True)
        src_pos, tgt_pos = (source.band, source.track), (target.band, target.track)
        if flow.back or target.rank <= source.rank:
            return Route(flow, "loop", channel=src_pos, exit_bottom=True)
        first, last = source.rank + 1, target.rank - 1
        if src_pos == tgt_pos and self._free(*src_pos, first, last):
            return Route(flow, "straight")
        if source.kind == "gateway" and len(source.outgoing) > 1 and self._drop_free(source, target):
            return Route(flow, "drop", exit_bottom=True)  # a split: branches leave by the bottom
        bend_after = self._free(*tgt_pos, first, last)
        bend_before = self._free(*src_pos, first, last)
        prefer_before = len(target.incoming) > 1 and len(source.outgoing) == 1
        if bend_before and (prefer_before or not bend_after):
            return Route(flow, "before")
        if bend_after:
            return Route(flow, "after")
        channel = min(src_pos, tgt_pos)
        return Route(flow, "channel", channel=channel, exit_bottom=source.kind == "gateway" and channel == src_pos)

    # -- coordinates -------------------------------------------------------------------

    def _column_cx(self, rank: int) -> int:
        return self.content_x + rank * COLUMN_W + COLUMN_W // 2

    def _gap_x(self, gap: int) -> int:
        """Centre of the gap left of column `gap`."""
        return self.content_x + gap * COLUMN_W

    def _route_extent(self, route: Route) -> tuple[int, int]:
        source, target = self.nodes[route.flow.source], self.nodes[route.flow.target]
        start = self._source_anchor_x(source) if route.exit_bottom else self._gap_x(source.rank + 1)
        end = self._column_cx(target.rank) if route.enter_bottom else self._gap_x(target.rank)
        return min(start, end), max(start, end)

    def _source_anchor_x(self, source: Node) -> int:
        if source.host is not None:
            host = self.nodes[source.host]
            return (
                self._column_cx(host.rank) - TASK_W // 2 + _boundary_offset(source.boundary_slot, source.boundary_count)
            )
        return self._column_cx(source.rank)

    def _assign_channel_slots(self, routes: list[Route]) -> dict[tuple[int, int], int]:
        used: dict[tuple[int, int], list[list[tuple[int, int]]]] = defaultdict(list)
        for route in routes:
            if route.channel is None:
                continue
            lo, hi = self._route_extent(route)
            slots = used[route.channel]
            for slot, intervals in enumerate(slots):
                if all(hi + 12 < a or lo - 12 > b for a, b in intervals):
                    intervals.append((lo, hi))
                    route.channel_slot = slot
                    break
            else:
                slots.append([(lo, hi)])
                route.channel_slot = len(slots) - 1
        return {key: len(slots) for key, slots in used.items()}

    def place(self, x0: int, y0: int) -> tuple[list[Shape], list[Edge], tuple[int, int, int, int]]:
        """Lay out the process in a pool at (x0, y0); return shapes, edges and the pool bounds."""
        self._rank()
        self._assign_tracks()
        routes = self._plan_routes()
        has_lanes = any(band.lane_id is not None for band in self.bands)
        lane_x = x0 + POOL_HEADER
        self.content_x = lane_x + (LANE_HEADER if has_lanes else 0) + LEFT_MARGIN
        columns = max((n.rank for n in self.nodes.values()), default=-1) + 1
        pool_w = max(self.content_x + columns * COLUMN_W + RIGHT_MARGIN - x0, EMPTY_POOL_W)

        for node in self.nodes.values():
            if node.name and node.kind != "activity":
                node.label = _label_size(node.name)
        slots = self._assign_channel_slots(routes)

        # Vertical extents of every track: shapes are centred on one line per track.
        above: dict[tuple[int, int], int] = defaultdict(int)
        below: dict[tuple[int, int], int] = defaultdict(int)
        tracks: dict[int, int] = defaultdict(lambda: -1)
        for node in self.nodes.values():
            key = (node.band, node.track)
            tracks[node.band] = max(tracks[node.band], node.track)
            if node.host is not None:
                extra = node.h // 2 + (2 + node.label.height if node.label else 0)
                below[key] = max(below[key], TASK_H // 2 + extra)
                continue
            up = down = node.h // 2
            if node.label is not None:
                if node.label_above:
                    up += LABEL_GAP + node.label.height
                else:
                    down += LABEL_GAP + node.label.height
            above[key] = max(above[key], up)
            below[key] = max(below[key], down)

        center: dict[tuple[int, int], int] = {}
        channel_y: dict[tuple[int, int], int] = {}
        y = y0
        for band_index, band in enumerate(self.bands):
            band.y = y
            natural = 0
            rows: list[tuple[tuple[int, int], int, int]] = []
            for track in range(tracks[band_index] + 1):
                key = (band_index, track)
                up = max(above[key], TASK_H // 2)
                down = max(below[key], TASK_H // 2)
                middle = natural + TRACK_PAD + up
                rows.append((key, middle, down))
                natural = middle + down + max(TRACK_PAD, 10 + slots.get(key, 0) * CHANNEL_STEP + 4)
            # A lane is at least tall enough for its name on two lines of the vertical header.
            band.height = max(natural, EMPTY_BAND_H, len(band.name) * 7 // 2 + 50 if band.name else 0)
            shift = (band.height - natural) // 2
            for key, middle, down in rows:
                center[key] = y + shift + middle
                channel_y[key] = center[key] + down + 10
            y += band.height
        pool = (x0, y0, pool_w, y - y0)

        for node in self.nodes.values():
            if node.host is not None:
                continue
            node.x = self._column_cx(node.rank) - node.w // 2
            node.y = center[(node.band, node.track)] - node.h // 2
        for node in self.nodes.values():
            if node.host is not None:
                host = self.nodes[node.host]
                node.x = self._source_anchor_x(node) - node.w // 2
                node.y = host.bottom - node.h // 2

        shapes = self._shapes(lane_x, pool_w - POOL_HEADER)
        edges = self._edges(routes, channel_y)
        return shapes, edges, pool

    # -- DI elements -------------------------------------------------------------------

    def _shapes(self, lane_x: int, lane_w: int) -> list[Shape]:
        shapes: list[Shape] = []
        for band in self.bands:
            if band.lane_id is not None:
                shapes.append(Shape(band.lane_id, (lane_x, band.y, lane_w, band.height), {"isHorizontal": "true"}))
        for node in sorted(self.nodes.values(), key=lambda n: n.index):
            attrs: dict[str, str] = {}
            if node.local == "exclusiveGateway":
                attrs["isMarkerVisible"] = "true"
            if node.local in {"subProcess", "transaction", "adHocSubProcess"}:
                attrs["isExpanded"] = "false"
            label: tuple[int, int, int, int] | None = None
            if node.kind != "activity":
                size = node.label or Label(width=20, height=LINE_H)
                if node.host is not None:
                    label = (node.cx - 4 - size.width, node.bottom + 2, size.width, size.height)
                elif node.label_above:
                    label = (node.cx - size.width // 2, node.y - LABEL_GAP - size.height, size.width, size.height)
                else:
                    label = (node.cx - size.width // 2, node.bottom + LABEL_GAP, size.width, size.height)
            shapes.append(Shape(node.id, (node.x, node.y, node.w, node.h), attrs, label))
        return shapes

    def _edges(self, routes: list[Route], channel_y: dict[tuple[int, int], int]) -> list[Edge]:
        # Vertical segments in the gaps between columns: (gap, y1, y2, group, route index, part).
        verticals: list[tuple[int, int, int, str, int, int]] = []
        for index, route in enumerate(routes):
            source, target = self.nodes[route.flow.source], self.nodes[route.flow.target]
            chy = channel_y[route.channel] + route.channel_slot * CHANNEL_STEP if route.channel else 0
            if route.kind == "after":
                verticals.append((source.rank + 1, source.cy, target.cy, "s:" + source.id, index, 0))
            elif route.kind == "before":
                verticals.append((target.rank, source.cy, target.cy, "t:" + target.id, index, 0))
            if route.channel is not None and not route.exit_bottom:
                verticals.append((source.rank + 1, source.cy, chy, "s:" + source.id, index, 0))
            if route.channel is not None and not route.enter_bottom:
                verticals.append((target.rank, chy, target.cy, "t:" + target.id, index, 1))
        offsets = self._gap_offsets(verticals)

        edges: list[Edge] = []
        for index, route in enumerate(routes):
            flow = route.flow
            source, target = self.nodes[flow.source], self.nodes[flow.target]
            sy, ty = source.cy, target.cy
            points: list[tuple[int, int]]
            if route.kind == "straight":
                points = [(source.right, sy), (target.x, ty)]
            elif route.kind == "drop":
                points = [(source.cx, source.bottom), (source.cx, ty), (target.x, ty)]
            elif route.kind == "after":
                gx = self._gap_x(source.rank + 1) + offsets[(index, 0)]
                points = [(source.right, sy), (gx, sy), (gx, ty), (target.x, ty)]
            elif route.kind == "before":
                gx = self._gap_x(target.rank) + offsets[(index, 0)]
                points = [(source.right, sy), (gx, sy), (gx, ty), (target.x, ty)]
            else:  # along a channel under a track: channel, loop, boundary
                assert route.channel is not None
                chy = channel_y[route.channel] + route.channel_slot * CHANNEL_STEP
                if route.exit_bottom:
                    points = [(source.cx, source.bottom), (source.cx, chy)]
                else:
                    g1 = self._gap_x(source.rank + 1) + offsets[(index, 0)]
                    points = [(source.right, sy), (g1, sy), (g1, chy)]
                if route.enter_bottom:
                    points += [(target.cx, chy), (target.cx, target.bottom)]
                else:
                    g2 = self._gap_x(target.rank) + offsets[(index, 1)]
                    points += [(g2, chy), (g2, ty), (target.x, ty)]
            points = _simplify(points)
            label = None
            if flow.name:
                label = self._flow_label(flow.name, points)
            edges.append(Edge(flow.id, points, label))
        return edges

    @staticmethod
    def _gap_offsets(verticals: list[tuple[int, int, int, str, int, int]]) -> dict[tuple[int, int], int]:
        """Give parallel vertical segments of one gap distinct x offsets (shared by a fork/merge)."""
        groups: dict[tuple[int, str], tuple[int, int]] = {}
        for gap, y1, y2, group, _index, _part in verticals:
            lo, hi = min(y1, y2), max(y1, y2)
            if (gap, group) in groups:
                a, b = groups[(gap, group)]
                lo, hi = min(lo, a), max(hi, b)
            groups[(gap, group)] = (lo, hi)
        chosen: dict[tuple[int, str], int] = {}
        taken: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        for (gap, group), (lo, hi) in sorted(groups.items(), key=lambda item: (item[0][0], item[1], item[0][1])):
            if lo == hi:
                chosen[(gap, group)] = 0
                continue
            for offset in GAP_OFFSETS:
                if all(hi + 6 < a or lo - 6 > b for a, b in taken[(gap, offset)]):
                    break
            taken[(gap, offset)].append((lo, hi))
            chosen[(gap, group)] = offset
        return {(index, part): chosen[(gap, group)] for gap, _y1, _y2, group, index, part in verticals}

    @staticmethod
    def _flow_label(name: str, points: list[tuple[int, int]]) -> tuple[int, int, int, int]:
        size = _label_size(name)
        (x1, y1), (x2, y2) = points[0], points[1]
        if len(points) == 3 and x1 == x2 and points[2][1] == y2:
            # Down and right (a branch of a split, or a boundary event's flow): the label sits on
            # the branch, above its last segment, so branches sharing the trunk keep theirs apart.
            return (x2 + 6, y2 - 4 - size.height, size.width, size.height)
        if y1 == y2 and len(points) > 2 and points[2][0] == x2:
            # Short run to a bend: put the label beside the vertical segment that follows.
            down = points[2][1] > y2
            y = y2 + 4 if down else y2 - 4 - size.height
            return (x2 + 4, y, size.width, size.height)
        if y1 == y2:
            return (x1 + 8, y1 - 4 - size.height, size.width, size.height)
        down = y2 > y1
        return (x1 + 4, y1 + 4 if down else y1 - 4 - size.height, size.width, size.height)


def _simplify(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop repeated points and middle points of straight runs."""
    out: list[tuple[int, int]] = []
    for point in points:
        if out and out[-1] == point:
            continue
        if len(out) >= 2:
            (ax, ay), (bx, by) = out[-2], out[-1]
            if (ax == bx == point[0]) or (ay == by == point[1]):
                out[-1] = point
                continue
        out.append(point)
    return out


# --------------------------------------------------------------------------------------
# Document handling
# --------------------------------------------------------------------------------------


@dataclass
class Result:
    data: bytes  # the laid-out document
    stale: bool  # the diagram (or the collaboration) differs from the input's
    notes: list[str]


def _all_ids(root: etree._Element) -> set[str]:
    return {el.get("id", "") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}


def _unique_id(wanted: str, ids: set[str]) -> str:
    candidate, n = wanted, 2
    while candidate in ids:
        candidate = f"{wanted}_{n}"
        n += 1
    ids.add(candidate)
    return candidate


def _child_indent(root: etree._Element) -> str | None:
    text = root.text or ""
    if "\n" in text and not text.strip():
        return text[text.rindex("\n") :]
    return None


def _insert_before(parent: etree._Element, new: etree._Element, anchor: etree._Element, indent: str) -> None:
    index = parent.index(anchor)
    new.tail = indent
    parent.insert(index, new)


def _append_last(parent: etree._Element, new: etree._Element, indent: str) -> None:
    children = list(parent)
    if children:
        last = children[-1]
        new.tail = last.tail if last.tail and not last.tail.strip() else "\n"
        last.tail = indent
    else:
        parent.text = indent
        new.tail = "\n"
    parent.append(new)


def _remove(el: etree._Element) -> None:
    parent = el.getparent()
    if parent is None:
        return
    previous = el.getprevious()
    if el.getnext() is None:
        # Keep the whitespace before the parent's closing tag.
        if previous is not None:
            previous.tail = el.tail
        else:
            parent.text = el.tail
    parent.remove(el)


def _canonical(elements: Iterable[etree._Element]) -> list[bytes]:
    out: list[bytes] = []
    for el in elements:
        clone = copy.deepcopy(el)
        for sub in clone.iter():
            if sub.text is not None and not sub.text.strip():
                sub.text = None
            if sub.tail is not None and not sub.tail.strip():
                sub.tail = None
        clone.tail = None
        out.append(etree.tostring(clone, method="c14n", exclusive=True))
    return out


def _ensure_collaboration(root: etree._Element, processes: list[etree._Element], ids: set[str], indent: str) -> bool:
    """Make every process a participant of the (first) collaboration; True if anything was added."""
    collab = root.find(_q(BPMN_NS, "collaboration"))
    changed = False
    if collab is None:
        collab = etree.Element(_q(BPMN_NS, "collaboration"))
        collab.set("id", _unique_id(f"{processes[0].get('id')}_collab", ids))
        _insert_before(root, collab, processes[0], indent)
        changed = True
    referenced = {p.get("processRef") for p in collab.iterchildren(_q(BPMN_NS, "participant"))}
    for process in processes:
        pid = process.get("id", "")
        if pid in referenced:
            continue
        participant = etree.Element(_q(BPMN_NS, "participant"))
        participant.set("id", _unique_id(f"{pid}_pool", ids))
        if process.get("name"):
            participant.set("name", process.get("name", ""))
        participant.set("processRef", pid)
        # Participants come first in a collaboration (XSD sequence order).
        existing = list(collab.iterchildren(_q(BPMN_NS, "participant")))
        if existing:
            existing[-1].addnext(participant)
        else:
            collab.insert(0, participant)
        changed = True
    if changed:
        for sub in collab.iter():
            if sub is not collab:
                sub.tail = None
        collab.text = None
        etree.indent(collab, space=indent.lstrip("\n") or "  ", level=1)
    return changed


def _build_diagram(root: etree._Element, collab: etree._Element, ids: set[str]) -> tuple[etree._Element, list[str]]:
    notes: list[str] = []
    processes = {p.get("id"): p for p in root.iterchildren(_q(BPMN_NS, "process"))}
    shapes: list[Shape] = []
    edges: list[Edge] = []
    bounds: dict[str, tuple[int, int, int, int]] = {}
    y = ORIGIN_Y
    for participant in collab.iterchildren(_q(BPMN_NS, "participant")):
        process = processes.get(participant.get("processRef"))
        pid = participant.get("id", "")
        if process is None:
            pool = (ORIGIN_X, y, EMPTY_POOL_W, EMPTY_POOL_H)
            shapes.append(Shape(pid, pool, {"isHorizontal": "true"}))
        else:
            layout = ProcessLayout(process)
            if layout.skipped:
                notes.append(f"not drawn: {', '.join(layout.skipped)}")
            process_shapes, process_edges, pool = layout.place(ORIGIN_X, y)
            shapes.append(Shape(pid, pool, {"isHorizontal": "true"}))
            shapes.extend(process_shapes)
            edges.extend(process_edges)
        bounds[pid] = pool
        y = pool[1] + pool[3] + POOL_GAP
    for shape in shapes:
        bounds[shape.element] = shape.bounds
    for flow in collab.iterchildren(_q(BPMN_NS, "messageFlow")):
        source, target = bounds.get(flow.get("sourceRef", "")), bounds.get(flow.get("targetRef", ""))
        if source is None or target is None:
            continue
        edges.append(Edge(flow.get("id", ""), _message_points(source, target)))

    diagram = etree.Element(_q(BPMNDI_NS, "BPMNDiagram"), nsmap=DI_NSMAP)
    diagram.set("id", _unique_id(f"{collab.get('id')}_diagram", ids))
    plane = etree.SubElement(diagram, _q(BPMNDI_NS, "BPMNPlane"))
    plane.set("id", _unique_id(f"{collab.get('id')}_plane", ids))
    plane.set("bpmnElement", collab.get("id", ""))
    for shape in shapes:
        el = etree.SubElement(plane, _q(BPMNDI_NS, "BPMNShape"))
        el.set("id", _unique_id(f"{shape.element}_di", ids))
        el.set("bpmnElement", shape.element)
        for key, value in shape.attrs.items():
            el.set(key, value)
        _bounds(el, shape.bounds)
        if shape.label is not None:
            _bounds(etree.SubElement(el, _q(BPMNDI_NS, "BPMNLabel")), shape.label)
    for edge in edges:
        el = etree.SubElement(plane, _q(BPMNDI_NS, "BPMNEdge"))
        el.set("id", _unique_id(f"{edge.element}_di", ids))
        el.set("bpmnElement", edge.element)
        for x, y_ in edge.points:
            etree.SubElement(el, _q(DI_NS, "waypoint"), x=str(x), y=str(y_))
        if edge.label is not None:
            _bounds(etree.SubElement(el, _q(BPMNDI_NS, "BPMNLabel")), edge.label)
    return diagram, notes


def _bounds(parent: etree._Element, box: tuple[int, int, int, int]) -> None:
    x, y, w, h = box
    etree.SubElement(parent, _q(DC_NS, "Bounds"), x=str(x), y=str(y), width=str(w), height=str(h))


def _message_points(source: tuple[int, int, int, int], target: tuple[int, int, int, int]) -> list[tuple[int, int]]:
    sx, tx = source[0] + source[2] // 2, target[0] + target[2] // 2
    if source[1] + source[3] <= target[1]:
        y1, y2 = source[1] + source[3], target[1]
    else:
        y1, y2 = source[1], target[1] + target[3]
    mid = (y1 + y2) // 2
    return _simplify([(sx, y1), (sx, mid), (tx, mid), (tx, y2)])


def layout_bytes(data: bytes) -> Result:
    """Return the document with a freshly generated diagram."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=False, strip_cdata=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise LayoutError(f"not well-formed XML: {exc}") from exc
    if root.tag != _q(BPMN_NS, "definitions"):
        raise LayoutError("not a BPMN document (the root is not bpmn:definitions)")
    processes = list(root.iterchildren(_q(BPMN_NS, "process")))
    if not processes:
        raise LayoutError("no bpmn:process to lay out")
    tree = root.getroottree()
    prefixes = {prefix for el in root.iter() if isinstance(el.tag, str) for prefix in el.nsmap if prefix}

    old = list(root.iterchildren(_q(BPMNDI_NS, "BPMNDiagram")))
    old_canonical = _canonical(old)
    for diagram in old:
        _remove(diagram)

    indent = _child_indent(root)
    unformatted = indent is None
    indent = indent or "\n  "
    ids = _all_ids(root)
    collab_changed = _ensure_collaboration(root, processes, ids, indent)
    collab = root.find(_q(BPMN_NS, "collaboration"))
    assert collab is not None
    diagram, notes = _build_diagram(root, collab, ids)
    _append_last(root, diagram, indent)
    etree.indent(diagram, space=indent.lstrip("\n") or "  ", level=1)

    missing = {p: uri for p, uri in DI_NSMAP.items() if uri not in root.nsmap.values()}
    keep = sorted(prefixes | set(DI_NSMAP))
    etree.cleanup_namespaces(root, top_nsmap=missing, keep_ns_prefixes=keep)
    if unformatted:
        etree.indent(tree, space="  ")
    stale = collab_changed or old_canonical != _canonical([diagram])
    body = etree.tostring(tree, encoding="UTF-8", xml_declaration=False)
    return Result(data=XML_DECLARATION + body + b"\n", stale=stale, notes=notes)


def layout_file(path: Path, *, check: bool = False) -> bool:
    """Lay out one file (or only check it); return True if its diagram was stale."""
    data = path.read_bytes()
    result = layout_bytes(data)
    for note in result.notes:
        print(f"{path}: note: {note}", file=sys.stderr)
    if not check and result.data != data:
        path.write_bytes(result.data)
    return result.stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bpmn_layout",
        description="Generate the diagram (BPMNDI) of BPMN files: lanes as bands, flow left to right.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="BPMN files to lay out in place")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if any file's diagram is out of date"
    )
    args = parser.parse_args(argv)
    stale: list[Path] = []
    failed = False
    done = 0
    for path in args.files:
        try:
            if layout_file(path, check=args.check):
                stale.append(path)
            done += 1
        except (OSError, LayoutError) as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            failed = True
    if args.check:
        for path in stale:
            print(f"{path}: diagram out of date (run: python -m tools.bpmn_layout {path})", file=sys.stderr)
        if not stale and not failed:
            print(f"{len(args.files)} diagram(s) up to date")
    else:
        print(f"laid out {done} file(s), {len(stale)} with a new diagram")
    if failed:
        return 2
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
