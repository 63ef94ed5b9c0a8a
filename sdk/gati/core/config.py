"""gati 0.0.3's configuration object. `observe.init` reads the same GATI_* variables itself;
this class remains for code that read settings from it."""

import os
from typing import Optional

from gati.observe import DEFAULT_BACKEND_URL


class Config:
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._load()
        return cls._instance

    def _load(self):
        self.api_key: Optional[str] = os.getenv("GATI_API_KEY")
        self.agent_name: str = os.getenv("GATI_AGENT_NAME", "default_agent")
        self.environment: str = os.getenv("GATI_ENVIRONMENT", "development")
        self.backend_url: str = os.getenv("GATI_BACKEND_URL", DEFAULT_BACKEND_URL)
        self.batch_size = _parsed(int, os.getenv("GATI_BATCH_SIZE"), 500)
        self.flush_interval = _parsed(float, os.getenv("GATI_FLUSH_INTERVAL"), 1.0)
        self.telemetry = False  # gati collects no telemetry

    def update(self, **values):
        for key, value in values.items():
            if value is not None and hasattr(self, key) and key != "telemetry":
                setattr(self, key, value)

    def reset(self):
        self._load()

    def __repr__(self):
        return (f"Config(agent_name={self.agent_name!r}, backend_url={self.backend_url!r}, "
                f"batch_size={self.batch_size}, flush_interval={self.flush_interval})")


def _parsed(kind, value, default):
    try:
        return kind(value) if value else default
    except ValueError:
        return default


config = Config()
