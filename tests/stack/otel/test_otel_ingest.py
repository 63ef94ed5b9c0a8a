"""OpenTelemetry into gati, end to end: the real libraries of requirements.txt instrument the
openai client against the local stub and export to the real backend, configured as a user
configures them (OTEL_EXPORTER_OTLP_ENDPOINT only; plain and gzip). Through the backend's API,
each run shows its agent, one run per trace, the LLM calls with model, tokens, cost (from the
SDK's own price table) and latency, the tool call and the parent links."""

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).resolve().parents[3] / "sdk")]

import openai_stub  # noqa: E402
from gati.utils.cost_calculator import price  # noqa: E402
from gati_testing import Service, request  # noqa: E402
from agent import SESSION  # noqa: E402
from otel_helpers import RUNS, run_agent  # noqa: E402

AGENT = "weather-agent"
# Each library's run, plain and gzip.
CASES = [(name, library, env, compressed) for name, library, env in RUNS for compressed in (False, True)]
IDS = [f"{name}-{'gzip' if compressed else 'plain'}" for name, _, _, compressed in CASES]


@pytest.fixture(scope="module")
def stack(bin_dir, tmp_path_factory):
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path_factory.mktemp("otel-ingest"))})
    stub = openai_stub.serve()
    try:
        openai_url = f"http://127.0.0.1:{stub.server_address[1]}/v1"
        # The agents run at once (each is seconds of Python start-up): several exporters, one backend.
        with ThreadPoolExecutor(max_workers=4) as pool:
            traces = list(pool.map(lambda case: run_agent(case[1], openai_url, backend.url, case[2], gzip=case[3],
                                                          by_environment=True), CASES))
        yield backend, dict(zip(IDS, traces))
    finally:  # a failed agent too: no backend is left running
        stub.shutdown()
        status = backend.stop()
    assert status == 0


def get(backend, path):
    status, body = request("GET", backend.url + path)
    assert status == 200, (path, body)
    return body


@pytest.mark.parametrize("case", IDS)
def test_each_library_shows_its_run_in_gati(stack, case):
    backend, traces = stack
    trace_id = traces[case]

    run = get(backend, f"/api/runs/{trace_id}")
    events = run["events"]
    assert (run["run_id"], run["agent_name"], run["event_count"]) == (trace_id, AGENT, 4), run
    assert {e["run_id"] for e in events} == {trace_id}, "one run per trace"
    (root,) = [e for e in events if e["parent_event_id"] is None]
    assert run["run_name"] == root["data"]["name"], "the run is named by its root span"
    assert run["status"] == "completed", "the root span ended the run"
    assert all(e["parent_event_id"] == root["event_id"] for e in events if e is not root)

    llm = sorted((e for e in events if e["event_type"] == "llm_call"), key=lambda e: e["tokens_in"])
    expected = [(42, 17), (64, 9)]  # the stub's usage: the call that asks for the tool, the answer
    assert [(e["tokens_in"], e["tokens_out"]) for e in llm] == expected, llm
    for e, (tokens_in, tokens_out) in zip(llm, expected):
        assert e["model"] == openai_stub.MODEL
        assert e["total_tokens"] == tokens_in + tokens_out
        assert e["cost"] == price(openai_stub.MODEL, tokens_in, tokens_out) and e["cost"] > 0, e
        assert e["duration_ms"] > 0 and e["data"]["latency_ms"] == e["duration_ms"]
        assert e["data"]["provider"] == "openai" and e["error"] is False
    (tool,) = [e for e in events if e["event_type"] == "tool_call"]
    assert tool["data"]["tool_name"] == "get_weather" and "sunny" in tool["data"]["output"], tool
    assert (run["tokens_in"], run["tokens_out"]) == (42 + 64, 17 + 9)
    assert run["total_cost"] == pytest.approx(sum(e["cost"] for e in llm))

    # The tree the run view draws: the root span, its three children in time order.
    trace = get(backend, f"/api/runs/{AGENT}/{trace_id}/trace")
    (top,) = trace["execution_tree"]
    assert top["event_id"] == root["event_id"]
    assert [c["event_type"] for c in top["children"]] == ["llm_call", "tool_call", "llm_call"]
    children = get(backend, f"/api/events/{root['event_id']}/children")
    assert [e["event_id"] for e in children] == [c["event_id"] for c in top["children"]]

    # The agent lists the run among its own, and every run is one of them.
    runs = get(backend, f"/api/agents/{AGENT}/runs?limit=100")
    assert trace_id in {r["run_id"] for r in runs} and len(runs) == len(CASES)
    assert get(backend, f"/api/agents/{AGENT}")["total_runs"] == len(CASES)
    assert get(backend, "/health")["status"] == "ok"

    # The session the agent's span names: every library's run is a turn of it.
    assert run["session_id"] == SESSION
    session = get(backend, f"/api/sessions/{SESSION}")
    assert session["run_count"] == len(CASES) and trace_id in {t["run_id"] for t in session["runs"]}

