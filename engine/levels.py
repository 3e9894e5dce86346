"""The risk scale: the levels a case may be at, lowest first, with labels and colours, from the protocol.

The scale is a definition like the others (`*.levels.json`, kind `levels`), deployed and versioned with
the processes, so that adding a level or splitting one is a designer's change. Everything that orders,
names or colours levels reads `current_levels(session)`: worklists (`open_task.risk_rank`), the risk
review's choices and its "never lower" check, the pages, the board and the Mesa's agenda.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.errors import Problem
from engine.models import Case, Definition, OpenTask

LEVELS_KIND = "levels"
LEVELS_SUFFIX = ".levels.json"
# A code is what case_file.risk_level stores (String(32)) and what DMN tables and scripts compare.
_CODE = re.compile(r"\A[a-z][a-z0-9_]{0,31}\Z")
_COLOUR = re.compile(r"\A#[0-9a-fA-F]{6}\Z")
_LEVEL_KEYS = frozenset({"code", "label", "label_en", "colour", "high"})
_TOP_KEYS = frozenset({"levels", "description"})
# DMN outputs that hold a risk level: a literal among them must be a level of the scale.
LEVEL_OUTPUTS = frozenset({"computed_level", "risk_level"})
# The choice list a form field names with "x-choices" to offer the levels of the scale.
CHOICES = "risk_levels"


@dataclass(frozen=True)
class RiskLevel:
    """One level: its code, Spanish and English labels, badge colour, and whether it counts as high risk."""

    code: str
    label: str
    label_en: str
    colour: str
    high: bool = False


@dataclass(frozen=True)
class RiskScale:
    """The ordered levels of the deployed protocol, lowest first; `definition_id` None for the shipped one."""

    levels: tuple[RiskLevel, ...]
    definition_id: int | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        """Return the codes, lowest first."""
        return tuple(level.code for level in self.levels)

    def level(self, code: str | None) -> RiskLevel | None:
        """Return the level of a code (None for none or an unknown code)."""
        return next((level for level in self.levels if level.code == code), None)

    def rank(self, code: str | None) -> int:
        """Return the rank of a level: 1 for the lowest, n for the highest, 0 for none or unknown."""
        return self.codes.index(code) + 1 if code in self.codes else 0

    def label(self, code: str | None, lang: str = "es") -> str:
        """Return a level's label in Spanish or English (an unknown code shows as itself)."""
        level = self.level(code)
        if level is None:
            return code or ""
        return level.label_en if lang == "en" else level.label

    def colour(self, code: str | None) -> str | None:
        """Return a level's badge colour (#rrggbb), None for none or an unknown code."""
        level = self.level(code)
        return level.colour if level else None

    @property
    def high(self) -> tuple[str, ...]:
        """Return the codes of high risk (flagged `high`; without flags, the two highest levels)."""
        flagged = tuple(level.code for level in self.levels if level.high)
        return flagged or self.codes[-2:]

    def choices(self, lang: str = "es") -> list[tuple[str, str]]:
        """Return (code, label) of every level, lowest first, as a form offers them."""
        return [(level.code, self.label(level.code, lang)) for level in self.levels]

    def helpers(self) -> dict[str, Any]:
        """Return the names a form check may use to compare levels: `level_rank(code)`."""
        return {"level_rank": self.rank}


SHIPPED = RiskScale((
    RiskLevel("no_apreciado", "No apreciado", "Not appreciated", "#4b5563"),
    RiskLevel("bajo", "Bajo", "Low", "#166534"),
    RiskLevel("medio", "Medio", "Medium", "#92400e"),
    RiskLevel("alto", "Alto", "High", "#b91c1c", high=True),
    RiskLevel("extremo", "Extremo", "Extreme", "#7f1d1d", high=True),
))


def levels_json(scale: RiskScale) -> str:
    """Return a scale as the text of a levels file, one level a line."""
    rows = [{"code": level.code, "label": level.label, "label_en": level.label_en, "colour": level.colour,
             **({"high": True} if level.high else {})} for level in scale.levels]
    return '{"levels": [\n' + ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in rows) + "]}\n"


def levels_key(file_name: str) -> str:
    """Return the key a levels file is deployed under: its name without `.levels.json`."""
    name = file_name.rsplit("/", 1)[-1]
    return name[: -len(LEVELS_SUFFIX)] if name.lower().endswith(LEVELS_SUFFIX) else name


def parse_levels(file_name: str, content: bytes) -> tuple[RiskScale | None, list[Problem]]:
    """Read and check a levels file; return the scale (None if invalid) and its problems."""
    try:
        raw = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        return None, [Problem(file=file_name, message="not UTF-8 text: save the levels file as UTF-8")]
    except json.JSONDecodeError as exc:
        return None, [Problem(file=file_name, line=exc.lineno, message=f"not valid JSON: {exc.msg} "
                                                                        f"(line {exc.lineno}, column {exc.colno})")]
    if not isinstance(raw, dict):
        return None, [Problem(file=file_name, message="a levels file is a JSON object with a 'levels' list")]
    problems = []
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        problems.append(Problem(file=file_name, message=f"unknown keys {sorted(unknown)}; "
                                                        f"allowed: {sorted(_TOP_KEYS)}"))
    entries = raw.get("levels")
    if not isinstance(entries, list) or not entries:
        return None, [*problems, Problem(file=file_name, message="'levels' must be a non-empty list of levels, "
                                                                 "lowest first")]
    levels: list[RiskLevel] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        found = _check_level(file_name, number, entry, seen)
        problems.extend(found)
        if not found:
            levels.append(RiskLevel(entry["code"], entry["label"].strip(), entry["label_en"].strip(), entry["colour"],
                                    bool(entry.get("high", False))))
    if problems:
        return None, problems
    return RiskScale(tuple(levels)), []


