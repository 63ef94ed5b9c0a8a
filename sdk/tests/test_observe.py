"""gati.observe against the real backend binary. Each scenario runs as its own Python process,
as a user's agent would, importing the package from sdk/."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from gati_testing import ROOT, free_port, request


def agent(script, backend_url, timeout=60, **env):
    """Runs `script` with gati.observe initialised against `backend_url`."""
    prelude = textwrap.dedent(f"""
        import time
        from gati import observe
        observe.init(backend_url={backend_url!r}, agent_name="test-agent", timeout=1.0, flush_interval=0.2)
    """)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], capture_output=True,
                            text=True, timeout=timeout,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "sdk"), **env})
    result.seconds = time.monotonic() - started
    return result


RUN_WITH_STEPS = """
@observe.run
def handle(question):
    with observe.step("retrieve", source="faq"):
        observe.event("tool_call", {"tool": "search", "query": question})
    observe.event("llm_call", {"model": "gpt-x", "tokens": 42, "cost": 0.001})
    return "ok"

handle("where is my order?")
try:
    with observe.run("failing"):
        raise ValueError("boom")
except ValueError:
    pass
"""


def test_events_arrive_with_the_run_structure(backend):
    result = agent(RUN_WITH_STEPS + "\nassert observe.flush(5)\n", backend.url)
    assert result.returncode == 0, result.stderr

    runs = request("GET", backend.url + "/api/agents/test-agent/runs")[1]  # 0.0.3's bare array
    assert len(runs) == 2
    by_first_type = {}
    for run in runs:
        events = request("GET", backend.url + f"/api/runs/{run['run_id']}")[1]["events"]
        by_first_type[events[0]["data"]["name"]] = events

    events = by_first_type["handle"]
    types = [e["event_type"] for e in events]
    assert types == ["run_start", "step_start", "tool_call", "step_end", "llm_call", "run_end"]
    ids = {e["event_type"]: e["event_id"] for e in events}
    parents = {e["event_type"]: e["parent_event_id"] for e in events}
    assert parents["run_start"] is None
    assert parents["step_start"] == ids["run_start"]
    assert parents["tool_call"] == ids["step_start"]
    assert parents["step_end"] == ids["step_start"]
    assert parents["llm_call"] == ids["run_start"]
    assert parents["run_end"] == ids["run_start"]
    assert events[-1]["data"]["duration_ms"] >= 0

    failed = by_first_type["failing"]
    assert [e["event_type"] for e in failed] == ["run_start", "run_error"]
    assert failed[1]["data"]["error"] == "boom" and failed[1]["data"]["error_type"] == "ValueError"
    assert request("GET", backend.url + "/api/summary")[1]["total_tokens"] == 42


def test_events_are_flushed_at_exit(backend):
    result = agent('observe.event("llm_call", {"tokens": 7})\n', backend.url)
    assert result.returncode == 0, result.stderr
    assert "dropped" not in result.stderr
    assert request("GET", backend.url + "/api/summary")[1]["events"] == 1


def test_backend_down_never_raises_and_reports_drops_once(backend):
    dead = f"http://127.0.0.1:{free_port()}"
    script = RUN_WITH_STEPS + """
started = time.monotonic()
assert observe.flush(0.5) is False
assert time.monotonic() - started < 1.5
print("agent finished")
"""
    result = agent(script, dead)
    assert result.returncode == 0, result.stderr
    assert "agent finished" in result.stdout
    assert result.stderr.count("gati: dropped") == 1, result.stderr
    assert "gati: dropped 8 events" in result.stderr
    assert result.seconds < 10


def test_slow_backend_does_not_block_the_agent(backend):
    """A backend that accepts connections but does not answer (stopped with SIGSTOP)."""
    backend.proc.send_signal(signal.SIGSTOP)
    try:
        script = """
started = time.monotonic()
for i in range(100):
    observe.event("llm_call", {"i": i})
recording = time.monotonic() - started
assert recording < 0.5, recording
started = time.monotonic()
observe.flush(0.5)
assert time.monotonic() - started < 1.5
"""
        result = agent(script, backend.url)
        assert result.returncode == 0, result.stderr
        # flush (0.5 s) plus the bounded flush at exit (1 s timeout): far from hanging.
        assert result.seconds < 10, result.seconds
        assert "gati: dropped" in result.stderr
    finally:
        backend.proc.send_signal(signal.SIGCONT)


def test_nothing_is_sent_or_raised_without_init():
    script = 'from gati import observe\nobserve.event("x", {})\nwith observe.run("r"):\n    pass\nprint("ok")\n'
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "sdk")})
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")
