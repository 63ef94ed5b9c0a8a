"""Runs the instrumented agent (agent.py) in the OpenTelemetry venv, against the OpenAI stub,
exporting to an OTLP endpoint; shared by the tests and by capture_fixtures.py."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
VENV_PYTHON = ROOT / ".tools" / "otel-venv" / "bin" / "python"
FIXTURES = ROOT / "backend" / "src" / "otlp" / "fixtures"
LATEST = {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"}
# (fixture name, library, extra environment): each library, openai-v2 in both semconv modes.
RUNS = [("openai-v2", "openai-v2", {}), ("openai-v2-latest", "openai-v2", LATEST),
        ("openllmetry", "openllmetry", {}), ("openinference", "openinference", {})]


def venv_python() -> Path:
    if not VENV_PYTHON.exists():
        raise AssertionError(f"{VENV_PYTHON} is missing: python3 -m venv .tools/otel-venv && "
                             ".tools/otel-venv/bin/pip install -r tests/stack/otel/requirements.txt")
    return VENV_PYTHON


def run_agent(library: str, openai_base_url: str, otlp_endpoint: str, env: dict, gzip: bool = False,
              by_environment: bool = False) -> str:
    """The trace id of the one run the agent made. With `by_environment`, the exporter is given
    the endpoint (and gzip) by OTEL_EXPORTER_OTLP_ENDPOINT (and OTEL_EXPORTER_OTLP_COMPRESSION)
    only, as a user sets it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_"))}
    if by_environment:
        env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
               **({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"} if gzip else {})}
    endpoint = "env" if by_environment else otlp_endpoint
    result = subprocess.run(
        [venv_python(), Path(__file__).with_name("agent.py"), library, openai_base_url, endpoint,
         *(["--gzip"] if gzip and not by_environment else [])],
        env={**clean, "OTEL_SDK_DISABLED": "false", "TRACELOOP_TELEMETRY": "false", **env},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"agent.py {library} failed:\n{result.stdout}{result.stderr}"
    return result.stdout.strip()
