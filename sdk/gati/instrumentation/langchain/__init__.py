"""LangChain instrumentation (`pip install gati[langchain]`): `observe.init()` attaches the
handler to every run; `observe.get_callbacks()` returns it for explicit use."""

from gati.instrumentation.langchain.auto_inject import disable_auto_injection, enable_auto_injection
from gati.instrumentation.langchain.callback import GatiLangChainCallback, get_gati_callbacks

__all__ = ["enable_auto_injection", "disable_auto_injection", "GatiLangChainCallback", "get_gati_callbacks"]
