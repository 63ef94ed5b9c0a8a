"""What `track_agent`, `track_tool` and `track_step` share: one wrapper for plain and async
functions that records the call and never changes what the function returns or raises."""

import functools
import inspect
import time
import uuid

from gati import observe as _observe

_MAX_DEPTH = 8
_MAX_REPR = 10_000


def decorator(kind, name, metadata=None, session_id=None):
    """`@track_x`, `@track_x()` and `@track_x(name=...)` all work."""
    if callable(name):
        return _wrap(kind, name, None, metadata, session_id)
    return lambda fn: _wrap(kind, fn, name, metadata, session_id)


def _wrap(kind, fn, name, metadata, session_id):
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            call = _Call.start(kind, fn, name, metadata, args, kwargs, session_id)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as e:
                call.finish(error=e)
                raise
            call.finish(result=result)
            return result
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        call = _Call.start(kind, fn, name, metadata, args, kwargs, session_id)
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            call.finish(error=e)
            raise
        call.finish(result=result)
        return result
    return wrapper


class _Call:
    """One call of a tracked function; every method swallows its own errors."""

    @classmethod
    def start(cls, kind, fn, name, metadata, args, kwargs, session_id=None):
        call = cls()
        call.kind = kind
        call.token = None
        try:
            call.name = name or getattr(fn, "__name__", "function")
            call.metadata = dict(metadata or {})
            call.input = arguments(fn, args, kwargs)
            call.started = time.monotonic()
            call.timestamp = _observe._now()
            call.event_id = str(uuid.uuid4())
            client = _observe._client
            outer = _observe._current.get()
            if kind == "agent":
                # Each agent call is a run of its own, as in gati 0.0.3, in the session it names,
                # else its caller's.
                session = _observe._session(session_id) or (outer.session_id if outer else None)
                call.frame = _observe._Frame(str(uuid.uuid4()), outer.parent_id if outer else None,
                                             _observe.unnamed_run(), call.name, session)
                _observe._emit("agent_start", {"name": call.name, "input": call.input, "metadata": call.metadata},
                               call.frame.run_id, call.frame.parent_id, event_id=call.event_id,
                               agent_name=call.name, run_name=call.frame.run_name, timestamp=call.timestamp,
                               session_id=session)
            else:
                call.frame = outer or _observe._Frame(client.session_run_id if client else None, None,
                                                      client.session_run_name if client else None, None)
            # Whatever happens inside is nested under this call's event.
            call.token = _observe._current.set(call.frame._replace(parent_id=call.event_id))
        except Exception:  # noqa: BLE001
            call.frame = None
        return call

    def finish(self, result=None, error=None):
        try:
            inner = _observe._current.get()
            if self.token is not None:
                _observe._current.reset(self.token)
            if self.frame is None or self.frame.run_id is None:
                return
            duration = round((time.monotonic() - self.started) * 1000, 3)
            run_name = inner.run_name if inner is not None else self.frame.run_name
            failure = {"type": type(error).__name__, "message": str(error)} if error is not None else None
            output = {"error": failure} if failure else value(result)
            status = {"status": "error", "error": failure} if failure else {"status": "completed"}
            if self.kind == "agent":
                data = {"name": self.name, "output": output, "total_duration_ms": duration, "duration_ms": duration,
                        **status}
                _observe._emit("agent_end", data, self.frame.run_id, self.event_id, agent_name=self.name,
                               run_name=run_name, session_id=self.frame.session_id)
                return
            if self.kind == "tool":
                event_type = "tool_call"
                data = {"tool_name": self.name, "input": self.input, "output": output, "latency_ms": duration,
                        "duration_ms": duration, **status}
            else:
                event_type = "step"
                data = {"step_name": self.name, "input": self.input, "output": output, "duration_ms": duration,
                        "metadata": self.metadata, **status}
            _observe._emit(event_type, data, self.frame.run_id, self.frame.parent_id, event_id=self.event_id,
                           run_name=run_name, timestamp=self.timestamp)
        except Exception:  # noqa: BLE001
            pass


def arguments(fn, args, kwargs):
    """The call's arguments by parameter name, as JSON values."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
        bound.apply_defaults()
        return {k: value(v) for k, v in bound.arguments.items()}
    except Exception:  # noqa: BLE001
        return {"args": [value(a) for a in args], "kwargs": {str(k): value(v) for k, v in kwargs.items()}}


def value(v, depth=0):
    """A JSON value standing for `v`: itself, its dict form, or its repr."""
    try:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if depth >= _MAX_DEPTH:
            return _repr(v)
        if isinstance(v, dict):
            return {str(k): value(x, depth + 1) for k, x in v.items()}
        if isinstance(v, (list, tuple, set, frozenset)):
            return [value(x, depth + 1) for x in v]
        for method in ("model_dump", "to_dict", "dict"):
            convert = getattr(v, method, None)
            if callable(convert) and not isinstance(v, type):
                try:
                    return value(convert(), depth + 1)
                except Exception:  # noqa: BLE001
                    pass
        return _repr(v)
    except Exception:  # noqa: BLE001
        return "<unrepresentable>"


def _repr(v):
    try:
        text = repr(v)
    except Exception:  # noqa: BLE001
        text = f"<{type(v).__name__}>"
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."
