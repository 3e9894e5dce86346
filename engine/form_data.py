"""Random answers that fit a form's JSON Schema, for generated case histories (the verifier, property tests).

Protocol-agnostic: nothing here knows a form by name. Required fields are always answered, the
others sometimes; a field whose options are risk levels prefers the history's target level; a
long checklist of yes/no indicators is ticked with the history's propensity. When the schema or
the form's cross-field checks refuse an answer, `reanswer` draws again only the fields named.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.forms import FormDefinition

CHECKLIST = 8  # a form with this many yes/no fields is a list of indicators (a risk assessment)


@dataclass(frozen=True)
class Leaning:
    """How a history answers: the level it aims at, and how often it ticks an indicator."""

    levels: tuple[str, ...] = ()  # the scale's codes, lowest first
    target: str | None = None
    propensity: float = 0.2


def options(prop: Mapping[str, Any]) -> list[Any]:
    """Return the values a field may take when it lists them (`oneOf` consts or `enum`), else []."""
    return [o["const"] for o in prop.get("oneOf", []) if isinstance(o, Mapping) and "const" in o] \
        or list(prop.get("enum", []))


def answers(form: FormDefinition, rng: random.Random, now: datetime, leaning: Leaning = Leaning()) -> dict[str, Any]:
    """Return answers to a form: every required field, each optional one with even odds."""
    properties = form.schema.get("properties", {})
    required = set(form.schema.get("required", []))
    checklist = _is_checklist(properties)
    return {name: value(prop, rng, now, leaning, checklist=checklist)
            for name, prop in properties.items() if name in required or rng.random() < 0.5}


def reanswer(
    form: FormDefinition, data: Mapping[str, Any], fields: Collection[str], rng: random.Random, now: datetime,
    leaning: Leaning = Leaning(), *, attempt: int = 0, refused: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Draw again the answers to `fields` (error paths such as 'a/b' name their first part); keep the rest.

    A refused choice among levels is drawn without the lean towards the target; later attempts fill
    lists completely more often, since checks tend to ask for every required item. With `refused`
    (kept by the caller across the attempts at one step), a choice is not drawn again once refused
    while others remain: a level below the computed one is given up after one try.
    """
    properties = form.schema.get("properties", {})
    checklist = _is_checklist(properties)
    redo = {path.split("/", 1)[0] for path in fields}
    fresh = dict(data)
    for name in redo:
        prop = properties.get(name)
        if prop is None:  # an unknown field or a whole-form error: start again
            return answers(form, rng, now, leaning)
        if refused is not None and (choices := options(prop)):
            tried = refused.setdefault(name, [])
            tried.append(data.get(name))
            remaining = [choice for choice in choices if choice not in tried]
            if remaining:
                fresh[name] = rng.choice(remaining)
                continue
        fresh[name] = value(prop, rng, now, Leaning(leaning.levels, None, leaning.propensity), checklist=checklist,
                            fill=min(0.5 + attempt / 10, 0.95))
    return fresh


def value(
    prop: Mapping[str, Any], rng: random.Random, now: datetime, leaning: Leaning = Leaning(), *,
    checklist: bool = False, fill: float = 0.5,
) -> Any:
    """Return one random value valid for a field's schema."""
    kind = prop.get("type")
    choices = options(prop)
    if kind == "array":
        return _array(prop, rng, fill, now)
    if choices:
        if leaning.target is not None and leaning.target in choices and \
                sum(c in leaning.levels for c in choices) >= 2 and rng.random() < 0.85:
            return leaning.target
        return rng.choice(choices)
    if kind == "boolean":
        return rng.random() < (leaning.propensity if checklist else 0.5)
    if kind in ("integer", "number"):
        low = int(prop.get("minimum", 0))
        high = int(prop.get("maximum", max(low, 0) + 5))
        return rng.randint(low, max(low, high))
    if prop.get("format") == "date":
        return (now - timedelta(days=rng.randint(0, 2))).date().isoformat()
    if prop.get("format") == "date-time":
        return (now - timedelta(minutes=rng.randint(0, 600))).isoformat()
    if kind == "object":
        return {name: value(sub, rng, now, leaning) for name, sub in prop.get("properties", {}).items()
                if name in set(prop.get("required", []))}
    text = rng.choice(("Texto de prueba generado.", "Seguimiento sin novedades.", "Se informa a la víctima."))
    low, high = int(prop.get("minLength", 1)), int(prop.get("maxLength", 200))
    return (text * (1 + low // len(text)))[:max(low, min(high, len(text)))]


def _array(prop: Mapping[str, Any], rng: random.Random, fill: float, now: datetime) -> list[Any]:
    items = prop.get("items", {})
    choices = options(items) if isinstance(items, Mapping) else []
    low, high = int(prop.get("minItems", 0)), prop.get("maxItems")
    if not choices:
        return [value(items, rng, now) for _ in range(low)] if isinstance(items, Mapping) else []
    picked = list(choices) if rng.random() < fill else [c for c in choices if rng.random() < 0.5]
    if len(picked) < low:
        picked = list(choices[:low])
    return picked[: int(high)] if high is not None else picked


def _is_checklist(properties: Mapping[str, Any]) -> bool:
    return sum(1 for p in properties.values() if isinstance(p, Mapping) and p.get("type") == "boolean") >= CHECKLIST