def _check_level(file_name: str, number: int, entry: Any, seen: set[str]) -> list[Problem]:
    """Check one level of a levels file; add its code to `seen`."""
    where = f"levels[{number}]"
    if not isinstance(entry, dict):
        return [Problem(file=file_name, element_id=where, message=f"level {number} must be an object with code, "
                                                                  "label, label_en and colour")]
    code = entry.get("code")
    if isinstance(code, str) and _CODE.match(code):
        where = code
    problems = []
    unknown = set(entry) - _LEVEL_KEYS
    if unknown:
        problems.append(Problem(file=file_name, element_id=where, message=f"level {number}: unknown keys "
                                                                          f"{sorted(unknown)}; allowed: "
                                                                          f"{sorted(_LEVEL_KEYS)}"))
    if not isinstance(code, str) or not _CODE.match(code):
        problems.append(Problem(file=file_name, element_id=where, message=f"level {number}: 'code' must be an "
                                                                          "identifier (lowercase letters, digits "
                                                                          f"and _, at most 32), got {code!r}"))
    elif code in seen:
        problems.append(Problem(file=file_name, element_id=where, message=f"level {number}: 'code' {code!r} is "
                                                                          "listed twice"))
    else:
        seen.add(code)
    for key in ("label", "label_en"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            problems.append(Problem(file=file_name, element_id=where, message=f"level {number}: '{key}' must be "
                                                                              "a non-empty text"))
    colour = entry.get("colour")
    if not isinstance(colour, str) or not _COLOUR.match(colour):
        problems.append(Problem(file=file_name, element_id=where, message=f"level {number}: 'colour' must be a "
                                                                          f"colour like #166534, got {colour!r}"))
    if "high" in entry and not isinstance(entry["high"], bool):
        problems.append(Problem(file=file_name, element_id=where, message=f"level {number}: 'high' must be true "
                                                                          "or false"))
    return problems


def current_levels(session: Session) -> RiskScale:
    """Return the scale of the newest deployed levels file (the shipped scale when none is deployed)."""
    definition_id = session.execute(
        select(Definition.id).where(Definition.kind == LEVELS_KIND).order_by(Definition.id.desc()).limit(1)
    ).scalar_one_or_none()
    if definition_id is None:
        return SHIPPED
    cache_key = (str(session.get_bind().engine.url), definition_id)
    cached = _SCALE_CACHE.get(cache_key)
    if cached is not None:
        return cached
    row = session.execute(select(Definition.file_name, Definition.source)
                          .where(Definition.id == definition_id)).one()
    scale, _problems = parse_levels(row.file_name, row.source.encode("utf-8"))
    # Deploy refuses invalid files, so this is only a safety net: never run without a scale.
    cached = RiskScale((scale or SHIPPED).levels, definition_id)
    _SCALE_CACHE[cache_key] = cached
    return cached


def rerank_open_tasks(session: Session, scale: RiskScale) -> None:
    """Give every open task the rank of its case's level in `scale` (after a new scale is deployed)."""
    session.flush()  # nothing pending may be lost when the loaded rows are expired below
    for rank, code in enumerate(scale.codes, start=1):
        session.execute(
            update(OpenTask).where(OpenTask.risk_rank != rank,
                                   OpenTask.case_id.in_(select(Case.id).where(Case.risk_level == code)))
            .values(risk_rank=rank), execution_options={"synchronize_session": False})
    unranked = select(Case.id).where(Case.risk_level.is_(None) | Case.risk_level.not_in(scale.codes))
    session.execute(
        update(OpenTask).where(OpenTask.risk_rank != 0, OpenTask.case_id.in_(unranked)).values(risk_rank=0),
        execution_options={"synchronize_session": False})
    session.expire_all()  # loaded open tasks hold their old rank


def check_level_outputs(
    decisions: Mapping[str, etree._ElementTree], scale: RiskScale, scale_file: str
) -> list[Problem]:
    """Refuse DMN rules whose level output (`computed_level`, `risk_level`) is a level not in the scale.

    Only literal outputs can be checked here; an expression is left to the review form at run time.
    """
    problems = []
    for file_name, tree in sorted(decisions.items()):
        for decision in tree.getroot().iterfind("{*}decision"):
            table = decision.find("{*}decisionTable")
            if table is None:
                continue
            outputs = [output.get("name") or "" for output in table.iterfind("{*}output")]
            for rule in table.iterfind("{*}rule"):
                for name, entry in zip(outputs, rule.iterfind("{*}outputEntry"), strict=False):
                    value = _literal(entry.findtext("{*}text"))
                    if name in LEVEL_OUTPUTS and isinstance(value, str) and value not in scale.codes:
                        problems.append(Problem(
                            file=file_name, element_id=rule.get("id"),
                            line=rule.sourceline if isinstance(rule.sourceline, int) else None,
                            message=f"decision {decision.get('id')!r}, rule {rule.get('id')!r}: output {name!r} "
                                    f"is {value!r}, which is not a level of the risk scale ({scale_file}: "
                                    f"{', '.join(scale.codes)})",
                        ))
    return problems


def _literal(text: str | None) -> object:
    try:
        return ast.literal_eval((text or "").strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def forget_cached_scales(definition_ids: set[int] | None = None) -> None:
    """Drop cached scales: all of them, or those of some definition ids."""
    for cache_key in [k for k in _SCALE_CACHE if definition_ids is None or k[1] in definition_ids]:
        del _SCALE_CACHE[cache_key]


_SCALE_CACHE: dict[tuple[str, int], RiskScale] = {}
