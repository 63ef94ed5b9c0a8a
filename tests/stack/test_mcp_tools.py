"""Every tool of gati-mcp-server, called with the `mcp` client over stdio against a backend holding
known runs (issue 20).

Each answer is checked three ways: its structured content is exactly what the backend itself
answers on the route the tool asks (an array wrapped in an object), which also passes the tool's
output schema (the client validates it); its first text block is a summary in words that says
the backend's figures; and its second text block is the same JSON, for clients that read text only.

The seeded runs, in gati 0.0.3's event shapes:
- support-bot "checkout flow" on 2026-01-29: agent_start > llm_call gpt-4o-mini (100 in, 50 out,
  $0.00075, 850 ms) > tool_call lookup_order (input and output), agent_end.
- support-bot "run 1" (numbered by the backend) on 2026-01-31: agent_start > llm_call gpt-4o (1200
  in, 700 out, $0.01), tool_call flaky_tool that failed, agent_end.
- triage-bot "triage 1" on 2026-01-31: agent_start > llm_call gpt-4o-mini (10 in, 5 out, $0.0001),
  agent_end.
"""

import json
import os
import urllib.parse
from datetime import datetime, timedelta, timezone

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from gati_testing import Service, request

READ_TOOLS = {
    # gati 0.0.3's tools, under its names
    "list_agents", "get_agent_stats", "list_runs", "get_run_details", "get_run_timeline", "get_execution_trace",
    "compare_runs", "search_events", "get_cost_breakdown", "get_global_metrics", "get_event_details",
    # ours
    "get_run", "get_summary", "get_event", "compare_agents", "get_cost_timeline", "get_tokens_timeline",
    "list_sessions", "get_session", "get_latency",
}
WRITE_TOOLS = {"rename_run", "delete_run", "delete_agent"}
REQUIRED = {
    "get_agent_stats": ["agent_name"], "get_run_details": ["agent_name", "run_name"],
    "get_run_timeline": ["agent_name", "run_name"], "get_execution_trace": ["agent_name", "run_name"],
    "compare_runs": ["agent_name", "run_names"], "get_event_details": ["agent_name", "run_name"],
    "get_event": ["event_id"], "rename_run": ["agent_name", "new_run_name", "run_name"],
    "delete_run": ["agent_name", "run_name"], "delete_agent": ["agent_name"], "get_session": ["session_id"],
}


def event(event_id, event_type, run, ts, parent=None, **fields):
    """An event as the gati 0.0.3 SDK posts it: its fields in `data` and again at the top level."""
    run_id, run_name, agent = run
    return {"event_id": event_id, "event_type": event_type, "run_id": run_id, "run_name": run_name,
            "agent_name": agent, "timestamp": ts, "parent_event_id": parent, "previous_event_id": None,
            "data": dict(fields), **fields}


