"""Record what an agent does and send it to the gati backend.

    from gati import observe
    observe.init(name="my-agent")      # backend: GATI_BACKEND_URL, or http://127.0.0.1:8000

    @observe.run                       # or: with observe.run("name"):
    def handle(request):
        with observe.step("retrieve"):  # nested under the run
            ...
        observe.event("llm_call", {"model": "gpt-x", "tokens": 120})

A conversation of several runs is a session: `observe.init(..., session_id="chat-42")` puts every
run in it, `observe.run("turn", session_id="chat-42")` (or `@track_agent(session_id=...)`,
`run_context(session_id=...)`) one run; a run nested in another is in its session.

The API of gati 0.0.3 works too: `observe.init(name=..., backend_url=..., batch_size=...,
flush_interval=..., auto_inject=..., telemetry=...)`, `observe.track_event(Event(...))`,
`observe.get_callbacks()`, and the decorators in `gati.decorators`.

Events go into a bounded buffer and are sent in batches by a background thread; a batch never
exceeds what the backend accepts (16 MiB, 1000 events). Nothing here raises into the caller's
code, and nothing blocks it longer than `timeout` seconds: when the backend is slow or down,
events that cannot be kept are dropped, counted, and reported once at exit.
"""

import atexit
import collections
import contextvars
import functools
import inspect
import json
import os
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import deque
from datetime import datetime, timezone

__all__ = ["init", "run", "step", "event", "flush", "dropped", "shutdown", "track_event", "get_callbacks",
           "auto_instrument", "Observe", "observe"]

DEFAULT_BACKEND_URL = "http://127.0.0.1:8000"
# What the backend accepts in one POST /api/events; larger batches are answered with 413.
MAX_BATCH_BYTES = 16 * 1024 * 1024
MAX_BATCH_EVENTS = 1000
_ENVELOPE = (b'{"events":[', b"]}")
# The backend refuses ids longer than this, and a batch with one bad event is refused whole.
_MAX_ID_LEN = 256

# Where an event is recorded: the run, the event it nests under, the run's names, and the session
# (conversation) the run is part of, if any.
_Frame = collections.namedtuple("_Frame", "run_id parent_id run_name agent_name session_id", defaults=(None,))

# The innermost open run and span, per thread and per asyncio task.
_current = contextvars.ContextVar("gati_current", default=None)


