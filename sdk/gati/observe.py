"""Record what an agent does and send it to the gati backend.

    from gati import observe
    observe.init(backend_url="http://127.0.0.1:8000", agent_name="my-agent")

    @observe.run                       # or: with observe.run("name"):
    def handle(request):
        with observe.step("retrieve"):  # nested under the run
            ...
        observe.event("llm_call", {"model": "gpt-x", "tokens": 120})

Events go into a bounded buffer and are sent in batches by a background thread. Nothing here
raises into the caller's code, and nothing blocks it longer than `timeout` seconds: when the
backend is slow or down, events that cannot be kept are dropped, counted, and reported once at
exit.
"""

import atexit
import contextvars
import functools
import json
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import deque
from datetime import datetime, timezone

__all__ = ["init", "run", "step", "event", "flush", "dropped", "shutdown"]

# The innermost open run and span, per thread and per asyncio task.
_current = contextvars.ContextVar("gati_current", default=None)


class _Client:
    def __init__(self, backend_url, agent_name, timeout, flush_interval, batch_size, max_buffer):
        self.url = backend_url.rstrip("/") + "/api/events"
        self.agent_name = agent_name
        self.timeout = timeout
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
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

    def _send_all(self):
        """Sends batches until the buffer is empty or the backend fails; a failed batch is kept."""
        while True:
            with self.changed:
                batch = [self.buffer.popleft() for _ in range(min(self.batch_size, len(self.buffer)))]
                self.in_flight = len(batch)
            if not batch:
                return
            sent = self._post(batch)
            with self.changed:
                self.in_flight = 0
                if not sent:
                    self.buffer.extendleft(reversed(batch))
                self.changed.notify_all()
            if not sent:
                return

    def _post(self, batch):
        body = json.dumps({"events": batch}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
            return True
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500:
                # The backend refused the batch itself: sending it again cannot help.
                self.last_error = f"the backend refused a batch: HTTP {e.code} {e.read()[:200]!r}"
                with self.changed:
                    self.dropped += len(batch)
                return True
            self.last_error = f"HTTP {e.code}"
            return False
        except Exception as e:  # noqa: BLE001 - the client must never raise into user code
            self.last_error = str(e) or type(e).__name__
            return False

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


_client = None
_atexit_registered = False


def init(backend_url="http://127.0.0.1:8000", agent_name="agent", timeout=2.0, flush_interval=1.0,
         batch_size=500, max_buffer=10000):
    """Start recording for `agent_name`, sending to the gati backend at `backend_url`.

    `timeout` bounds every wait this client makes: each request, `flush()`, and the flush at exit.
    """
    global _client, _atexit_registered
    try:
        if _client is not None:
            _client.shutdown(timeout)
        _client = _Client(backend_url, agent_name, timeout, flush_interval, batch_size, max_buffer)
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
    except Exception:  # noqa: BLE001
        _warn("could not start: " + traceback.format_exc(limit=1))


def _now():
    return datetime.now(timezone.utc).isoformat()


def _emit(event_type, data, run_id=None, parent_event_id=None):
    """Queues one event; returns its id. Never raises."""
    event_id = uuid.uuid4().hex
    try:
        client = _client
        if client is None:
            return event_id
        current = _current.get()
        if run_id is None:
            run_id = current[0] if current else uuid.uuid4().hex
        if parent_event_id is None and current:
            parent_event_id = current[1]
        client.add({
            "event_id": event_id,
            "run_id": run_id,
            "agent_name": client.agent_name,
            "event_type": str(event_type),
            "timestamp": _now(),
            "parent_event_id": parent_event_id,
            "data": _jsonable(data or {}),
        })
    except Exception:  # noqa: BLE001
        pass
    return event_id


def _jsonable(data):
    try:
        return json.loads(json.dumps(dict(data), default=repr))
    except Exception:  # noqa: BLE001
        return {"repr": repr(data)}


def event(event_type, data=None):
    """Records one event (e.g. `llm_call`, `tool_call`) under the current run and step."""
    _emit(event_type, data)


class _Span:
    """A run or a step: a context manager and a decorator. Records start, end or error, and the
    duration; events inside it are nested under it."""

    def __init__(self, kind, name, data):
        self.kind = kind
        self.name = name
        self.data = data
        self.stack = []

    def __enter__(self):
        try:
            current = _current.get()
            run_id = current[0] if current and self.kind == "step" else uuid.uuid4().hex
            parent = current[1] if current else None
            start_id = _emit(f"{self.kind}_start", {"name": self.name, **self.data}, run_id, parent)
            token = _current.set((run_id, start_id))
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
            _current.reset(token)
            data = {"name": self.name, "duration_ms": round((time.monotonic() - started) * 1000, 3)}
            if exc_type is None:
                _emit(f"{self.kind}_end", data, run_id, start_id)
            else:
                data.update(error=str(exc), error_type=exc_type.__name__)
                _emit(f"{self.kind}_error", data, run_id, start_id)
        except Exception:  # noqa: BLE001
            pass
        return False  # never swallows the caller's exception

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _Span(self.kind, self.name or fn.__qualname__, self.data):
                return fn(*args, **kwargs)
        return wrapper


def run(name=None, **data):
    """A run of the agent: `@observe.run`, `@observe.run("name")` or `with observe.run("name"):`."""
    if callable(name):
        return _Span("run", name.__qualname__, data)(name)
    return _Span("run", name, data)


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
    """How many events were dropped so far (backend unreachable, or buffer full)."""
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


def _at_exit():
    shutdown()


def _warn(message):
    try:
        print(f"gati: {message}", file=sys.stderr)
    except Exception:  # noqa: BLE001
        pass
