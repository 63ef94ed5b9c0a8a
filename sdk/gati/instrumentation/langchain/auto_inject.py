"""Attaches the gati handler to every LangChain run, through LangChain's own configure hook
(the mechanism its tracers use): no method is patched, and a handler passed explicitly as
`callbacks=observe.get_callbacks()` is the same object, so nothing is recorded twice."""

import contextvars

from gati.instrumentation.langchain.callback import LANGCHAIN_AVAILABLE, get_gati_callbacks

_hook = None


def enable_auto_injection():
    """True once every LangChain run is recorded; False without langchain-core."""
    global _hook
    if not LANGCHAIN_AVAILABLE:
        return False
    if _hook is not None:
        return True
    from langchain_core.tracers.context import register_configure_hook
    (handler,) = get_gati_callbacks()
    # A default, not a set(): every thread and task sees it.
    _hook = contextvars.ContextVar("gati_langchain_handler", default=handler)
    register_configure_hook(_hook, inheritable=True)
    return True


def disable_auto_injection():
    """Stops attaching the handler to runs that do not pass it explicitly."""
    global _hook
    if _hook is None:
        return
    try:
        from langchain_core.tracers import context
        context._configure_hooks[:] = [h for h in context._configure_hooks if h[0] is not _hook]
    except Exception:  # noqa: BLE001 - LangChain's list of hooks is not public API
        _hook.set(None)
    _hook = None
