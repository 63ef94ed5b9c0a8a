"""Framework instrumentation: `gati.instrumentation.langchain` and `gati.instrumentation.langgraph`."""
