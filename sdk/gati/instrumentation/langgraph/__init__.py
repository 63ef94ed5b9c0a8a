"""LangGraph instrumentation (`pip install gati[langchain]`): graphs run through LangChain's
callbacks, so the LangChain handler records each graph (`agent_start`, `node_execution` per
node, `agent_end`) and the LLM and tool calls inside its nodes."""

from gati.instrumentation.langgraph.auto_inject import instrument_langgraph

__all__ = ["instrument_langgraph"]
