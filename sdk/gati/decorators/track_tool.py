"""`@track_tool`: each call is one `tool_call` event with its input, output or error, and duration."""

from typing import Optional

from gati.decorators._tracking import decorator


def track_tool(name: Optional[str] = None):
    """`@track_tool`, `@track_tool()` or `@track_tool(name="web_search")`, on plain or async functions."""
    return decorator("tool", name)
