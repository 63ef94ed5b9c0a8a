"""What the REAL gati 0.0.3 SDK records, on every page of the dashboard.

gati==0.0.3 (installed as tests/stack/test_upgrade_sdk.py does, kept in target/compat/) runs its README's
script (ResearchAgent with a LangChain LLM call, a tool and a failing tool; FailingAgent) and a
LangGraph graph of three nodes against one backend; then the agents, metrics, agent, run, graph
and search pages show it, each checked against the backend's API. Same Chromium as every
dashboard test (test_dashboard_pages.browser).
"""

import datetime

import pytest

from gati_testing import Service, request
from test_upgrade_sdk import COST, FRAMEWORKS, JOKE, README_SCRIPT, UPSTREAM, environment, run_script
from test_dashboard_pages import dashboard_for, new_page, settle

LANGGRAPH_SCRIPT = '''
from typing import TypedDict
from gati import observe
from langgraph.graph import END, StateGraph

observe.init(name="graph_app")


class State(TypedDict):
    question: str
    answer: str
    steps: int


def plan(state):
    return {"steps": state.get("steps", 0) + 1}


def research(state):
    return {"answer": f"notes on {state['question']}", "steps": state["steps"] + 1}


def write(state):
    return {"answer": state["answer"].upper(), "steps": state["steps"] + 1}


graph = StateGraph(State)
graph.add_node("plan", plan)
graph.add_node("research", research)
graph.add_node("write", write)
graph.set_entry_point("plan")
graph.add_conditional_edges("plan", lambda s: "research" if s["steps"] < 2 else "write",
                            {"research": "research", "write": "write"})
graph.add_edge("research", "write")
graph.add_edge("write", END)
print(graph.compile().invoke({"question": "tides", "steps": 0})["answer"])
observe.flush()
'''


@pytest.fixture(scope="module")
def upstream(bin_dir, tmp_path_factory):
    """A dashboard over a backend that gati 0.0.3 sent the README script's and a LangGraph run to."""
    python = environment("venv-gati-0.0.3", [UPSTREAM, *FRAMEWORKS])
    work = tmp_path_factory.mktemp("dashboard-0.0.3")
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(work / "data")})
    try:
        for name, script, printed in [("readme", README_SCRIPT, [JOKE, "caught: agent gave up"]),
                                      ("langgraph", LANGGRAPH_SCRIPT, ["NOTES ON TIDES"])]:
            (work / name).mkdir()
            result = run_script(python, {}, backend.url, work / name, code=script)
            assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr[-5000:]}"
            assert result.stdout.splitlines() == printed, result.stdout
        dashboard = dashboard_for(bin_dir, backend.url)
        dashboard.backend = backend
        yield dashboard
        dashboard.stop()
    finally:
        backend.stop()


def api(stack, path):
    status, body = request("GET", stack.backend.url + path)
    assert status == 200, (path, body)
    return body


def only_run(stack, agent):
    (run,) = api(stack, f"/api/runs?agent={agent}")["runs"]
    return run


@pytest.fixture
def page():
    page = new_page()
    page.context.add_init_script("localStorage.setItem('gati-live', 'paused')")
    yield page
    assert not page.errors, page.errors
    page.context.close()


def visit(page, stack, hash_path):
    """Opens a view; waits until it has drawn (a visit to another view of the same page is a
    hash change: the page draws once more, so wait for a count beyond the one before)."""
    before = 0
    if page.url.startswith(stack.url):
        before = page.evaluate("Number(document.body.dataset.rendered || 0)")
    page.goto(f"{stack.url}/#{hash_path}")
    return settle(page, after=before)


