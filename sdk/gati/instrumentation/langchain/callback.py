"""A LangChain callback handler that records LLM calls, tool calls, agents and LangGraph graphs.

What it records, in gati 0.0.3's event shapes:
- `llm_call`: model, prompt, system_prompt, completion, tokens_in, tokens_out (and their sum,
  `tokens`), cost when the model's price is known, latency_ms, status, error.
- `tool_call`: tool_name, input, output, latency_ms, status, error.
- a LangGraph graph (or an agent chain): `agent_start`, one `node_execution` per node (state
  before and after, duration, status), `agent_end`. A graph called outside any run is a run.

Events of one LangChain call tree belong to the gati run that was current when it started (or
the session's run), nested under the event of their nearest recorded ancestor. Event ids are
derived from LangChain's run ids, so two handlers on the same call record each event once.
Every callback swallows its own errors.
"""

import threading
import time
import uuid

from gati import observe as _observe
from gati.decorators._tracking import value
from gati.utils.cost_calculator import price

try:
    from langchain_core.callbacks import BaseCallbackHandler
    LANGCHAIN_AVAILABLE = True
except ImportError:  # the `langchain` extra is not installed
    BaseCallbackHandler = object
    LANGCHAIN_AVAILABLE = False

__all__ = ["GatiLangChainCallback", "get_gati_callbacks", "LANGCHAIN_AVAILABLE"]

_NAMESPACE = uuid.UUID("8d5e7b8e-4a53-4f57-9a54-3c6f1f0e2a11")


def _event_id(lc_run_id, what):
    return str(uuid.uuid5(_NAMESPACE, f"{lc_run_id}:{what}"))


class _Record:
    """What is known about one LangChain run while it is open."""

    __slots__ = ("run_id", "agent_name", "run_name", "parent_event", "children_parent", "event_id", "started",
                 "timestamp", "name", "inputs", "kind", "graph", "top", "step", "model", "prompt", "system")


