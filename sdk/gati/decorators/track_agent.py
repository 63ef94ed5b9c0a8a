"""`@track_agent`: each call is a run (events `agent_start`, then `agent_end` with its output or
error); everything recorded inside belongs to that run."""

from typing import Optional

from gati.decorators._tracking import decorator


def track_agent(name: Optional[str] = None, session_id: Optional[str] = None):
    """`@track_agent`, `@track_agent()` or `@track_agent(name="ResearchAgent")`, on plain or async
    functions. `name` (default: the function's) is the agent's name in gati; `session_id` puts each
    call's run in that session (conversation), else in its caller's, or observe.init's."""
    return decorator("agent", name, None, session_id)