CHECKOUT = ("r-checkout", "checkout flow", "support-bot")
REFUND = ("r-refund", "temp_3f1c", "support-bot")
TRIAGE = ("r-triage", "triage 1", "triage-bot")
SEED = [
    event("s1", "agent_start", CHECKOUT, "2026-01-29T10:00:00", input={"q": "where is order 42?"}),
    event("l1", "llm_call", CHECKOUT, "2026-01-29T10:00:01", parent="s1", model="gpt-4o-mini",
          system_prompt="You are helpful.", prompt="Find order 42", completion="Calling lookup_order",
          tokens_in=100, tokens_out=50, latency_ms=850.0, cost=0.00075),
    event("t1", "tool_call", CHECKOUT, "2026-01-29T10:00:02", parent="l1", tool_name="lookup_order",
          input={"order": 42}, output={"status": "shipped"}, latency_ms=120.0),
    event("e1", "agent_end", CHECKOUT, "2026-01-29T10:00:03", parent="s1", output={"answer": "shipped"}),
    event("s2", "agent_start", REFUND, "2026-01-31T09:00:00", input={"q": "refund order 7"}),
    event("l2", "llm_call", REFUND, "2026-01-31T09:00:01", parent="s2", model="gpt-4o", prompt="Refund order 7",
          completion="Refund issued", tokens_in=1200, tokens_out=700, latency_ms=2000.0, cost=0.01),
    event("t2", "tool_call", REFUND, "2026-01-31T09:00:03", parent="s2", tool_name="flaky_tool",
          input={"query": "x"}, output=None, error={"type": "RuntimeError", "message": "tool exploded"},
          latency_ms=5.0),
    event("e2", "agent_end", REFUND, "2026-01-31T09:00:04", parent="s2", output={"answer": "refunded"}),
    event("s3", "agent_start", TRIAGE, "2026-01-31T15:00:00", input={"ticket": 9}),
    event("l3", "llm_call", TRIAGE, "2026-01-31T15:00:01", parent="s3", model="gpt-4o-mini", prompt="Triage 9",
          completion="low priority", tokens_in=10, tokens_out=5, latency_ms=300.0, cost=0.0001),
    event("e3", "agent_end", TRIAGE, "2026-01-31T15:00:02", parent="s3", output={"priority": "low"}),
]


@pytest.fixture(scope="module")
def seeded(bin_dir, tmp_path_factory):
    """One backend holding SEED, shared by the tests that only read."""
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path_factory.mktemp("mcp") / "data")})
    status, body = request("POST", service.url + "/api/events", {"events": SEED})
    assert status == 200 and body["stored"] == len(SEED), body
    yield service
    service.stop()


def route(service, path, **params):
    """What the backend itself answers on a route (200 expected)."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    status, body = request("GET", service.url + urllib.parse.quote(path) + (f"?{query}" if query else ""))
    assert status == 200, (path, params, body)
    return body


def calls(bin_dir, service, *tool_calls, writes=False):
    """The results of the (name, arguments) `tool_calls`, in one stdio session. A call the
    server refuses at the protocol level (bad arguments) gives its MCPError instead."""
    env = {"BACKEND_URL": service.url, **({"GATI_MCP_ALLOW_WRITES": "1"} if writes else {})}
    params = StdioServerParameters(command=str(bin_dir / "gati-mcp-server"), env=env)

    async def main():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                results = []
                for name, arguments in tool_calls:
                    try:
                        results.append(await session.call_tool(name, arguments))
                    except MCPError as e:
                        results.append(e)
                return results

    return anyio.run(main)


def answer(result):
    """(summary, data) of a successful tool answer; the JSON text must be the data."""
    assert not isinstance(result, Exception), result
    assert not result.is_error, result.content[0].text
    summary, data = result.content[0].text, result.structured_content
    assert isinstance(data, dict), data
    assert json.loads(result.content[1].text) == data
    assert not summary.lstrip().startswith("{"), f"the summary is JSON: {summary[:200]}"
    return summary, data


def failure(result):
    """The text of a tool error."""
    assert not isinstance(result, Exception), result
    assert result.is_error, result.content[0].text
    return result.content[0].text


def usd(cost):
    """The summaries' dollars: `$0.00075`, `$1.50`."""
    digits = f"{cost:.6f}".rstrip("0")
    return f"${cost:.2f}" if len(digits.split(".")[1]) < 2 else f"${digits}"


def without_events(run):
    return {k: v for k, v in run.items() if k != "events"}


# ---- the tool list --------------------------------------------------------------------------------

