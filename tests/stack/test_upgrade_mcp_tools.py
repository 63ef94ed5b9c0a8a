"""The MCP tools of gati 0.0.3, on runs the REAL gati 0.0.3 SDK recorded (issue 20).

tests/stack/test_upgrade_sdk.py's README script (a ResearchAgent run with a gpt-4o call, a web_search tool
and a tool that fails; a FailingAgent run) runs once with the 0.0.3 package from the index
against our backend; then every 0.0.3 tool answers about those runs, with the figures the
backend gives, where 0.0.3's own server printed `undefined` for tool input and output and "No
events found" for every trace.
"""

from datetime import datetime, timedelta, timezone

import pytest

from gati_testing import Service
from test_upgrade_sdk import COST, pythons, run_script  # noqa: F401 (pythons: a fixture)
from test_mcp_tools import answer, calls, failure, route, usd


@pytest.fixture(scope="module")
def recorded_by_0_0_3(pythons, bin_dir, tmp_path_factory):  # noqa: F811
    work = tmp_path_factory.mktemp("mcp-0.0.3")
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(work / "data")})
    try:
        python, extra_env = pythons["gati 0.0.3"]
        result = run_script(python, extra_env, service.url, work)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-5000:]}"
        yield service
    finally:
        service.stop()


RUN = {"agent_name": "ResearchAgent", "run_name": "run 1"}


def test_agent_stats_metrics_and_cost_by_model(bin_dir, recorded_by_0_0_3):
    backend = recorded_by_0_0_3
    stats, metrics, models, agents = calls(bin_dir, backend, ("get_agent_stats", {"agent_name": "ResearchAgent"}),
                                           ("get_global_metrics", {}), ("get_cost_breakdown", {}),
                                           ("list_agents", {}))
    summary, data = answer(stats)
    assert data == route(backend, "/api/agents/ResearchAgent/metrics")
    assert (data["total_runs"], data["total_tokens_in"], data["total_tokens_out"]) == (1, 1200, 700)
    assert data["total_cost"] == pytest.approx(COST)
    assert f"- Cost: {usd(data['total_cost'])} in all" in summary, summary

    summary, data = answer(metrics)
    assert data == route(backend, "/api/metrics/summary")
    assert (data["total_agents"], data["total_runs"]) == (2, 2) and data["total_cost"] == pytest.approx(COST)
    assert "Global metrics: 2 agents, 2 runs" in summary, summary

    summary, data = answer(models)
    (model,) = data["models"]
    assert data == {"models": route(backend, "/api/metrics/models")}
    assert (model["model"], model["calls"], model["tokens_in"], model["tokens_out"]) == ("gpt-4o", 1, 1200, 700)
    assert f"| gpt-4o | 1 | {usd(model['cost'])} | 1200 | 700 |" in summary, summary

    summary, data = answer(agents)
    assert {a["name"] for a in data["agents"]} == {"ResearchAgent", "FailingAgent"}
    assert "my_agent" not in summary  # the name given to observe.init is no agent of runs


def test_timeline_trace_and_event_details(bin_dir, recorded_by_0_0_3):
    backend = recorded_by_0_0_3
    timeline, trace, tools, failed = calls(
        bin_dir, backend, ("get_run_timeline", RUN), ("get_execution_trace", RUN),
        ("get_event_details", {**RUN, "event_type": "tool_call"}),
        ("get_event_details", {"agent_name": "FailingAgent", "run_name": "run 1", "event_type": "agent_end"}))

    summary, data = answer(timeline)
    assert data == route(backend, "/api/runs/ResearchAgent/run 1/timeline")
    types = [e["event_type"] for e in data["events"]]
    assert types[0] == "agent_start" and types[-1] == "agent_end" and len(types) == 5, types
    assert "llm_call gpt-4o: 1200 in / 700 out tokens" in summary, summary

    summary, data = answer(trace)
    assert data == route(backend, "/api/runs/ResearchAgent/run 1/trace")
    start = data["execution_tree"][0]
    assert start["event_type"] == "agent_start"
    assert sorted(c["event_type"] for c in start["children"]) == ["llm_call", "tool_call", "tool_call"]
    assert "No events found" not in summary
    assert [line.startswith("  - ") for line in summary.splitlines()[2:5]] == [True] * 3, summary

    summary, data = answer(tools)
    by_tool = {e["data"]["tool_name"]: e for e in data["events"]}
    assert set(by_tool) == {"web_search", "flaky_tool"}
    assert '## tool_call web_search' in summary
    assert 'Input:\n{\n  "query": "programming"\n}' in summary, summary
    assert 'Output:\n[\n  "result about programming"\n]' in summary, summary
    assert "Error: RuntimeError: tool exploded" in summary
    assert "undefined" not in summary

    summary, _ = answer(failed)
    assert "failed: ValueError: agent gave up" in summary, summary


def test_search_with_a_time_range_and_days(bin_dir, recorded_by_0_0_3):
    backend = recorded_by_0_0_3
    hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent, older, today, unknown = calls(
        bin_dir, backend, ("search_events", {"since": hour_ago, "event_type": "llm_call"}),
        ("search_events", {"until": hour_ago}), ("get_cost_timeline", {"days": 1}),
        ("get_run_timeline", {"agent_name": "ResearchAgent", "run_name": "run 9"}))
    _, data = answer(recent)
    assert data == route(backend, "/api/events", since=hour_ago, type="llm_call")
    assert [e["data"]["model"] for e in data["events"]] == ["gpt-4o"]
    summary, data = answer(older)
    assert data["total"] == 0 and summary.startswith("No events"), summary
    summary, data = answer(today)
    (day,) = data["days"]
    assert day["cost"] == pytest.approx(COST) and usd(day["cost"]) in summary, summary
    assert "run 9" in failure(unknown)
