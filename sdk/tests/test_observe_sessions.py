"""Sessions in the SDK against the real backend binary: a run names its session (observe.run,
track_agent, run_context), or takes its caller's or observe.init's; events of a run carry
`session_id`, and code written for gati 0.0.3 sends none."""

import os
import subprocess
import sys
import textwrap

from gati_testing import ROOT, request


def agent(script, backend_url, init=""):
    prelude = textwrap.dedent(f"""
        from gati import observe
        from gati.decorators import track_agent, track_tool
        from gati.core.context import run_context
        observe.init(backend_url={backend_url!r}, agent_name="chat-agent", timeout=1.0, flush_interval=0.2{init})
    """)
    result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script) + "\nassert observe.flush(5)\n"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "sdk")})
    assert result.returncode == 0, result.stderr
    assert "dropped" not in result.stderr, result.stderr


def get(backend, path):
    status, body = request("GET", backend.url + path)
    assert status == 200, (path, body)
    return body


def events_of(backend, run_id):
    return get(backend, f"/api/runs/{run_id}")["events"]


TURNS = """
for n, question in enumerate(["hi", "and my order?"], 1):
    with observe.run(f"turn {n}", session_id="chat-7", input=question):
        with observe.step("think"):
            observe.event("llm_call", {"model": "gpt-x", "prompt": question, "completion": "ok", "cost": 0.5})
        with observe.run("nested"):
            observe.event("tool_call", {"tool_name": "lookup"})

@track_agent(name="helper", session_id="chat-8")
def helper(q):
    return lookup(q)

@track_tool
def lookup(q):
    return {"found": q}

helper("x")
with run_context(run_name="ctx run", session_id="chat-9"):
    observe.event("llm_call", {"model": "gpt-x", "cost": 0.25})
with observe.run("alone"):
    observe.event("llm_call", {"cost": 0.125})
"""


def test_runs_name_their_session_and_their_events_carry_it(backend):
    agent(TURNS, backend.url)
    sessions = {s["session_id"]: s for s in get(backend, "/api/sessions")["sessions"]}
    assert set(sessions) == {"chat-7", "chat-8", "chat-9"}
    # Two turns, each with a nested run that is in its caller's session.
    assert sessions["chat-7"]["run_count"] == 4 and sessions["chat-7"]["total_cost"] == 1.0
    assert sessions["chat-8"]["agent_names"] == ["helper"] and sessions["chat-8"]["run_count"] == 1
    assert sessions["chat-9"]["total_cost"] == 0.25

    chat = get(backend, "/api/sessions/chat-7")
    turns = [t for t in chat["runs"] if t["run_name"] != "nested"]
    assert [(t["run_name"], t["input"]) for t in turns] == [("turn 1", "hi"), ("turn 2", "and my order?")]
    for turn in chat["runs"]:
        events = events_of(backend, turn["run_id"])
        assert events and all(e["attributes"]["session_id"] == "chat-7" for e in events), events
    helper = events_of(backend, get(backend, "/api/sessions/chat-8")["runs"][0]["run_id"])
    assert {e["event_type"] for e in helper} == {"agent_start", "tool_call", "agent_end"}
    assert all(e["attributes"]["session_id"] == "chat-8" for e in helper)

    alone = get(backend, "/api/runs?name=alone")["runs"][0]
    assert alone["session_id"] is None
    assert all("session_id" not in e["attributes"] for e in events_of(backend, alone["run_id"]))


def test_init_gives_every_run_without_one_its_session(backend):
    agent(TURNS, backend.url, init=', session_id="default-s"')
    sessions = {s["session_id"]: s["run_count"] for s in get(backend, "/api/sessions")["sessions"]}
    # "alone" and the runs outside any (observe.init's own) join init's; the others keep theirs.
    assert sessions == {"chat-7": 4, "chat-8": 1, "chat-9": 1, "default-s": 1}


OLD_API = """
from gati.core.event import LLMCallEvent
from gati.core.context import RunContextManager

with RunContextManager.run_context(run_name="legacy"):
    observe.track_event(LLMCallEvent(model="gpt-x", prompt="p", completion="c", tokens_in=1, tokens_out=2))

@track_agent
def plain(q):
    return q

plain("y")
"""


def test_code_written_for_0_0_3_runs_unchanged_and_joins_no_session(backend):
    agent(OLD_API, backend.url)
    assert get(backend, "/api/sessions")["sessions"] == []
    runs = get(backend, "/api/runs")["runs"]
    assert len(runs) == 2 and all(r["session_id"] is None for r in runs)
