"""OpenTelemetry into gati, seen where a user looks (issue 28): each real library of
requirements.txt (openai-v2 in both semconv modes, OpenLLMetry, OpenInference) instruments the
openai client against the local stub and exports its one run to the real backend; then the real
gati-mcp-server's tools and the dashboard in Chromium show that run as the backend's API does:
its agent, the LLM calls with model, tokens and cost, the tool call under its parent, and the
session (test_otel_ingest.py checks the API itself)."""

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).parent)]

import openai_stub  # noqa: E402
from agent import AGENT, SESSION  # noqa: E402
from gati_testing import Service  # noqa: E402
from otel_helpers import RUNS, run_agent  # noqa: E402
from test_dashboard_interaction import go, money, page  # noqa: E402,F401 (page: a fixture)
from test_dashboard_pages import chromium, dashboard_for, settle  # noqa: E402,F401 (chromium: a fixture)
from test_mcp_tools import answer, calls, route, usd  # noqa: E402

NAMES = [name for name, _, _ in RUNS]
USAGE = [openai_stub.TOOL_CALL_USAGE, openai_stub.ANSWER_USAGE]  # the two chat calls, in time order


@pytest.fixture(scope="module")
def exported(bin_dir, tmp_path_factory):
    """One backend holding one run of each library (exported at once, as a user configures the
    exporter); its dashboard; the trace id of each library's run."""
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path_factory.mktemp("otel-views"))})
    stub = openai_stub.serve()
    try:
        openai_url = f"http://127.0.0.1:{stub.server_address[1]}/v1"
        with ThreadPoolExecutor(max_workers=len(RUNS)) as pool:
            traces = list(pool.map(lambda run: run_agent(run[1], openai_url, backend.url, run[2], by_environment=True),
                                   RUNS))
        stub.shutdown()
        dashboard = dashboard_for(bin_dir, backend.url)
        try:
            yield backend, dashboard, dict(zip(NAMES, traces))
        finally:
            dashboard.stop()
    finally:  # a failed agent or dashboard too: no backend is left running
        stub.shutdown()
        status = backend.stop()
    assert status == 0


def llm_calls(run):
    """The run's LLM calls in time order, as the API gives them."""
    return sorted((e for e in run["events"] if e["event_type"] == "llm_call"), key=lambda e: e["timestamp"])


# ---- the MCP tools --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_the_mcp_tools_show_each_librarys_run_and_its_session(bin_dir, exported, name):
    backend, _, traces = exported
    trace_id = traces[name]
    listed, one, trace, session = calls(
        bin_dir, backend, ("list_runs", {"agent_name": AGENT}), ("get_run", {"run_id": trace_id}),
        ("get_execution_trace", {"agent_name": AGENT, "run_name": trace_id}),
        ("get_session", {"session_id": SESSION}))
    run = route(backend, f"/api/runs/{trace_id}")
    llm = llm_calls(run)
    assert [(e["model"], e["tokens_in"], e["tokens_out"]) for e in llm] == [(openai_stub.MODEL, *u) for u in USAGE]
    tokens = f"{run['total_tokens']} tokens ({run['tokens_in']} in, {run['tokens_out']} out)"
    assert tokens == "132 tokens (106 in, 26 out)", "the stub's usage, summed"

    summary, data = answer(listed)
    assert data == route(backend, "/api/runs", agent=AGENT)
    assert {r["run_id"] for r in data["runs"]} == set(traces.values()), "one run per trace, all the agent's"
    (line,) = [line for line in summary.splitlines() if f"(run_id {trace_id})" in line]
    assert f"of {AGENT}:" in line and tokens in line and usd(run["total_cost"]) in line, line

    summary, data = answer(one)
    assert data == run and data["agent_name"] == AGENT and data["session_id"] == SESSION
    for e in llm:
        assert f"llm_call {openai_stub.MODEL}: {e['tokens_in']} in / {e['tokens_out']} out tokens, {usd(e['cost'])}" \
            in summary, summary
    assert "tool_call get_weather" in summary, summary

    summary, data = answer(trace)
    assert data == route(backend, f"/api/runs/{AGENT}/{trace_id}/trace")
    (top,) = data["execution_tree"]
    assert [c["event_type"] for c in top["children"]] == ["llm_call", "tool_call", "llm_call"]
    lines = summary.splitlines()
    assert f"{run['tokens_in']} tokens in, {run['tokens_out']} out" in lines[0], summary
    assert lines[1].startswith("- ") and len(lines) == 5, summary
    children = lines[2:]
    assert all(child.startswith("  - ") for child in children), "the three spans are under the root"
    for child, wanted in zip(children, [f"llm_call {openai_stub.MODEL}", "tool_call get_weather",
                                        f"llm_call {openai_stub.MODEL}"]):
        assert wanted in child, summary

    summary, data = answer(session)
    assert data == route(backend, f"/api/sessions/{SESSION}", limit=50)
    assert data["run_count"] == len(RUNS) and set(data["agent_names"]) == {AGENT}
    assert trace_id in {t["run_id"] for t in data["runs"]}
    turns = summary.split("Runs in time order:\n")[1]
    assert f"(run_id {trace_id}) of {AGENT}, completed" in turns, summary


