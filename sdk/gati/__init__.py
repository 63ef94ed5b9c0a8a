"""gati: local-first observability for AI agents."""

from . import observe
from .observe import Observe
from .version import __version__

__all__ = ["__version__", "observe", "Observe"]