def test_tools_declare_required_parameters_and_output_schemas(bin_dir, seeded):
    async def main(writes):
        env = {"BACKEND_URL": seeded.url, "GATI_MCP_ALLOW_WRITES": "1" if writes else "0"}
        params = StdioServerParameters(command=str(bin_dir / "gati-mcp-server"), env=env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return (await session.list_tools()).tools

    read_only = anyio.run(main, False)
    assert {t.name for t in read_only} == READ_TOOLS
    every = anyio.run(main, True)
    assert {t.name for t in every} == READ_TOOLS | WRITE_TOOLS
    for tool in every:
        assert tool.input_schema["type"] == "object", tool.name
        assert sorted(tool.input_schema.get("required", [])) == REQUIRED.get(tool.name, []), tool.name
        assert tool.description and len(tool.description) > 40, tool.name
        if tool.name in READ_TOOLS:
            assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
            assert tool.annotations.read_only_hint is True, tool.name
        else:
            assert tool.annotations.read_only_hint is False, tool.name
    destructive = {t.name for t in every if t.annotations.destructive_hint}
    assert destructive == {"delete_run", "delete_agent"}


def test_missing_required_parameters_are_refused_by_name(bin_dir, seeded):
    timeline, trace, compare, event, empty = calls(
        bin_dir, seeded, ("get_run_timeline", {"agent_name": "support-bot"}), ("get_execution_trace", {}),
        ("compare_runs", {"agent_name": "support-bot"}), ("get_event", {}),
        ("compare_runs", {"agent_name": "support-bot", "run_names": []}))
    for result, field in [(timeline, "run_name"), (trace, "agent_name"), (compare, "run_names"),
                          (event, "event_id")]:
        text = str(result) if isinstance(result, Exception) else failure(result)
        assert field in text, text
    assert "run_names" in failure(empty)


# ---- agents ---------------------------------------------------------------------------------------

def test_list_agents_and_their_stats(bin_dir, seeded):
    every, page, stats, stats_late, unknown, compared, compared_late = calls(
        bin_dir, seeded, ("list_agents", {}), ("list_agents", {"limit": 1, "offset": 1}),
        ("get_agent_stats", {"agent_name": "support-bot"}),
        ("get_agent_stats", {"agent_name": "support-bot", "since": "2026-01-30"}),
        ("get_agent_stats", {"agent_name": "nobody"}),
        ("compare_agents", {}), ("compare_agents", {"since": "2026-01-30T00:00:00Z"}))

    summary, data = answer(every)
    agents = route(seeded, "/api/agents")
    assert data == {"agents": agents, "total": 2, "offset": 0}
    support = next(a for a in agents if a["name"] == "support-bot")
    assert (support["run_count"], support["total_tokens"], support["error_count"]) == (2, 2050, 1)
    assert summary.startswith("2 agents, most recently active first:")
    assert (f"support-bot: 2 runs, 8 events, 2050 tokens (1300 in, 750 out), {usd(support['total_cost'])}, "
            f"7.0 s, 1 error, last active {support['last_activity']}") in summary, summary

    summary, data = answer(page)
    assert data == {"agents": route(seeded, "/api/agents", limit=1, offset=1), "total": 2, "offset": 1}
    assert len(data["agents"]) == 1 and "showing 2-2" in summary, summary

    summary, data = answer(stats)
    metrics = route(seeded, "/api/agents/support-bot/metrics")
    assert data == metrics
    assert (metrics["total_runs"], metrics["total_tokens_in"], metrics["total_tokens_out"]) == (2, 1300, 750)
    assert metrics["total_cost"] == pytest.approx(0.01075)
    assert f"- Cost: {usd(metrics['total_cost'])} in all, {usd(metrics['avg_cost_per_run'])} per run" in summary
    assert "- Tokens: 1300 in and 750 out in all; 650 in and 375 out per run on average." in summary, summary

    summary, data = answer(stats_late)
    assert data == route(seeded, "/api/agents/support-bot/metrics", since="2026-01-30")
    assert (data["total_runs"], data["total_cost"]) == (1, 0.01) and "1 run, 4 events" in summary, summary

    assert "nobody" in failure(unknown)

    summary, data = answer(compared)
    assert data == {"agents": route(seeded, "/api/metrics/agents-comparison")}
    assert [a["agent_name"] for a in data["agents"]] == ["support-bot", "triage-bot"]
    assert summary.index("| support-bot | 2 |") < summary.index("| triage-bot | 1 |"), summary
    summary, data = answer(compared_late)
    late = route(seeded, "/api/metrics/agents-comparison", since="2026-01-30T00:00:00Z")
    assert data == {"agents": late}
    assert {a["agent_name"]: a["runs"] for a in late} == {"support-bot": 1, "triage-bot": 1}


# ---- runs -----------------------------------------------------------------------------------------

def test_list_and_get_runs(bin_dir, seeded):
    every, of_agent, named, completed, late, unknown, by_id, by_name, details, neither = calls(
        bin_dir, seeded, ("list_runs", {}), ("list_runs", {"agent_name": "support-bot"}),
        ("list_runs", {"run_name": "checkout flow"}), ("list_runs", {"status": "completed"}),
        ("list_runs", {"since": "2026-01-30", "agent_name": "support-bot"}), ("list_runs", {"agent_name": "nobody"}),
        ("get_run", {"run_id": "r-checkout"}), ("get_run", {"run_name": "run 1", "agent_name": "support-bot"}),
        ("get_run_details", {"agent_name": "support-bot", "run_name": "checkout flow"}), ("get_run", {}))

    summary, data = answer(every)
    assert data == route(seeded, "/api/runs")
    assert [r["run_id"] for r in data["runs"]] == ["r-triage", "r-refund", "r-checkout"]
    assert summary.startswith("3 runs, newest first:"), summary
    summary, data = answer(of_agent)
    assert data == route(seeded, "/api/runs", agent="support-bot")
    assert [r["run_name"] for r in data["runs"]] == ["run 1", "checkout flow"]
    assert summary.startswith("2 runs of support-bot, newest first:"), summary
    assert ('"checkout flow" (run_id r-checkout) of support-bot: started 2026-01-29T10:00:00.000000Z, completed, '
            '4 events, 150 tokens (100 in, 50 out), $0.00075, 3.0 s, 0 errors') in summary, summary
    _, data = answer(named)
    assert data == route(seeded, "/api/runs", name="checkout flow") and data["total"] == 1
    _, data = answer(completed)
    assert data == route(seeded, "/api/runs", status="completed") and data["total"] == 3
    _, data = answer(late)
    assert data == route(seeded, "/api/runs", since="2026-01-30", agent="support-bot")
    assert [r["run_id"] for r in data["runs"]] == ["r-refund"]
    assert "nobody" in failure(unknown)

    summary, data = answer(by_id)
    assert data == route(seeded, "/api/runs/r-checkout")
    assert [e["event_id"] for e in data["events"]] == ["s1", "l1", "t1", "e1"]
    lines = summary.splitlines()
    assert lines[1] == "Events in time order:" and lines[2].startswith("1. 2026-01-29T10:00:00"), summary
    assert lines[3].startswith("2. 2026-01-29T10:00:01") and "llm_call gpt-4o-mini: 100 in / 50 out tokens, " \
        "$0.00075, 850 ms" in lines[3], summary
    _, data = answer(by_name)
    assert data == route(seeded, "/api/runs/support-bot/run 1") and data["run_id"] == "r-refund"

    summary, data = answer(details)
    assert data == without_events(route(seeded, "/api/runs/support-bot/checkout flow"))
    assert (data["status"], data["event_count"], data["total_cost"]) == ("completed", 4, 0.00075)
    assert "completed, 4 events" in summary and "$0.00075" in summary, summary

    assert "run_id" in failure(neither)


def test_compare_runs(bin_dir, seeded):
    compared, none_found = calls(
        bin_dir, seeded, ("compare_runs", {"agent_name": "support-bot", "run_names": ["checkout flow", "run 1", "nope"]}),
        ("compare_runs", {"agent_name": "support-bot", "run_names": ["nope"]}))
    summary, data = answer(compared)
    assert data["runs"] == [without_events(route(seeded, "/api/runs/support-bot/checkout flow")),
                            without_events(route(seeded, "/api/runs/support-bot/run 1"))]
    assert [m["run_name"] for m in data["missing"]] == ["nope"] and "nope" in data["missing"][0]["error"]
    assert '| checkout flow | 4 | 100 | 50 | $0.00075 | 3.0 s | 0 |' in summary, summary
    assert '| run 1 | 4 | 1200 | 700 | $0.01 | 4.0 s | 1 |' in summary, summary
    assert 'Most expensive: "run 1" ($0.01); cheapest: "checkout flow" ($0.00075).' in summary
    assert 'Not found: "nope"' in summary
    assert "nope" in failure(none_found)


def test_run_timeline_and_execution_trace(bin_dir, seeded):
    timeline, trace, missing, missing_trace = calls(
        bin_dir, seeded, ("get_run_timeline", {"agent_name": "support-bot", "run_name": "checkout flow"}),
        ("get_execution_trace", {"agent_name": "support-bot", "run_name": "checkout flow"}),
        ("get_run_timeline", {"agent_name": "support-bot", "run_name": "nope"}),
        ("get_execution_trace", {"agent_name": "triage-bot", "run_name": "checkout flow"}))

    summary, data = answer(timeline)
    assert data == route(seeded, "/api/runs/support-bot/checkout flow/timeline")
    assert [e["event_id"] for e in data["events"]] == ["s1", "l1", "t1", "e1"]
    lines = summary.splitlines()
    assert lines[0].startswith('Timeline of run "checkout flow" of support-bot: 4 events over 3.0 s'), summary
    assert [line.split(" ")[2] for line in lines[1:5]] == ["agent_start", "llm_call", "tool_call", "agent_end"]
    assert "tool_call lookup_order: 120 ms" in lines[3], summary

    summary, data = answer(trace)
    assert data == route(seeded, "/api/runs/support-bot/checkout flow/trace")
    start, end = data["execution_tree"]
    assert (start["event_id"], end["event_id"]) == ("s1", "e1")
    assert [c["event_id"] for c in start["children"]] == ["l1"]
    assert [c["event_id"] for c in start["children"][0]["children"]] == ["t1"]
    lines = summary.splitlines()
    assert lines[0] == 'Execution trace of run "checkout flow" of support-bot: $0.00075, 100 tokens in, 50 out, 3.0 s.'
    assert lines[1].startswith("- 2026-01-29T10:00:00") and "agent_start" in lines[1], summary
    assert "[with what happened inside it: 3 events, $0.00075, 150 tokens, " in lines[1], summary
    assert lines[2].startswith("  - ") and "llm_call gpt-4o-mini" in lines[2], summary
    assert lines[3].startswith("    - ") and "tool_call lookup_order" in lines[3], summary
    assert lines[4].startswith("- ") and "agent_end" in lines[4], summary

    # 0.0.3's trace tool said "No events found" for every run; ours says what is missing.
    for result in (missing, missing_trace):
        text = failure(result)
        assert "404" in text and "checkout flow" in text or "nope" in text, text


# ---- events ---------------------------------------------------------------------------------------

def test_search_events_with_time_range(bin_dir, seeded):
    found, late, early, aliased, bad = calls(
        bin_dir, seeded, ("search_events", {"event_type": "tool_call", "query": "lookup"}),
        ("search_events", {"event_type": "llm_call", "since": "2026-01-31T00:00:00Z"}),
        ("search_events", {"until": "2026-01-30T00:00:00Z", "agent_name": "support-bot", "limit": 2}),
        ("search_events", {"event_type": "llm_call", "start_time": "2026-01-31T12:00:00Z"}),
        ("search_events", {"since": "yesterday"}))

    summary, data = answer(found)
    assert data == route(seeded, "/api/events", type="tool_call", q="lookup")
    assert [e["event_id"] for e in data["events"]] == ["t1"]
    assert summary.startswith('1 event of type "tool_call" matching "lookup", newest first:'), summary
    assert "tool_call lookup_order: 120 ms (event_id t1, run \"checkout flow\" of support-bot)" in summary, summary

    summary, data = answer(late)
    assert data == route(seeded, "/api/events", type="llm_call", since="2026-01-31T00:00:00Z")
    assert [e["event_id"] for e in data["events"]] == ["l3", "l2"]
    assert "gpt-4o: 1200 in / 700 out tokens, $0.01, 2.0 s" in summary, summary

    summary, data = answer(early)
    assert data == route(seeded, "/api/events", until="2026-01-30T00:00:00Z", agent="support-bot", limit=2)
    assert [e["event_id"] for e in data["events"]] == ["e1", "t1"] and data["total"] == 4
    assert "4 events" in summary and "showing 1-2" in summary, summary

    _, data = answer(aliased)  # gati 0.0.3's names for the range
    assert [e["event_id"] for e in data["events"]] == ["l3"]

    text = failure(bad)
    assert "since" in text and "yesterday" in text, text


def test_event_details_show_prompts_and_tool_input_and_output(bin_dir, seeded):
    tools, llm, by_id, every, missing, one = calls(
        bin_dir, seeded, ("get_event_details", {"agent_name": "support-bot", "run_name": "run 1",
                                                "event_type": "tool_call"}),
        ("get_event_details", {"agent_name": "support-bot", "run_name": "checkout flow", "event_type": "llm_call"}),
        ("get_event_details", {"agent_name": "support-bot", "run_name": "r-checkout", "event_type": "tool_call"}),
        ("get_event_details", {"agent_name": "triage-bot", "run_name": "triage 1"}),
        ("get_event_details", {"agent_name": "support-bot", "run_name": "nope"}),
        ("get_event", {"event_id": "l1"}))

    summary, data = answer(tools)
    assert data == route(seeded, "/api/events", agent="support-bot", run_name="run 1", type="tool_call")
    assert [e["event_id"] for e in data["events"]] == ["t2"]
    assert "## tool_call flaky_tool" in summary
    assert 'Input:\n{\n  "query": "x"\n}' in summary, summary
    assert "Output:\n(none recorded)" in summary and "Error: RuntimeError: tool exploded" in summary, summary
    assert "undefined" not in summary

    summary, _ = answer(llm)
    for part in ("## llm_call gpt-4o-mini", "System prompt:\nYou are helpful.", "Prompt:\nFind order 42",
                 "Completion:\nCalling lookup_order", "100 in / 50 out tokens, $0.00075, 850 ms"):
        assert part in summary, (part, summary)

    summary, data = answer(by_id)  # a run_id where the name goes finds the run too
    assert [e["event_id"] for e in data["events"]] == ["t1"]
    assert 'Output:\n{\n  "status": "shipped"\n}' in summary, summary

    summary, data = answer(every)
    assert [e["event_id"] for e in data["events"]] == ["e3", "l3", "s3"]
    assert '## agent_end\nevent_id e3' in summary, summary
    assert 'Data:\n{\n  "output": {\n    "priority": "low"\n  }\n}' in summary, summary

    assert "nope" in failure(missing)

    summary, data = answer(one)
    assert data == {**route(seeded, "/api/events/l1"), "children": route(seeded, "/api/events/l1/children")}
    assert [c["event_id"] for c in data["children"]] == ["t1"]
    assert "Completion:\nCalling lookup_order" in summary and 'In run "checkout flow" of support-bot.' in summary
    assert "- 2026-01-29T10:00:02" in summary and "tool_call lookup_order: 120 ms (event_id t1)" in summary, summary


# ---- totals ---------------------------------------------------------------------------------------

def test_summary_and_global_metrics(bin_dir, seeded):
    summary_answer, metrics, late = calls(bin_dir, seeded, ("get_summary", {}), ("get_global_metrics", {}),
                                          ("get_global_metrics", {"since": "2026-01-30T00:00:00Z"}))
    summary, data = answer(summary_answer)
    totals = route(seeded, "/api/summary")
    assert data == {**totals, "by_agent": route(seeded, "/api/agents", limit=500)}
    assert (totals["agents"], totals["runs"], totals["events"], totals["total_tokens"]) == (2, 3, 11, 2065)
    assert summary.startswith(f"gati holds 2 agents, 3 runs, 11 events: 2065 tokens (1310 in, 755 out), "
                              f"{usd(totals['total_cost'])}, "), summary
    assert usd(totals["total_cost"]) == "$0.01085"

    summary, data = answer(metrics)
    everything = route(seeded, "/api/metrics/summary")
    assert data == everything and everything["total_runs"] == 3
    assert summary.startswith("Global metrics: 2 agents, 3 runs, 11 events"), summary
    assert f"- Cost: $0.01085 in all, {usd(everything['avg_cost_per_run'])} per run on average." in summary, summary
    assert "- Costliest agents: support-bot ($0.01075), triage-bot ($0.0001)." in summary, summary
    assert "- Busiest agents: support-bot (2 runs), triage-bot (1 run)." in summary, summary

    summary, data = answer(late)
    assert data == route(seeded, "/api/metrics/summary", since="2026-01-30T00:00:00Z")
    assert data["total_runs"] == 2 and data["total_cost"] == pytest.approx(0.0101)
    assert "2 runs" in summary and "$0.0101 in all" in summary, summary


def test_cost_breakdown_by_model(bin_dir, seeded):
    every, triage, late = calls(bin_dir, seeded, ("get_cost_breakdown", {}),
                                ("get_cost_breakdown", {"agent_name": "triage-bot"}),
                                ("get_cost_breakdown", {"until": "2026-01-30T00:00:00Z"}))
    summary, data = answer(every)
    models = route(seeded, "/api/metrics/models")
    assert data == {"models": models}
    assert [(m["model"], m["calls"], m["tokens_in"], m["tokens_out"]) for m in models] == [
        ("gpt-4o", 1, 1200, 700), ("gpt-4o-mini", 2, 110, 55)]
    assert summary.startswith("Cost by model, costliest first:"), summary
    assert "| gpt-4o | 1 | $0.01 | 1200 | 700 | 2.0 s | 0 |" in summary, summary
    assert f"| gpt-4o-mini | 2 | {usd(models[1]['cost'])} | 110 | 55 | {round(models[1]['avg_latency_ms'])} ms |" \
        in summary, summary

    summary, data = answer(triage)
    assert data == {"models": route(seeded, "/api/metrics/models", agent="triage-bot")}
    assert [(m["model"], m["calls"]) for m in data["models"]] == [("gpt-4o-mini", 1)]
    assert "Cost by model of triage-bot" in summary

    _, data = answer(late)
    assert data == {"models": route(seeded, "/api/metrics/models", until="2026-01-30T00:00:00Z")}
    assert [(m["model"], m["calls"]) for m in data["models"]] == [("gpt-4o-mini", 1)]


def test_cost_and_tokens_per_day_by_the_events_own_days(bin_dir, seeded):
    days = {"since": "2026-01-29", "until": "2026-02-01"}
    cost, tokens, support = calls(bin_dir, seeded, ("get_cost_timeline", days), ("get_tokens_timeline", days),
                                  ("get_cost_timeline", {**days, "agent_name": "support-bot"}))
    summary, data = answer(cost)
    assert data == {"days": route(seeded, "/api/metrics/cost-timeline", **days)}
    assert [(d["date"], d["cost"]) for d in data["days"]] == [
        ("2026-01-29", 0.00075), ("2026-01-30", 0), ("2026-01-31", pytest.approx(0.0101))]
    assert summary.startswith("Cost per day from 2026-01-29 to 2026-01-31 (3 days): $0.01085 in all."), summary
    assert "Days with cost: 2026-01-29 $0.00075; 2026-01-31 $0.0101." in summary, summary

    summary, data = answer(tokens)
    assert data == {"days": route(seeded, "/api/metrics/tokens-timeline", **days)}
    assert [(d["date"], d["tokens_in"], d["tokens_out"]) for d in data["days"]] == [
        ("2026-01-29", 100, 50), ("2026-01-30", 0, 0), ("2026-01-31", 1210, 705)]
    assert "1310 in and 755 out in all" in summary
    assert "Days with tokens: 2026-01-29 100 in / 50 out; 2026-01-31 1210 in / 705 out." in summary, summary

    _, data = answer(support)
    assert data == {"days": route(seeded, "/api/metrics/cost-timeline", agent="support-bot", **days)}
    assert data["days"][-1]["cost"] == pytest.approx(0.01)


def test_timelines_over_the_last_days(bin_dir, backend_with_today):
    week, bad = calls(bin_dir, backend_with_today, ("get_cost_timeline", {"days": 7}),
                      ("get_tokens_timeline", {"days": 0}))
    summary, data = answer(week)
    assert data == {"days": route(backend_with_today, "/api/metrics/cost-timeline", days=7)}
    today = datetime.now(timezone.utc).date().isoformat()
    assert len(data["days"]) == 7 and data["days"][-1]["date"] == today
    assert f"Days with cost: {today} $0.002." in summary, summary
    text = str(bad) if isinstance(bad, Exception) else failure(bad)
    assert "days" in text, text


@pytest.fixture
def backend_with_today(backend):
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    earlier = max(now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=0, microsecond=0))  # still today
    run = ("r-today", "today", "today-bot")
    events = [event("today-1", "llm_call", run, earlier.isoformat(), model="gpt-4o-mini",
                    tokens_in=3, tokens_out=2, cost=0.002)]
    status, body = request("POST", backend.url + "/api/events", {"events": events})
    assert status == 200, body
    return backend


