"""gati 0.0.3's decorators: `from gati.decorators import track_agent, track_tool, track_step`."""

from gati.decorators.track_agent import track_agent
from gati.decorators.track_step import track_step
from gati.decorators.track_tool import track_tool

__all__ = ["track_agent", "track_step", "track_tool"]
