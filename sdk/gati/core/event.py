"""gati 0.0.3's event classes, for `observe.track_event(...)`.

    from gati.core.event import Event
    observe.track_event(Event(event_type="custom_metric", data={"value": 0.85}))

An event is sent in the backend's shape: its `data`, plus every field of the class that was
given a value (`tokens_in`, `cost`, `latency_ms`, ...), so nothing is lost.
"""

import dataclasses
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Optional

__all__ = ["Event", "LLMCallEvent", "ToolCallEvent", "AgentStartEvent", "AgentEndEvent", "NodeExecutionEvent",
           "StepEvent", "generate_run_id", "generate_run_name"]


def generate_run_id(agent_name: str = "") -> str:
    """A new run id (a UUID)."""
    return str(uuid.uuid4())


def generate_run_name(agent_name: str = "", run_number: Optional[int] = None) -> str:
    """`run N` for a given number; otherwise `temp_…`, which the backend numbers itself."""
    return f"run {run_number}" if run_number is not None else f"temp_{uuid.uuid4()}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Event:
    """One thing an agent did."""
    event_type: str = ""
    run_id: str = ""
    run_name: str = ""
    timestamp: str = field(default="")
    agent_name: str = ""
    event_id: str = field(default="")
    parent_event_id: Optional[str] = field(default=None)
    previous_event_id: Optional[str] = field(default=None)
    data: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.timestamp:
            self.timestamp = _now()
        if not self.event_id:
            self.event_id = str(uuid.uuid4())

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)


@dataclass
class LLMCallEvent(Event):
    model: str = field(default="")
    prompt: str = field(default="")
    completion: str = field(default="")
    tokens_in: int = field(default=0)
    tokens_out: int = field(default=0)
    latency_ms: float = field(default=0.0)
    cost: float = field(default=0.0)
    system_prompt: str = field(default="")

    def __post_init__(self):
        super().__post_init__()
        self.event_type = "llm_call"
        if not self.data:
            self.data = {"model": self.model, "prompt": self.prompt, "completion": self.completion,
                         "tokens_in": self.tokens_in, "tokens_out": self.tokens_out, "latency_ms": self.latency_ms,
                         "cost": self.cost, "system_prompt": self.system_prompt}


@dataclass
class ToolCallEvent(Event):
    tool_name: str = field(default="")
    input: Dict[str, Any] = field(default_factory=dict)
    output: Dict[str, Any] = field(default_factory=dict)
    latency_ms: float = field(default=0.0)

    def __post_init__(self):
        super().__post_init__()
        self.event_type = "tool_call"
        if not self.data:
            self.data = {"tool_name": self.tool_name, "input": self.input, "output": self.output,
                         "latency_ms": self.latency_ms}


@dataclass
class AgentStartEvent(Event):
    input: Dict[str, Any] = field(default_factory=dict)
    metadata: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        self.event_type = "agent_start"
        if not self.data:
            self.data = {"input": self.input, "metadata": self.metadata}


@dataclass
class AgentEndEvent(Event):
    output: Dict[str, Any] = field(default_factory=dict)
    total_duration_ms: float = field(default=0.0)
    total_cost: float = field(default=0.0)

    def __post_init__(self):
        super().__post_init__()
        self.event_type = "agent_end"
        if not self.data:
            self.data = {"output": self.output, "total_duration_ms": self.total_duration_ms,
                         "total_cost": self.total_cost}


@dataclass
class NodeExecutionEvent(Event):
    node_name: str = field(default="")
    state_before: Dict[str, Any] = field(default_factory=dict)
    state_after: Dict[str, Any] = field(default_factory=dict)
    duration_ms: float = field(default=0.0)

    def __post_init__(self):
        super().__post_init__()
        self.event_type = "node_execution"
        if not self.data:
            self.data = {"node_name": self.node_name, "state_before": self.state_before,
                         "state_after": self.state_after, "duration_ms": self.duration_ms}


@dataclass
class StepEvent(Event):
    step_name: str = field(default="")
    input: Dict[str, Any] = field(default_factory=dict)
    output: Dict[str, Any] = field(default_factory=dict)
    duration_ms: float = field(default=0.0)
    metadata: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        self.event_type = "step"
        if not self.data:
            self.data = {"step_name": self.step_name, "input": self.input, "output": self.output,
                         "duration_ms": self.duration_ms, "metadata": self.metadata}


_BASE_FIELDS = {f.name for f in dataclasses.fields(Event)}


def to_backend(event: Any) -> Optional[Dict[str, Any]]:
    """The keyword arguments of `gati.observe._emit` for an Event (or a dict of its fields);
    None for anything else."""
    if isinstance(event, Event):
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        extra = {}
        for f in dataclasses.fields(event):
            if f.name in _BASE_FIELDS:
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if fields[f.name] != default:
                extra[f.name] = fields[f.name]
    elif isinstance(event, dict):
        fields = dict(event)
        extra = {k: v for k, v in fields.items() if k not in _BASE_FIELDS}
    else:
        return None
    data = fields.get("data")
    data = dict(data) if isinstance(data, dict) else ({"data": data} if data is not None else {})
    for key, value in extra.items():
        data.setdefault(key, value)
    return {
        "event_type": fields.get("event_type") or "event",
        "data": data,
        "run_id": fields.get("run_id") or None,
        "parent_event_id": fields.get("parent_event_id") or None,
        "event_id": fields.get("event_id") or None,
        "agent_name": fields.get("agent_name") or None,
        "run_name": fields.get("run_name") or None,
        "timestamp": fields.get("timestamp") or None,
        "previous_event_id": fields.get("previous_event_id") or None,
    }
