"""`instrument_langgraph()`, as gati 0.0.3 named it."""

import importlib.util


def instrument_langgraph():
    """True when LangGraph is installed and its graphs are recorded (through LangChain's hook)."""
    try:
        if importlib.util.find_spec("langgraph") is None:
            return False
        from gati.instrumentation.langchain import enable_auto_injection
        return enable_auto_injection()
    except Exception:  # noqa: BLE001
        return False