class GatiLangChainCallback(BaseCallbackHandler):
    """Records LangChain runs as gati events; pass it as `callbacks=[...]` or let
    `observe.init(auto_inject=True)` attach it to every run."""

    run_inline = True  # called in the caller's context, so the current gati run is visible
    raise_error = False

    def __init__(self):
        if LANGCHAIN_AVAILABLE:
            super().__init__()
        self._records = {}
        self._lock = threading.Lock()

    # ---- bookkeeping -------------------------------------------------------------------------

    def _open(self, kind, run_id, parent_run_id, name, inputs=None, tags=None, metadata=None):
        record = _Record()
        record.kind = kind
        record.name = name
        record.inputs = inputs
        record.graph = False
        record.started = time.monotonic()
        record.timestamp = _observe._now()
        record.event_id = _event_id(run_id, kind)
        record.step = (metadata or {}).get("langgraph_step")
        record.model = record.prompt = record.system = None
        with self._lock:
            parent = self._records.get(str(parent_run_id)) if parent_run_id else None
        if kind == "chain" and parent is not None and _is_graph_node(name, tags, metadata):
            self._promote(parent)
            record.kind = "node"
        if parent is not None:
            record.run_id, record.agent_name, record.run_name = parent.run_id, parent.agent_name, parent.run_name
            record.parent_event = parent.children_parent
            record.top = False
        else:
            frame = _observe._current.get()
            client = _observe._client
            record.top = frame is None  # outside any gati run: a graph here becomes a run of its own
            if frame is not None:
                record.run_id, record.agent_name, record.run_name = frame.run_id, frame.agent_name, frame.run_name
                record.parent_event = frame.parent_id
            else:
                record.run_id = client.session_run_id if client else None
                record.run_name = client.session_run_name if client else None
                record.agent_name = record.parent_event = None
        record.children_parent = record.event_id if record.kind == "node" else record.parent_event
        with self._lock:
            self._records[str(run_id)] = record
        if kind == "chain" and _is_agent_chain(name):
            self._promote(record)
        return record

    def _close(self, run_id):
        with self._lock:
            return self._records.pop(str(run_id), None)

    def _promote(self, record):
        """Records a chain as an agent (a graph or an agent executor): `agent_start` now."""
        if record.graph:
            return
        record.graph = True
        if record.top:
            record.run_id, record.run_name = str(uuid.uuid4()), _observe.unnamed_run()
        record.children_parent = record.event_id
        self._emit("agent_start", record, {"name": record.name, "input": value(record.inputs),
                                           "metadata": {"runnable": record.name, "auto_tracked": True}},
                   event_id=record.event_id, parent=record.parent_event)

    def _emit(self, event_type, record, data, event_id, parent, timestamp=None):
        if record.run_id is None:
            return
        _observe._emit(event_type, data, record.run_id, parent, event_id=event_id, agent_name=record.agent_name,
                       run_name=record.run_name, timestamp=timestamp)

    @staticmethod
    def _duration(record):
        return round((time.monotonic() - record.started) * 1000, 3)

    # ---- LLMs --------------------------------------------------------------------------------

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, tags=None, metadata=None,
                            **kwargs):
        try:
            record = self._open("llm", run_id, parent_run_id, _name(serialized, kwargs), tags=tags,
                                metadata=metadata)
            record.system, record.prompt = _split_messages(messages)
            record.model = _model(None, kwargs.get("invocation_params"), metadata, serialized, kwargs)
        except Exception:  # noqa: BLE001
            pass

    def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):
        try:
            record = self._open("llm", run_id, parent_run_id, _name(serialized, kwargs), tags=tags,
                                metadata=metadata)
            record.system, record.prompt = "", "\n\n".join(str(p) for p in prompts or [])
            record.model = _model(None, kwargs.get("invocation_params"), metadata, serialized, kwargs)
        except Exception:  # noqa: BLE001
            pass

    def on_llm_end(self, response, *, run_id, parent_run_id=None, **kwargs):
        try:
            record = self._close(run_id)
            if record is None:
                return
            tokens_in, tokens_out = _tokens(response)
            model = _model(response, None, None, None, None) or record.model or record.name
            duration = self._duration(record)
            data = {"model": model, "prompt": record.prompt, "system_prompt": record.system,
                    "completion": _completion(response), "tokens_in": tokens_in, "tokens_out": tokens_out,
                    "tokens": tokens_in + tokens_out, "latency_ms": duration, "duration_ms": duration,
                    "status": "completed", "lc_run_id": str(run_id),
                    "parent_run_id": str(parent_run_id) if parent_run_id else None}
            cost = price(model, tokens_in, tokens_out)
            if cost is not None:
                data["cost"] = cost
            self._emit("llm_call", record, data, record.event_id, record.parent_event, record.timestamp)
        except Exception:  # noqa: BLE001
            pass

    def on_llm_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        try:
            record = self._close(run_id)
            if record is None:
                return
            duration = self._duration(record)
            self._emit("llm_call", record, {
                "model": record.model or record.name, "prompt": record.prompt, "system_prompt": record.system,
                "latency_ms": duration, "duration_ms": duration, "status": "error", "error": _error(error),
                "lc_run_id": str(run_id)}, record.event_id, record.parent_event, record.timestamp)
        except Exception:  # noqa: BLE001
            pass

    # ---- tools -------------------------------------------------------------------------------

    def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, tags=None, metadata=None,
                      inputs=None, **kwargs):
        try:
            self._open("tool", run_id, parent_run_id, _name(serialized, kwargs),
                       inputs if inputs is not None else input_str, tags=tags, metadata=metadata)
        except Exception:  # noqa: BLE001
            pass

    def on_tool_end(self, output, *, run_id, parent_run_id=None, **kwargs):
        self._tool_done(run_id, {"output": value(getattr(output, "content", output)), "status": "completed"})

    def on_tool_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        failure = _error(error)
        self._tool_done(run_id, {"output": {"error": failure}, "status": "error", "error": failure})

    def _tool_done(self, run_id, outcome):
        try:
            record = self._close(run_id)
            if record is None:
                return
            duration = self._duration(record)
            data = {"tool_name": record.name, "input": value(record.inputs), **outcome, "latency_ms": duration,
                    "duration_ms": duration}
            self._emit("tool_call", record, data, record.event_id, record.parent_event, record.timestamp)
        except Exception:  # noqa: BLE001
            pass

    # ---- chains, agents, LangGraph graphs and nodes ------------------------------------------

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):
        try:
            self._open("chain", run_id, parent_run_id, _name(serialized, kwargs), inputs, tags, metadata)
        except Exception:  # noqa: BLE001
            pass

    def on_chain_end(self, outputs, *, run_id, parent_run_id=None, **kwargs):
        self._chain_done(run_id, outputs, None)

    def on_chain_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self._chain_done(run_id, None, error)

    def _chain_done(self, run_id, outputs, error):
        try:
            record = self._close(run_id)
            if record is None or (record.kind != "node" and not record.graph):
                return
            duration = self._duration(record)
            status = {"status": "error", "error": _error(error)} if error is not None else {"status": "completed"}
            if record.kind == "node":
                data = {"node_name": record.name, "state_before": value(record.inputs),
                        "state_after": value(outputs) if error is None else {}, "duration_ms": duration,
                        "langgraph_step": record.step, **status}
                self._emit("node_execution", record, data, record.event_id, record.parent_event, record.timestamp)
            if record.graph:
                data = {"name": record.name, "output": value(outputs) if error is None else {"error": _error(error)},
                        "total_duration_ms": duration, "duration_ms": duration, **status}
                self._emit("agent_end", record, data, _event_id(run_id, "end"), record.event_id)
        except Exception:  # noqa: BLE001
            pass


