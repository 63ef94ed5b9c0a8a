"""`@track_step`: each call is one `step` event with its input, output or error, and duration."""

from typing import Any, Dict, Optional

from gati.decorators._tracking import decorator


def track_step(name: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None):
    """`@track_step`, `@track_step()` or `@track_step(name="plan", metadata={...})`, on plain or
    async functions."""
    return decorator("step", name, metadata)
