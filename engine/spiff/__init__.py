"""The one adapter to SpiffWorkflow: parsing, (de)serialization, sandboxed scripts and the clock.

Nothing else in Coordina imports SpiffWorkflow; the library's untyped surface stays here, behind
plain functions and a small `Run` class that the execution code drives. The package's modules:
`specs` parses BPMN and DMN and stores specs, `run` drives a workflow, `scripts` holds the clock the
library sees and the sandboxed script engine. Import from `engine.spiff`, not from them.
"""

from engine.spiff.run import FIRES_AFTER, ReadyTask, Run
from engine.spiff.scripts import SCRIPT_ENGINE, ScriptEffects, collect_effects, engine_time
from engine.spiff.specs import (
    SERIALIZER_VERSION,
    HumanTaskSpec,
    ParsedProcess,
    SpecBundle,
    evaluate_decision,
    parse_definitions,
    process_properties,
    spec_from_dict,
    spec_to_dict,
    start_event_id,
)

__all__ = [
    "FIRES_AFTER",
    "SCRIPT_ENGINE",
    "SERIALIZER_VERSION",
    "HumanTaskSpec",
    "ParsedProcess",
    "ReadyTask",
    "Run",
    "ScriptEffects",
    "SpecBundle",
    "collect_effects",
    "engine_time",
    "evaluate_decision",
    "parse_definitions",
    "process_properties",
    "spec_from_dict",
    "spec_to_dict",
    "start_event_id",
]