# ---- writes ---------------------------------------------------------------------------------------

def test_rename_and_delete_only_when_allowed(bin_dir, backend):
    status, body = request("POST", backend.url + "/api/events", {"events": SEED})
    assert status == 200, body

    (refused,) = calls(bin_dir, backend, ("delete_agent", {"agent_name": "triage-bot"}))
    text = failure(refused)
    assert "`delete_agent` changes data" in text and "GATI_MCP_ALLOW_WRITES=1" in text, text
    assert request("GET", backend.url + "/api/agents/triage-bot")[0] == 200

    renamed, deleted, gone, dropped = calls(
        bin_dir, backend, ("rename_run", {"agent_name": "support-bot", "run_name": "checkout flow",
                                          "new_run_name": "checkout v2"}),
        ("delete_run", {"agent_name": "support-bot", "run_name": "run 1"}),
        ("delete_run", {"agent_name": "support-bot", "run_name": "run 1"}),
        ("delete_agent", {"agent_name": "triage-bot"}), writes=True)
    summary, data = answer(renamed)
    assert summary == 'Renamed run "checkout flow" of support-bot to "checkout v2".'
    assert data["run_name"] == "checkout v2" and data["run_id"] == "r-checkout"
    assert route(backend, "/api/runs/support-bot/checkout v2")["run_id"] == "r-checkout"
    summary, data = answer(deleted)
    assert data["deleted_events"] == 4 and data["run_id"] == "r-refund" and summary == data["message"]
    assert "run 1" in failure(gone)
    summary, data = answer(dropped)
    assert data["deleted_runs"] == 1 and summary == data["message"]
    assert request("GET", backend.url + "/api/agents/triage-bot")[0] == 404
    metrics = route(backend, "/api/metrics/summary")
    assert (metrics["total_agents"], metrics["total_runs"], metrics["total_cost"]) == (1, 1, 0.00075)


def test_a_bad_writes_setting_stops_the_server(bin_dir):
    import subprocess

    result = subprocess.run([bin_dir / "gati-mcp-server"], env={**os.environ, "GATI_MCP_ALLOW_WRITES": "maybe"},
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    assert result.returncode != 0 and "GATI_MCP_ALLOW_WRITES" in result.stderr and "maybe" in result.stderr