def _is_graph_node(name, tags, metadata):
    """A LangGraph node's own run: tagged `graph:step:N` and named after its node."""
    metadata = metadata or {}
    return any(str(t).startswith("graph:step:") for t in tags or ()) and metadata.get("langgraph_node") == name


def _is_agent_chain(name):
    return "agentexecutor" in str(name or "").replace("_", "").lower()


def _name(serialized, kwargs):
    name = (kwargs or {}).get("name")
    if not name and isinstance(serialized, dict):
        name = serialized.get("name")
        ids = serialized.get("id")
        if not name and isinstance(ids, list) and ids:
            name = ids[-1]
    return str(name or "runnable")


def _model(response, invocation_params, metadata, serialized, kwargs):
    """The model's name, from the response, the call's parameters or LangChain's metadata."""
    candidates = []
    if response is not None:
        llm_output = getattr(response, "llm_output", None) or {}
        if isinstance(llm_output, dict):
            candidates += [llm_output.get("model_name"), llm_output.get("model")]
        generation = _first_generation(response)
        message = getattr(generation, "message", None)
        meta = getattr(message, "response_metadata", None) or {}
        if isinstance(meta, dict):
            candidates += [meta.get("model_name"), meta.get("model")]
    if isinstance(invocation_params, dict):
        candidates += [invocation_params.get("model_name"), invocation_params.get("model")]
    if isinstance(metadata, dict):
        candidates.append(metadata.get("ls_model_name"))
    if serialized is not None or kwargs is not None:
        candidates.append(_name(serialized, kwargs or {}))
    return next((str(c) for c in candidates if c), None)


def _first_generation(response):
    generations = getattr(response, "generations", None)
    if isinstance(generations, list) and generations and isinstance(generations[0], list) and generations[0]:
        return generations[0][0]
    return None


def _tokens(response):
    """(input, output) tokens: the message's usage_metadata, else the provider's token_usage."""
    generation = _first_generation(response)
    usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
    if isinstance(usage, dict) and (usage.get("input_tokens") or usage.get("output_tokens")):
        return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    sources = []
    llm_output = getattr(response, "llm_output", None)
    if isinstance(llm_output, dict):
        sources += [llm_output.get("token_usage"), llm_output.get("usage")]
    info = getattr(generation, "generation_info", None)
    if isinstance(info, dict):
        sources += [info.get("token_usage"), info.get("usage"), info]
    for usage in sources:
        if isinstance(usage, dict):
            tokens_in = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
            tokens_out = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
            if tokens_in or tokens_out:
                return tokens_in, tokens_out
    return 0, 0


def _completion(response):
    generation = _first_generation(response)
    text = getattr(generation, "text", None)
    if isinstance(text, str) and text:
        return text
    content = getattr(getattr(generation, "message", None), "content", None)
    return content if isinstance(content, str) else value(content)


def _split_messages(messages):
    """(system prompt, the rest as `Type: content` lines) of a chat model's input."""
    system, rest = [], []
    for conversation in messages or []:
        for message in conversation or []:
            kind = getattr(message, "type", "")
            content = getattr(message, "content", message)
            content = content if isinstance(content, str) else str(value(content))
            if kind == "system":
                system.append(content)
            else:
                label = {"human": "Human", "ai": "AI", "tool": "Tool"}.get(kind, str(kind).title())
                rest.append(f"{label}: {content}")
    return "\n\n".join(system), "\n".join(rest)


def _error(error):
    return {"type": type(error).__name__, "message": str(error)}


_shared = None


def get_gati_callbacks():
    """[the handler]: one instance shared with auto-injection, so a run is never recorded twice."""
    global _shared
    if not LANGCHAIN_AVAILABLE:
        return []
    if _shared is None:
        _shared = GatiLangChainCallback()
    return [_shared]