# ---- the dashboard --------------------------------------------------------------------------------

def texts(locator):
    """The text of each element, as written (inner text would follow the style's capitals)."""
    return [t.strip() for t in locator.all_text_contents()]


@pytest.mark.parametrize("name", NAMES)
def test_the_dashboard_shows_each_librarys_run_as_a_tree(chromium, exported, page, artifacts, name):
    backend, dashboard, traces = exported
    trace_id = traces[name]
    run = route(backend, f"/api/runs/{trace_id}")
    (top,) = route(backend, f"/api/runs/{AGENT}/{trace_id}/trace")["execution_tree"]
    llm = llm_calls(run)
    (tool,) = [e for e in run["events"] if e["event_type"] == "tool_call"]

    page.goto(f"{dashboard.url}/#/run/{trace_id}")
    n = settle(page)
    root = page.locator(f"li[data-event-id='{top['event_id']}']")
    below = root.locator("> ol.children > li.event")
    assert [li.get_attribute("data-event-id") for li in below.all()] == [c["event_id"] for c in top["children"]]
    assert texts(below.locator("> .event-row .event-name")) == [openai_stub.MODEL, "get_weather", openai_stub.MODEL]
    tool_row = root.locator(f"> ol.children > li[data-event-id='{tool['event_id']}']")
    assert tool_row.count() == 1, "the tool is under its parent"
    for e in llm:
        facts = page.locator(f"li[data-event-id='{e['event_id']}'] > .event-row .event-facts").inner_text()
        assert facts.startswith(f"{e['total_tokens']} tokens · {money(e['cost'])} · "), facts
    totals = dict(zip(texts(page.locator(".run-totals dt")), texts(page.locator(".run-totals dd"))))
    assert totals["Tokens"] == f"{run['total_tokens']} ({run['tokens_in']} in / {run['tokens_out']} out)"
    assert totals["Cost"] == money(run["total_cost"]) and totals["Events"] == str(run["event_count"]), totals

    # Each LLM call's detail: its model and tokens.
    for e, (tokens_in, tokens_out) in zip(llm, USAGE):
        n = go(page, lambda: page.click(f"li[data-event-id='{e['event_id']}'] > .event-row .event-name"), n)
        detail = page.locator("aside.detail")
        facts = dict(zip(texts(detail.locator(".facts dt")), texts(detail.locator(".facts dd"))))
        assert (facts["Model"], facts["Tokens in"], facts["Tokens out"]) == (openai_stub.MODEL, str(tokens_in),
                                                                             str(tokens_out))
        assert facts["Cost"] == money(e["cost"]) and facts["Parent"] == top["event_id"], facts
    page.screenshot(path=str(artifacts / f"dashboard-otel-run-{name}.png"), full_page=True)

    n = go(page, lambda: page.click("a.button:text-is('Its session')"), n)
    assert page.url.endswith(f"#/session/{SESSION}")
    assert page.locator(f"li.turn a.run-name[href='#/run/{trace_id}']").count() == 1


def test_the_dashboard_lists_the_libraries_agent(chromium, exported, page):
    backend, dashboard, _ = exported
    (agent,) = route(backend, "/api/agents")
    assert (agent["name"], agent["run_count"], agent["total_tokens"]) == (AGENT, len(RUNS), len(RUNS) * (106 + 26))
    page.goto(f"{dashboard.url}/#/")
    settle(page)
    (row,) = page.locator("tbody tr").all()
    cells = texts(row.locator("td"))
    assert cells[:3] == [AGENT, str(len(RUNS)), str(agent["event_count"])], cells
    assert cells[4] == money(agent["total_cost"]) and cells[3].startswith(f"{agent['total_tokens']}"), cells
