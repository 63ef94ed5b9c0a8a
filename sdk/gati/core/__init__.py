"""gati 0.0.3's core names: event classes, run context and configuration."""

from gati.core.config import Config, config
from gati.core.context import (RunContextManager, create_child_run, get_current_run_id, get_current_run_name,
                               run_context, set_run_name)
from gati.core.event import (AgentEndEvent, AgentStartEvent, Event, LLMCallEvent, NodeExecutionEvent, StepEvent,
                             ToolCallEvent, generate_run_id, generate_run_name)

__all__ = ["Event", "LLMCallEvent", "ToolCallEvent", "AgentStartEvent", "AgentEndEvent", "NodeExecutionEvent",
           "StepEvent", "generate_run_id", "generate_run_name", "Config", "config", "RunContextManager",
           "get_current_run_id", "get_current_run_name", "set_run_name", "create_child_run", "run_context"]
