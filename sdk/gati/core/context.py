"""gati 0.0.3's run context: which run, run name and parent event the next event belongs to.

It is the same context as `observe.run` and `observe.step` use: per thread and per asyncio task.
"""

import contextlib
import uuid
from typing import List, Optional

from gati import observe as _observe
from gati.core.event import generate_run_id, generate_run_name

__all__ = ["RunContext", "RunContextManager", "get_current_run_id", "get_current_run_name", "set_run_name",
           "create_child_run", "run_context", "arun_context", "get_parent_event_id", "set_parent_event_id"]


class RunContext:
    """A run as gati 0.0.3 described it."""

    def __init__(self, run_id, run_name, parent_id=None, parent_name=None, parent_event_id=None):
        self.run_id = run_id
        self.run_name = run_name
        self.parent_id = parent_id
        self.parent_name = parent_name
        self.parent_event_id = parent_event_id
        self.depth = 0

    def __repr__(self):
        return f"RunContext(run_id={self.run_id!r}, run_name={self.run_name!r})"


def _frame():
    """The current frame; outside any run, the run that `observe.init` opened for the session."""
    frame = _observe._current.get()
    if frame is None and _observe._client is not None:
        client = _observe._client
        frame = _observe._Frame(client.session_run_id, None, client.session_run_name, None)
    return frame


def get_current_run_id() -> Optional[str]:
    frame = _frame()
    return frame.run_id if frame else None


def get_current_run_name() -> Optional[str]:
    frame = _frame()
    return (frame.run_name or None) if frame else None


def set_run_name(run_name: str) -> None:
    """Names the current run; its later events carry the name."""
    frame = _frame() or _observe._Frame(generate_run_id(), None, None, None)
    _observe._current.set(frame._replace(run_name=run_name))


def get_parent_event_id() -> Optional[str]:
    frame = _frame()
    return frame.parent_id if frame else None


def set_parent_event_id(event_id: str) -> None:
    """Nests the current context's later events under `event_id`."""
    frame = _frame()
    if frame is not None:
        _observe._current.set(frame._replace(parent_id=event_id))


def create_child_run(run_name: Optional[str] = None, agent_name: str = "") -> str:
    return run_name if run_name is not None else generate_run_name(agent_name)


@contextlib.contextmanager
def _enter(run_name=None, run_id=None, agent_name="", session_id=None):
    frame = _observe._current.get()
    run_id = run_id or str(uuid.uuid4())
    # The run is in the session it names, else in its caller's.
    session = _observe._session(session_id) or (frame.session_id if frame else None)
    token = _observe._current.set(_observe._Frame(run_id, frame.parent_id if frame else None,
                                                  run_name or _observe.unnamed_run(), agent_name or None, session))
    try:
        yield run_id
    finally:
        _observe._current.reset(token)


def run_context(run_name: Optional[str] = None, parent_name: Optional[str] = None, agent_name: str = "",
                session_id: Optional[str] = None):
    """`with run_context() as run_id:` — a new run for the events inside, in the session
    `session_id` if given."""
    return _enter(run_name, None, agent_name, session_id)


@contextlib.asynccontextmanager
async def arun_context(run_name: Optional[str] = None, parent_name: Optional[str] = None, agent_name: str = "",
                       session_id: Optional[str] = None):
    with _enter(run_name, None, agent_name, session_id) as run_id:
        yield run_id


class RunContextManager:
    """gati 0.0.3's class-level access to the run context."""

    get_current_run_id = staticmethod(get_current_run_id)
    get_current_run_name = staticmethod(get_current_run_name)
    set_run_name = staticmethod(set_run_name)
    create_child_run = staticmethod(create_child_run)
    get_parent_event_id = staticmethod(get_parent_event_id)
    set_parent_event_id = staticmethod(set_parent_event_id)

    @staticmethod
    def run_context(run_name=None, run_id=None, parent_name=None, agent_name="", session_id=None):
        return _enter(run_name, run_id, agent_name, session_id)

    @staticmethod
    @contextlib.asynccontextmanager
    async def arun_context(run_name=None, run_id=None, parent_name=None, agent_name="", session_id=None):
        with _enter(run_name, run_id, agent_name, session_id) as new_id:
            yield new_id

    @staticmethod
    def get_execution_stack() -> List[RunContext]:
        frame = _frame()
        return [RunContext(frame.run_id, frame.run_name, parent_event_id=frame.parent_id)] if frame else []

    @staticmethod
    def get_parent_run_name() -> Optional[str]:
        return None

    @staticmethod
    def clear_context() -> None:
        _observe._current.set(None)

    @staticmethod
    def get_depth() -> int:
        return 1 if _observe._current.get() is not None else 0