def test_agents_and_metrics_pages(upstream, page, artifacts):
    visit(page, upstream, "/")
    names = api(upstream, "/api/agents")
    names = sorted(a["name"] for a in (names if isinstance(names, list) else names["agents"]))
    assert names == ["FailingAgent", "ResearchAgent", "graph_app"]
    assert sorted(page.locator("tbody a[href^='#/agent/']").all_inner_texts()) == names
    page.screenshot(path=str(artifacts / "dashboard-0.0.3-agents.png"), full_page=True)
    visit(page, upstream, "/metrics?days=7")
    week = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=6)
    summary = api(upstream, f"/api/metrics/summary?since={week.isoformat()}")
    shown = dict(zip(page.locator(".metric-cards dt").all_text_contents(), page.locator(".metric-cards dd").all_text_contents()))
    assert shown["Runs"] == str(summary["total_runs"]) == "3"
    assert shown["Cost"] == f"${COST:.4f}" == f"${summary['total_cost']:.4f}"
    models = page.evaluate("Chart.getChart(document.querySelector('#chart-models canvas')).data.labels")
    assert models == ["gpt-4o"]
    page.screenshot(path=str(artifacts / "dashboard-0.0.3-metrics.png"), full_page=True)


def test_agent_and_run_pages(upstream, page, artifacts):
    n = visit(page, upstream, "/agent/ResearchAgent")
    run = only_run(upstream, "ResearchAgent")
    assert page.locator("a.run-name").all_inner_texts() == ["run 1"]
    page.click("a.run-name")
    n = settle(page, n)
    names = page.locator(".event-name").all_inner_texts()
    assert {"web_search", "gpt-4o", "flaky_tool"} <= set(names), names
    failed = page.locator("li.event.error > .event-row")
    assert failed.count() == 1 and failed.locator(".event-name").inner_text() == "flaky_tool"
    assert failed.locator(".event-error").inner_text() == "RuntimeError: tool exploded"
    (llm,) = [e for e in api(upstream, f"/api/runs/{run['run_id']}")["events"] if e["event_type"] == "llm_call"]
    page.click(f"li[data-event-id='{llm['event_id']}'] > .event-row .event-name")
    settle(page, n)
    assert page.url.endswith(f"#/run/{run['run_id']}?event={llm['event_id']}")
    blocks = dict(zip(page.locator("aside.detail .block h3").all_text_contents(),
                      page.locator("aside.detail .block pre").all_inner_texts()))
    assert "Tell me a joke about programming" in blocks["Prompt"] and blocks["Completion"] == JOKE
    page.screenshot(path=str(artifacts / "dashboard-0.0.3-run.png"), full_page=True)
    visit(page, upstream, f"/run/{only_run(upstream, 'FailingAgent')['run_id']}")
    failed = page.locator("li.event.error > .event-row")
    assert failed.count() == 1 and "agent gave up" in failed.locator(".event-error").inner_text()


def test_the_langgraph_runs_graph(upstream, page, artifacts):
    run = only_run(upstream, "graph_app")
    visit(page, upstream, f"/run/{run['run_id']}?view=graph")
    ran = sorted(page.locator(".graph svg g.node.ran").evaluate_all("gs => gs.map(g => g.dataset.node)"))
    assert ran == ["plan", "research", "write"]
    assert {"__start__", "__end__"} <= set(page.locator(".graph svg g.node").evaluate_all("gs => gs.map(g => g.dataset.node)"))
    assert page.locator(".graph ol.path a").all_inner_texts() == ["plan", "research", "write"]
    page.screenshot(path=str(artifacts / "dashboard-0.0.3-graph.png"), full_page=True)


def test_search_lands_on_the_run(upstream, page):
    n = visit(page, upstream, "/search?q=joke")
    hits = page.locator("ol.hits li")
    assert hits.count() >= 1
    llm = hits.filter(has=page.locator(".event-type:text-is('llm_call')"))
    llm.locator("a.hit-link").click()
    settle(page, n)
    run = only_run(upstream, "ResearchAgent")
    assert f"#/run/{run['run_id']}?event=" in page.url
    assert page.locator("aside.detail h2").inner_text() == "gpt-4o"
