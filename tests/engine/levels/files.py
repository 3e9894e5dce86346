"""Files for the risk-scale tests: a process that computes a level, has it reviewed and records it."""

from __future__ import annotations

import json
from pathlib import Path

from engine.definitions import SourceFile

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
SHIPPED_SCALE = ROOT / "processes" / "risk.levels.json"
# The 2025 split of *bajo*: without and with police protection measures.
SPLIT_SCALE = [
    {"code": "no_apreciado", "label": "No apreciado", "label_en": "Not appreciated", "colour": "#4b5563"},
    {"code": "bajo_sin_medidas", "label": "Bajo sin medidas", "label_en": "Low, no measures", "colour": "#166534"},
    {"code": "bajo_con_medidas", "label": "Bajo con medidas", "label_en": "Low, with measures", "colour": "#3f6212"},
    {"code": "medio", "label": "Medio", "label_en": "Medium", "colour": "#92400e"},
    {"code": "alto", "label": "Alto", "label_en": "High", "colour": "#b91c1c", "high": True},
    {"code": "extremo", "label": "Extremo", "label_en": "Extreme", "colour": "#7f1d1d", "high": True},
]
# Rules of the `test_level` table: (rule id, score entry, level).
SHIPPED_RULES = [("level_none", "< 2", "no_apreciado"), ("level_low", "2 <= ? < 8", "bajo"),
                 ("level_medium", "8 <= ? < 18", "medio"), ("level_high", ">= 18", "alto")]
SPLIT_RULES = [("level_none", "< 2", "no_apreciado"), ("level_low_plain", "2 <= ? < 5", "bajo_sin_medidas"),
               ("level_low_measures", "5 <= ? < 8", "bajo_con_medidas"), ("level_medium", "8 <= ? < 18", "medio"),
               ("level_high", ">= 18", "alto")]


def level_table(rules: list[tuple[str, str, str]]) -> SourceFile:
    """Return the DMN `test_level`: the level (`computed_level`) from the score, one rule per band."""
    body = "".join(
        f'<rule id="{rule}"><inputEntry id="{rule}_in"><text>{entry.replace("<", "&lt;").replace(">", "&gt;")}'
        f'</text></inputEntry><outputEntry id="{rule}_out"><text>"{level}"</text></outputEntry></rule>\n'
        for rule, entry, level in rules
    )
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="test_level_definitions" name="Nivel"
  namespace="https://coordina.example/dmn">
  <decision id="test_level" name="Nivel de prueba">
    <decisionTable id="test_level_table">
      <input id="score_in" label="Puntuación"><inputExpression id="score_in_expression"><text>risk_score</text>
      </inputExpression></input>
      <output id="level_out" label="Nivel" name="computed_level" />
{body}    </decisionTable>
  </decision>
</definitions>
"""
    return SourceFile("test_level.dmn", text.encode("utf-8"))


def scale_file(levels: list[dict[str, object]], name: str = "risk.levels.json") -> SourceFile:
    """Return a levels file with these levels."""
    return SourceFile(name, json.dumps({"levels": levels}, ensure_ascii=False).encode("utf-8"))


def shipped_scale() -> SourceFile:
    """Return the shipped processes/risk.levels.json."""
    return SourceFile(SHIPPED_SCALE.name, SHIPPED_SCALE.read_bytes())


def shipped_table_split() -> SourceFile:
    """Return the shipped risk_level table as a designer splits it: scores under 8 give bajo_con_medidas."""
    path = ROOT / "processes" / "risk_level.dmn"
    text = path.read_text(encoding="utf-8")
    assert '<text>"bajo"</text>' in text
    return SourceFile(path.name, text.replace('<text>"bajo"</text>', '<text>"bajo_con_medidas"</text>').encode("utf-8"))


def review_files(rules: list[tuple[str, str, str]] = SHIPPED_RULES) -> list[SourceFile]:
    """Return the review process, its table, and the forms it uses (the real risk_review, the test note)."""
    return [
        SourceFile("level_review.bpmn", (HERE / "level_review.bpmn").read_bytes()),
        level_table(rules),
        SourceFile("risk_review.json", (ROOT / "forms" / "risk_review.json").read_bytes()),
        SourceFile("note.json", (HERE.parent / "forms" / "note.json").read_bytes()),
    ]