class _Client:
    def __init__(self, backend_url, agent_name, timeout, flush_interval, batch_size, max_buffer, session_id=None):
        self.url = backend_url.rstrip("/") + "/api/events"
        self.agent_name = agent_name
        # The session of every run that names none.
        self.session_id = session_id
        self.timeout = timeout
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self.max_batch_bytes = MAX_BATCH_BYTES
        # Events recorded outside any run belong to this one run, as in gati 0.0.3.
        self.session_run_id = str(uuid.uuid4())
        self.session_run_name = unnamed_run()
        self.buffer = deque()
        self.in_flight = 0
        self.flush_wanted = False
        self.stopping = False
        self.dropped = 0
        self.last_error = None
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._loop, name="gati-observe", daemon=True)
        self.thread.start()

    def add(self, event):
        with self.changed:
            if len(self.buffer) + self.in_flight >= self.max_buffer:
                self.dropped += 1
                return
            self.buffer.append(event)
            if len(self.buffer) >= self.batch_size:
                self.changed.notify_all()

    def _loop(self):
        while True:
            with self.changed:
                self.changed.wait_for(
                    lambda: self.stopping or self.flush_wanted or len(self.buffer) >= self.batch_size,
                    timeout=self.flush_interval)
                self.flush_wanted = False
                stopping = self.stopping
            self._send_all()
            if stopping:
                return

    def _next_batch(self):
        """Takes the next batch off the buffer: at most `batch_size` events whose request body fits
        `max_batch_bytes`. An event too large to fit any batch is dropped here and counted."""
        batch, parts, size = [], [], len(_ENVELOPE[0]) + len(_ENVELOPE[1])
        with self.changed:
            while self.buffer and len(batch) < self.batch_size:
                event = self.buffer[0]
                part = _encode(event)
                if part is None or size + len(part) > self.max_batch_bytes - (1 if batch else 0):
                    if batch:
                        break
                    self.buffer.popleft()
                    self.dropped += 1
                    self.last_error = (f"an event of {len(part) if part else '?'} bytes cannot be sent: "
                                       f"the backend accepts at most {self.max_batch_bytes} bytes per batch")
                    continue
                self.buffer.popleft()
                batch.append(event)
                parts.append(part)
                size += len(part) + (1 if len(parts) > 1 else 0)
            self.in_flight = len(batch)
        return batch, parts

    def _send_all(self):
        """Sends batches until the buffer is empty or the backend fails; a failed batch is kept."""
        while True:
            batch, parts = self._next_batch()
            if not batch:
                return
            outcome = self._post(parts)
            with self.changed:
                self.in_flight = 0
                if outcome == "retry":
                    self.buffer.extendleft(reversed(batch))
                elif outcome == "too_large":
                    if len(batch) > 1:
                        # The backend's limit is lower than ours: from now on, send halves.
                        body = sum(map(len, parts)) + len(parts) + len(_ENVELOPE[0]) + len(_ENVELOPE[1])
                        largest = max(map(len, parts)) + len(_ENVELOPE[0]) + len(_ENVELOPE[1])
                        self.max_batch_bytes = max(largest, min(self.max_batch_bytes, body) // 2)
                        self.batch_size = max(1, len(batch) // 2)
                        self.buffer.extendleft(reversed(batch))
                    else:
                        self.dropped += 1
                elif outcome == "refused":
                    self.dropped += len(batch)
                self.changed.notify_all()
            if outcome == "retry":
                return

    def _post(self, parts):
        """'sent', 'retry' (backend unreachable or failing), 'too_large' (413) or 'refused'."""
        body = _ENVELOPE[0] + b",".join(parts) + _ENVELOPE[1]
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
            return "sent"
        except urllib.error.HTTPError as e:
            detail = f"HTTP {e.code} {_read(e)[:200]!r}"
            if e.code == 413:
                self.last_error = f"the backend refused a batch of {len(body)} bytes as too large: {detail}"
                return "too_large"
            if 400 <= e.code < 500:
                # The backend refused the batch itself: sending it again cannot help.
                self.last_error = f"the backend refused a batch: {detail}"
                return "refused"
            self.last_error = detail
            return "retry"
        except Exception as e:  # noqa: BLE001 - the client must never raise into user code
            self.last_error = str(e) or type(e).__name__
            return "retry"

    def flush(self, timeout):
        """Sends what is buffered; True if everything was sent within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.buffer or self.in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.flush_wanted = True
                self.changed.notify_all()
                self.changed.wait(min(remaining, 0.05))
            return True

    def shutdown(self, timeout):
        """Flushes within `timeout`, stops the sender; whatever is left counts as dropped."""
        self.flush(timeout)
        with self.changed:
            self.stopping = True
            self.dropped += len(self.buffer) + self.in_flight
            self.buffer.clear()
            self.changed.notify_all()


def _encode(event):
    try:
        return json.dumps(event, separators=(",", ":"), default=repr).encode()
    except Exception:  # noqa: BLE001
        return None


def _read(error):
    try:
        return error.read()
    except Exception:  # noqa: BLE001
        return b""


_client = None
_atexit_registered = False
_warned = set()


def init(name=None, auto_inject=True, *, backend_url=None, agent_name=None, batch_size=None, flush_interval=None,
         telemetry=None, timeout=2.0, max_buffer=10000, api_key=None, environment=None, session_id=None,
         **unknown):
    """Start recording for the agent `name`, sending to the gati backend at `backend_url`.

    Each option not given falls back to its environment variable (GATI_AGENT_NAME,
    GATI_BACKEND_URL, GATI_BATCH_SIZE, GATI_FLUSH_INTERVAL, GATI_TELEMETRY), then to its default.
    `auto_inject` records LangChain and LangGraph calls without passing callbacks. `timeout`
    bounds every wait this client makes: each request, `flush()`, and the flush at exit.
    `session_id` puts every run that names no session of its own in that one (a conversation).
    `telemetry`, `api_key` and `environment` are accepted for gati 0.0.3's sake: nothing is
    ever sent off this machine. Never raises: a bad option is reported and its default used.
    """
    global _client, _atexit_registered
    try:
        if isinstance(name, str) and name.startswith(("http://", "https://")) and backend_url is None:
            # gati 0.1's first draft took the backend URL first; 0.0.3 takes the name first.
            _warn_once("init-url", "observe.init's first argument is the agent's name: "
                                   "use observe.init(name=..., backend_url=...)")
            name, backend_url = None, name
        if name is not None and agent_name is not None and name != agent_name:
            _warn_once("init-names", f"observe.init got name={name!r} and agent_name={agent_name!r}: using name")
        agent = _text(name) or _text(agent_name) or _text(os.environ.get("GATI_AGENT_NAME")) or "agent"
        url = _text(backend_url) or _text(os.environ.get("GATI_BACKEND_URL")) or DEFAULT_BACKEND_URL
        if not url.startswith(("http://", "https://")):
            _warn(f"backend_url {url!r} is not an http:// or https:// URL: using {DEFAULT_BACKEND_URL}")
            url = DEFAULT_BACKEND_URL
        size = _number("batch_size", batch_size, "GATI_BATCH_SIZE", int, 500)
        if size > MAX_BATCH_EVENTS:
            size = MAX_BATCH_EVENTS  # the backend's limit per batch
        interval = _number("flush_interval", flush_interval, "GATI_FLUSH_INTERVAL", float, 1.0)
        wait = _number("timeout", timeout, None, float, 2.0)
        buffer = _number("max_buffer", max_buffer, None, int, 10000)
        _legacy_options(telemetry, api_key, environment, unknown)

        if _client is not None:
            _client.shutdown(_client.timeout)
        _client = _Client(url, agent, wait, interval, size, buffer, _session(session_id))
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
        if auto_inject:
            auto_instrument()
        elif "gati.instrumentation.langchain.auto_inject" in sys.modules:
            sys.modules["gati.instrumentation.langchain.auto_inject"].disable_auto_injection()
    except Exception:  # noqa: BLE001
        _warn("could not start: " + traceback.format_exc(limit=1))


def _session(value):
    """A session id as the backend takes it (a string of 1-256 bytes), or None."""
    text = _text(str(value)) if value is not None else None
    return _id(text) if text else None


def _text(value):
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(option, value, env, kind, default):
    source = option
    if value is None and env and os.environ.get(env, "").strip():
        value, source = os.environ[env].strip(), env
    if value is None:
        return default
    try:
        number = kind(value)
        if number > 0 and not isinstance(value, bool):
            return number
    except (TypeError, ValueError, OverflowError):
        pass
    _warn(f"{source}={value!r} is not a positive number: using {default}")
    return default


def _legacy_options(telemetry, api_key, environment, unknown):
    env_telemetry = os.environ.get("GATI_TELEMETRY", "").strip().lower() in ("true", "1", "yes")
    if telemetry or (telemetry is None and env_telemetry):
        _warn_once("telemetry", "telemetry is not collected any more: nothing leaves this machine "
                                "(telemetry=True and GATI_TELEMETRY are accepted and ignored)")
    if api_key is not None or os.environ.get("GATI_API_KEY"):
        _warn_once("api_key", "api_key / GATI_API_KEY is ignored: the local backend needs no key")
    if environment is not None:
        _warn_once("environment", "environment= is ignored: name the agent per environment instead, "
                                  "e.g. observe.init(name='my_agent-staging')")
    for key in sorted(unknown):
        _warn_once(f"option-{key}", f"observe.init ignores the unknown option {key}=")


def _now():
    return datetime.now(timezone.utc).isoformat()


def current_frame():
    """The run and parent event that an event recorded here belongs to (None outside any run)."""
    return _current.get()


def _emit(event_type, data, run_id=None, parent_event_id=None, *, event_id=None, agent_name=None, run_name=None,
          timestamp=None, previous_event_id=None, session_id=None):
    """Queues one event; returns its id. Never raises."""
    event_id = event_id or str(uuid.uuid4())
    try:
        client = _client
        if client is None:
            return event_id
        frame = _current.get()
        if run_id is None:
            run_id = frame.run_id if frame else client.session_run_id
        if parent_event_id is None and frame and frame.run_id == run_id:
            parent_event_id = frame.parent_id
        if frame and frame.run_id == run_id:
            agent_name = agent_name or frame.agent_name
            run_name = run_name or frame.run_name
            session_id = session_id or frame.session_id
        elif run_id == client.session_run_id:
            run_name = run_name or client.session_run_name
        session_id = _session(session_id) or client.session_id
        event = {
            "event_id": _id(event_id),
            "run_id": _id(run_id),
            "agent_name": _id(agent_name or client.agent_name),
            "event_type": _id(event_type),
            "timestamp": _timestamp(timestamp),
            "parent_event_id": _id(parent_event_id) if parent_event_id else None,
            "data": _jsonable(data or {}),
        }
        if run_name:
            event["run_name"] = str(run_name)
        if previous_event_id:
            event["previous_event_id"] = str(previous_event_id)
        if session_id:
            event["session_id"] = session_id
        client.add(event)
    except Exception:  # noqa: BLE001
        pass
    return event_id


def unnamed_run():
    """The name of a run the user did not name: `temp_…` asks the backend to number it
    (`run 1`, `run 2`, ... per agent), as gati 0.0.3 did."""
    return f"temp_{uuid.uuid4()}"


def _id(value):
    """A non-empty string the backend accepts as an id or name."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return "unknown"
    return text if len(text.encode()) <= _MAX_ID_LEN else text.encode()[:_MAX_ID_LEN].decode(errors="ignore")


def _timestamp(value):
    """Python's isoformat, read as UTC when naive; anything else becomes now."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).isoformat()
        except ValueError:
            pass
    return _now()


def _jsonable(data):
    try:
        return json.loads(json.dumps(dict(data), default=repr))
    except Exception:  # noqa: BLE001
        return {"repr": repr(data)}


def event(event_type, data=None):
    """Records one event (e.g. `llm_call`, `tool_call`) under the current run and step."""
    _emit(event_type, data)


class _Span:
    """A run or a step: a context manager and a decorator (of plain and async functions).
    Records start, end or error, and the duration; events inside it are nested under it."""

    def __init__(self, kind, name, data, session_id=None):
        self.kind = kind
        self.name = name
        self.data = data
        self.session_id = session_id
        self.stack = []

    def __enter__(self):
        try:
            frame = _current.get()
            client = _client
            session = frame.session_id if frame else None
            if self.kind == "step" and frame:
                run_id, run_name, agent = frame.run_id, frame.run_name, frame.agent_name
            elif self.kind == "step":
                run_id = client.session_run_id if client else None
                run_name, agent = (client.session_run_name if client else None), None
            else:
                # A run is in the session it names, else in its caller's.
                run_id, run_name, agent = str(uuid.uuid4()), self.name, None
                session = _session(self.session_id) or session
            parent = frame.parent_id if frame else None  # a nested run points at its caller
            start_id = _emit(f"{self.kind}_start", {"name": self.name, **self.data}, run_id, parent,
                             run_name=run_name, session_id=session)
            token = _current.set(_Frame(run_id, start_id, run_name, agent, session))
            self.stack.append((token, run_id, start_id, time.monotonic()))
        except Exception:  # noqa: BLE001
            self.stack.append(None)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            entry = self.stack.pop()
            if entry is None:
                return False
            token, run_id, start_id, started = entry
            frame = _current.get()
            _current.reset(token)
            data = {"name": self.name, "duration_ms": round((time.monotonic() - started) * 1000, 3)}
            run_name = frame.run_name if frame else None
            session = frame.session_id if frame else None
            if exc_type is None:
                _emit(f"{self.kind}_end", data, run_id, start_id, run_name=run_name, session_id=session)
            else:
                data.update(error=str(exc), error_type=exc_type.__name__)
                _emit(f"{self.kind}_error", data, run_id, start_id, run_name=run_name, session_id=session)
        except Exception:  # noqa: BLE001
            pass
        return False  # never swallows the caller's exception

    def __call__(self, fn):
        kind, name, data, session = self.kind, self.name or fn.__qualname__, self.data, self.session_id
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                with _Span(kind, name, data, session):
                    return await fn(*args, **kwargs)
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _Span(kind, name, data, session):
                return fn(*args, **kwargs)
        return wrapper


def run(name=None, session_id=None, **data):
    """A run of the agent: `@observe.run`, `@observe.run("name")` or `with observe.run("name"):`.
    `session_id` puts it in that session (conversation); else it is in its caller's, or init's."""
    if callable(name):
        return _Span("run", name.__qualname__, data, session_id)(name)
    return _Span("run", name, data, session_id)


def step(name=None, **data):
    """A step inside the current run: `@observe.step` or `with observe.step("name"):`."""
    if callable(name):
        return _Span("step", name.__qualname__, data)(name)
    return _Span("step", name, data)


def flush(timeout=None):
    """Sends everything buffered; waits at most `timeout` (default: init's timeout)."""
    try:
        if _client is None:
            return True
        return _client.flush(_client.timeout if timeout is None else timeout)
    except Exception:  # noqa: BLE001
        return False


def dropped():
    """How many events were dropped so far (backend unreachable, buffer full, or too large)."""
    return _client.dropped if _client is not None else 0


def shutdown(timeout=None):
    """Flushes and stops the sender thread; reports dropped events once."""
    global _client
    client = _client
    if client is None:
        return
    try:
        client.shutdown(client.timeout if timeout is None else timeout)
        if client.dropped:
            reason = f" (last error: {client.last_error})" if client.last_error else ""
            _warn(f"dropped {client.dropped} events that could not reach {client.url}{reason}")
    except Exception:  # noqa: BLE001
        pass
    _client = None


# ---- The API of gati 0.0.3 -------------------------------------------------------------------

def track_event(event):
    """Records a `gati.core.event.Event` (or a dict of the same fields) as gati 0.0.3 did: under
    the current run unless the event names its own. Never raises."""
    try:
        from gati.core.event import to_backend
        fields = to_backend(event)
        if fields is not None:
            _emit(**fields)
    except Exception:  # noqa: BLE001
        pass


def get_callbacks():
    """LangChain callback handlers that record LLM, tool, chain and LangGraph node runs:
    `llm = ChatOpenAI(callbacks=observe.get_callbacks())`. Empty without langchain-core."""
    try:
        from gati.instrumentation.langchain import get_gati_callbacks
        return get_gati_callbacks()
    except Exception:  # noqa: BLE001
        return []


def auto_instrument(frameworks=None):
    """Records LangChain and LangGraph runs without callbacks being passed; {framework: done}."""
    results = {}
    for framework in frameworks or ("langchain", "langgraph"):
        try:
            if framework == "langchain":
                from gati.instrumentation.langchain import enable_auto_injection
                results[framework] = enable_auto_injection()
            elif framework == "langgraph":
                from gati.instrumentation.langgraph import instrument_langgraph
                results[framework] = instrument_langgraph()
            else:
                results[framework] = False
        except Exception:  # noqa: BLE001
            results[framework] = False
    return results


def record_agent_for_telemetry(agent_name=None):
    """gati 0.0.3's telemetry hook: there is no telemetry, so this does nothing."""


class Observe:
    """gati 0.0.3's `Observe` singleton: every attribute is this module's."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __getattr__(self, attribute):
        return getattr(sys.modules[__name__], attribute)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutdown()

    def __repr__(self):
        return f"Observe({'initialized' if _client is not None else 'not initialized'})"


def _at_exit():
    shutdown()


def _warn(message):
    try:
        print(f"gati: {message}", file=sys.stderr)
    except Exception:  # noqa: BLE001
        pass


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        _warn(message)


# `from gati.observe import observe`, as gati 0.0.3 wrote it, is this module.
observe = sys.modules[__name__]
