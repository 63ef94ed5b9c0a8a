"""The dashboard used as a person uses it: Playwright clicks and types in the session's one
Chromium (Debian's, see test_dashboard_pages.browser) against one seeded backend and dashboard for the
module. What a page shows is compared with what the backend's API answers for the same question;
a screenshot of each step lands in target/test-artifacts/.

The seed is dated relative to today (UTC), so the time ranges have something to tell apart:
ResearchAgent ran 1, 3, 20 and 45 days ago; support-bot 2 days ago with a prompt about kumquats;
graph_app ran a LangGraph graph yesterday; 55 more agents ran long ago, for the pager.
"""

import contextlib
import json
import uuid

import pytest

from gati_testing import Daily, Service, days_ago as day, request
from test_backend_api import upstream_agent_run, upstream_event
from test_dashboard_pages import dashboard_for, new_page, settle

def dated_run(agent, days_ago, run_name, prompt=None, minute=0):
    """upstream_agent_run (agent_start, llm_call, tool_call, a failing tool_call, agent_end) of
    `agent`, `days_ago` days ago, named `run_name`."""
    events = upstream_agent_run(agent=agent, init_name=agent, minute=minute)
    for e in events:
        e["timestamp"] = e["timestamp"].replace("2026-01-31", day(days_ago))
        e["run_name"] = run_name
        if prompt and e["event_type"] == "llm_call":
            e["prompt"] = e["data"]["prompt"] = prompt
    return events


GRAPH = {
    "nodes": ["__start__", "plan", "research", "write", "__end__"],
    "edges": [{"from": "__start__", "to": "plan", "type": "regular"},
              {"from": "plan", "to": "research", "type": "conditional"},
              {"from": "plan", "to": "write", "type": "conditional"},
              {"from": "research", "to": "write", "type": "regular"},
              {"from": "write", "to": "__end__", "type": "regular"}],
    "entry_point": "__start__", "end_nodes": ["__end__"], "has_conditional_edges": True,
}


def graph_run(days_ago=1):
    """A LangGraph run as 0.0.3's instrumentation sends it: the graph's structure in the
    agent_start's metadata, a node_execution per node (write fails), the order in agent_end."""
    run_id = str(uuid.uuid4())
    ts = f"{day(days_ago)}T09:00:0"
    start = upstream_event("agent_start", run_id, "tides", "graph_app", ts + "0", input={"question": "tides"},
                           metadata={"graph_structure": GRAPH})
    events, previous = [start], start["event_id"]
    for i, node in enumerate(["plan", "research", "write"], start=1):
        fields = {"node_name": node, "state_before": {"steps": i - 1}, "state_after": {"steps": i},
                  "duration_ms": 100.0 * i}
        if node == "write":
            fields["error"] = {"type": "ValueError", "message": "no answer to write"}
        e = upstream_event("node_execution", run_id, "tides", "graph_app", ts + str(i), parent=start["event_id"],
                           previous=previous, **fields)
        events.append(e)
        previous = e["event_id"]
    events.append(upstream_event("agent_end", run_id, "tides", "graph_app", ts + "5", parent=start["event_id"],
                                 previous=previous, execution_flow={"execution_order": ["plan", "research", "write"]},
                                 error={"type": "ValueError", "message": "no answer to write"}))
    return events


BULK_AGENTS = 55


@contextlib.contextmanager
def seeded(bin_dir, data):
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data / "data")})
    runs = {}
    try:
        batch = []
        for days_ago in (1, 3, 20, 45):
            events = dated_run("ResearchAgent", days_ago, f"research {days_ago}d ago")
            runs[f"research-{days_ago}"] = events
            batch += events
        runs["kumquat"] = dated_run("support-bot", 2, "fruit question", prompt="Which kumquat varieties ship in winter?")
        runs["graph"] = graph_run()
        batch += runs["kumquat"] + runs["graph"]
        for i in range(BULK_AGENTS):
            e = upstream_event("llm_call", str(uuid.uuid4()), None, f"bulk-{i:02d}", f"{day(120)}T08:00:00",
                               model="gpt-4o-mini", tokens_in=10, tokens_out=5, cost=0.0001)
            batch.append(e)
        status, body = request("POST", backend.url + "/api/events", {"events": batch})
        assert status == 200, body
        dashboard = dashboard_for(bin_dir, backend.url)
        dashboard.backend, dashboard.runs = backend, runs
        try:
            yield dashboard
        finally:
            dashboard.stop()
    finally:
        backend.stop()


@pytest.fixture(scope="module")
def daily_stack(bin_dir, tmp_path_factory):
    with Daily(lambda: seeded(bin_dir, tmp_path_factory.mktemp("dashboard-browser"))) as daily:
        yield daily


@pytest.fixture
def stack(daily_stack):
    """The seeded backend and its dashboard, seeded today (UTC): the seed is dated relative to the day."""
    return daily_stack.get()


def api(stack, path):
    status, body = request("GET", stack.backend.url + path)
    assert status == 200, (path, body)
    return body


def paused_page(**context):
    """A page whose live updates are paused, so that each redraw a test waits for is its own."""
    page = new_page(**context)
    page.context.add_init_script("localStorage.setItem('gati-live', 'paused')")
    return page


@pytest.fixture
def page():
    page = paused_page()
    yield page
    assert not page.errors, page.errors
    page.context.close()


def visit(page, stack, hash_path):
    page.goto(f"{stack.url}/#{hash_path}")
    return settle(page)


def go(page, action, after):
    """Does `action` (a click, a key) and waits for the page to draw again."""
    action()
    return settle(page, after)


def cards(page, selector=".cards"):
    return {dt: dd for dt, dd in page.eval_on_selector_all(
        f"{selector} .card", "cards => cards.map(c => [c.querySelector('dt').textContent, c.querySelector('dd').textContent])")}


def chart_data(page, host):
    """What Chart.js itself holds for the chart in `#host`: labels and each dataset's values."""
    return page.evaluate("""host => {
        const chart = Chart.getChart(document.querySelector(`#${host} canvas`));
        return { labels: chart.data.labels, data: chart.data.datasets.map(d => d.data),
                 names: chart.data.datasets.map(d => d.label), empty: chart.canvas.parentElement.dataset.empty || null };
    }""", host)


def count(n):
    return f"{round(n):,}"


def money(n):
    return f"${n:.6f}" if n and abs(n) < 0.01 else f"${n:.4f}"


def test_metrics_page_shows_the_apis_numbers_in_cards_and_charts(stack, page, artifacts):
    visit(page, stack, "/metrics?days=30")
    page.screenshot(path=str(artifacts / "dashboard-metrics.png"), full_page=True)
    since = day(29)
    summary = api(stack, f"/api/metrics/summary?since={since}")
    shown = cards(page, ".metric-cards")
    assert shown["Runs"] == count(summary["total_runs"]) and shown["Agents"] == count(summary["total_agents"])
    assert shown["Events"] == count(summary["total_events"]) and shown["Cost"] == money(summary["total_cost"])
    assert shown["Avg cost / run"] == money(summary["avg_cost_per_run"])
    assert summary["total_runs"] == 5, "ResearchAgent 1, 3 and 20 days ago, support-bot 2, graph_app 1"

    cost = api(stack, f"/api/metrics/cost-timeline?since={since}")
    drawn = chart_data(page, "chart-cost")
    assert drawn["labels"] == [d["date"] for d in cost] and len(cost) == 30
    assert drawn["data"] == [[d["cost"] for d in cost], [d["cumulative_cost"] for d in cost]]
    tokens = api(stack, f"/api/metrics/tokens-timeline?since={since}")
    assert chart_data(page, "chart-tokens")["data"] == [[d["tokens_in"] for d in tokens], [d["tokens_out"] for d in tokens]]
    agents = api(stack, f"/api/metrics/agents-comparison?since={since}")
    by_runs = sorted(agents, key=lambda a: -a["runs"])[:10]
    drawn = chart_data(page, "chart-agent-runs")
    assert sorted(zip(drawn["labels"], drawn["data"][0])) == sorted((a["agent_name"], a["runs"]) for a in by_runs)
    errors = chart_data(page, "chart-agent-errors")
    assert dict(zip(errors["labels"], errors["data"][0]))["ResearchAgent"] == 3
    models = api(stack, f"/api/metrics/models?since={since}")
    assert chart_data(page, "chart-models")["labels"] == [m["model"] for m in models][:10]
    assert "gpt-4o-mini" in page.inner_text("#chart-models + table")


def test_changing_the_range_asks_the_backend_again(stack, page, artifacts):
    n = visit(page, stack, "/metrics?days=30")
    n = go(page, lambda: page.click(".range a:text-is('7d')"), n)
    assert page.url.endswith("#/metrics?days=7")
    assert page.get_attribute(".range a:text-is('7d')", "aria-pressed") == "true"
    week = api(stack, f"/api/metrics/summary?since={day(6)}")
    assert cards(page, ".metric-cards")["Runs"] == count(week["total_runs"]) == "4"
    assert chart_data(page, "chart-cost")["labels"] == [day(d) for d in range(6, -1, -1)]
    n = go(page, lambda: page.click(".range a:text-is('90d')"), n)
    assert cards(page, ".metric-cards")["Runs"] == count(api(stack, f"/api/metrics/summary?since={day(89)}")["total_runs"]) == "6"
    page.screenshot(path=str(artifacts / "dashboard-metrics-90d.png"), full_page=True)
    # One day: a bar per series, not an empty line.
    page.fill(".custom-range input[name=since]", day(45))
    page.fill(".custom-range input[name=until]", day(45))
    n = go(page, lambda: page.click(".custom-range button"), n)
    assert page.url.endswith(f"#/metrics?since={day(45)}&until={day(45)}")
    drawn = chart_data(page, "chart-cost")
    assert drawn["labels"] == [day(45)] and drawn["data"][0][0] > 0 and drawn["empty"] is None
    assert cards(page, ".metric-cards")["Runs"] == "1"
    page.screenshot(path=str(artifacts / "dashboard-metrics-one-day.png"), full_page=True)
    # Nothing in range: zeros, and the charts say so.
    page.fill(".custom-range input[name=since]", day(300))
    page.fill(".custom-range input[name=until]", day(290))
    go(page, lambda: page.click(".custom-range button"), n)
    assert cards(page, ".metric-cards")["Runs"] == "0"
    assert chart_data(page, "chart-cost")["empty"] == "Nothing recorded in this range"
    assert "No LLM call in this range." in page.inner_text(".metrics")
    page.screenshot(path=str(artifacts / "dashboard-metrics-empty.png"), full_page=True)


def test_agents_page_pages_and_opens_an_agent(stack, page, artifacts):
    n = visit(page, stack, "/")
    total = BULK_AGENTS + 3
    assert f"1–50 of {total} agents" in page.inner_text(".pager").replace("\n", " ")
    assert page.locator("tbody tr").count() == 50
    research = api(stack, "/api/agents/ResearchAgent")
    row = page.locator("tr", has=page.locator("a:text-is('ResearchAgent')"))
    cells = row.locator("td").all_inner_texts()
    assert cells[1:3] == [count(research["run_count"]), count(research["event_count"])]
    assert money(research["total_cost"]) in cells
    n = go(page, lambda: page.click(".pager a[rel=next]"), n)
    assert page.url.endswith("#/?offset=50") and page.locator("tbody tr").count() == total - 50
    assert f"51–{total} of {total} agents" in page.inner_text(".pager").replace("\n", " ")
    n = go(page, lambda: page.click(".pager a[rel=prev]"), n)
    go(page, lambda: page.click("a:text-is('ResearchAgent')"), n)
    assert page.url.endswith("#/agent/ResearchAgent")
    shown = cards(page)
    assert shown["Runs"] == count(research["run_count"]) and shown["Cost"] == money(research["total_cost"])
    assert shown["Errors"] == count(research["error_count"])
    runs = api(stack, "/api/runs?agent=ResearchAgent")["runs"]
    assert page.locator("a.run-name").all_inner_texts() == [r["run_name"] for r in runs]
    page.screenshot(path=str(artifacts / "dashboard-agent.png"), full_page=True)


def test_run_view_reads_as_a_tree_with_an_events_detail(stack, page, artifacts):
    start, llm, tool, failed, end = stack.runs["research-1"]
    n = visit(page, stack, f"/run/{start['run_id']}")
    names = page.locator(".event-name").all_inner_texts()
    assert names == ["Agent start", "gpt-4o-mini", "lookup_order", "flaky_tool", "Agent end"], names
    # Failed means failed: the failing tool's row is red and says why.
    bad = page.locator(f"li.event.error[data-event-id='{failed['event_id']}'] > .event-row")
    assert bad.locator(".event-error").inner_text() == "RuntimeError: tool exploded"
    assert bad.evaluate("row => getComputedStyle(row.querySelector('.event-error')).color") == "rgb(201, 42, 42)"
    assert page.locator("li.event.error").count() == 1
    # Select the LLM call: its detail, and a URL for it.
    n = go(page, lambda: page.click(f"li[data-event-id='{llm['event_id']}'] > .event-row .event-name"), n)
    assert page.url.endswith(f"#/run/{start['run_id']}?event={llm['event_id']}")
    detail = page.locator("aside.detail")
    assert detail.locator("h2").inner_text() == "gpt-4o-mini"
    blocks = dict(zip(detail.locator(".block h3").all_text_contents(), detail.locator(".block pre").all_inner_texts()))
    assert blocks["Prompt"] == "Find order 42" and blocks["Completion"] == "Calling lookup_order"
    assert blocks["System prompt"] == "You are helpful."
    facts = dict(zip(detail.locator(".facts dt").all_text_contents(), detail.locator(".facts dd").all_text_contents()))
    assert (facts["Latency"], facts["Cost"], facts["Tokens in"], facts["Tokens out"]) == ("850 ms", "$0.000750", "100", "50")
    assert (facts["Event"], facts["Run"]) == (llm["event_id"], start["run_id"])
    # The raw JSON is there, behind its toggle.
    raw = detail.locator("details.raw pre")
    assert not raw.is_visible()
    detail.locator("details.raw summary").click()
    assert raw.is_visible() and json.loads(raw.inner_text())["event_id"] == llm["event_id"]
    page.screenshot(path=str(artifacts / "dashboard-run-detail.png"), full_page=True)
    # A tool call's input and output.
    n = go(page, lambda: page.click(f"li[data-event-id='{tool['event_id']}'] > .event-row .event-name"), n)
    blocks = dict(zip(detail.locator(".block h3").all_text_contents(), detail.locator(".block pre").all_inner_texts()))
    assert json.loads(blocks["Input"]) == {"order": 42} and json.loads(blocks["Output"]) == {"status": "shipped"}
    # The URL alone opens the same view.
    other = new_page()
    other.goto(page.url)
    settle(other)
    assert other.locator("aside.detail h2").inner_text() == "lookup_order"
    other.context.close()


def test_a_subtree_collapses_and_expands_by_mouse_and_keyboard(stack, page, artifacts):
    start, llm, tool, failed, end = stack.runs["research-3"]
    n = visit(page, stack, f"/run/{start['run_id']}")
    fold = page.locator(f"li[data-event-id='{start['event_id']}'] > .event-row button.fold")
    assert fold.get_attribute("aria-expanded") == "true"
    n = go(page, fold.click, n)
    assert fold.get_attribute("aria-expanded") == "false"
    assert page.locator(f"li[data-event-id='{llm['event_id']}']").count() == 0, "the subtree is hidden"
    assert page.locator(f"li[data-event-id='{end['event_id']}']").count() == 1, "agent_end is not below agent_start"
    assert "3 more inside" in page.locator(f"li[data-event-id='{start['event_id']}'] .folded-note").inner_text()
    page.screenshot(path=str(artifacts / "dashboard-run-collapsed.png"), full_page=True)
    # By keyboard: Tab reaches the toggle, Enter opens it again, and the focus stays on it.
    page.locator(".tree-tools button").last.focus()
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('fold')"):
            break
    assert page.evaluate("document.activeElement.dataset.event") == start["event_id"]
    go(page, lambda: page.keyboard.press("Enter"), n)
    assert fold.get_attribute("aria-expanded") == "true"
    assert page.locator(f"li[data-event-id='{llm['event_id']}']").count() == 1
    assert page.evaluate("document.activeElement.dataset.event") == start["event_id"]


def test_every_control_of_a_run_is_reachable_by_tab(stack, page):
    start = stack.runs["research-3"][0]
    visit(page, stack, f"/run/{start['run_id']}")
    reached = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("""(() => { const a = document.activeElement;
            return a.dataset.action || a.className || a.id || a.tagName; })()"""))
    for wanted in ["rename-run", "delete-run", "fold", "event-name", "live", "theme", "quick-search"]:
        assert wanted in reached, (wanted, reached)


def test_search_finds_a_word_in_a_prompt_and_lands_on_its_run(stack, page, artifacts):
    n = visit(page, stack, "/")
    page.fill("#quick-search", "kumquat")
    n = go(page, lambda: page.press("#quick-search", "Enter"), n)
    assert page.url.endswith("#/search?q=kumquat")
    hits = page.locator("ol.hits li")
    assert hits.count() == 1 and hits.locator("mark").inner_text().lower() == "kumquat"
    page.screenshot(path=str(artifacts / "dashboard-search.png"), full_page=True)
    llm = stack.runs["kumquat"][1]
    go(page, lambda: hits.locator("a.hit-link").click(), n)
    assert page.url.endswith(f"#/run/{llm['run_id']}?event={llm['event_id']}")
    prompt = page.locator("aside.detail .block", has=page.locator("h3:text-is('Prompt')")).locator("pre")
    assert prompt.inner_text() == "Which kumquat varieties ship in winter?"
    assert page.locator(".event-row.selected .event-name").inner_text() == "gpt-4o-mini"
    page.screenshot(path=str(artifacts / "dashboard-search-landed.png"), full_page=True)


def test_search_filters_by_agent_type_and_time(stack, page):
    n = visit(page, stack, "/search?agent=ResearchAgent&type=tool_call")
    api_hits = api(stack, "/api/events?agent=ResearchAgent&type=tool_call")
    assert page.locator("ol.hits li").count() == min(50, api_hits["total"]) == 8
    assert page.input_value(".search-form input[name=agent]") == "ResearchAgent"
    page.fill(".search-form input[name=since]", day(4))
    go(page, lambda: page.click(".search-form button[type=submit]"), n)
    assert page.locator("ol.hits li").count() == 4, "the tool calls of the runs 1 and 3 days ago"


def test_deleting_a_run_asks_first_and_removes_it_from_the_backend(stack, page, artifacts):
    run_id = stack.runs["research-20"][0]["run_id"]
    n = visit(page, stack, f"/run/{run_id}")
    page.click("button[data-action=delete-run]")
    dialog = page.locator("dialog.ask")
    assert dialog.is_visible() and "research 20d ago" in dialog.locator("h2").inner_text()
    page.screenshot(path=str(artifacts / "dashboard-delete-confirm.png"))
    dialog.locator("button", has_text="Cancel").click()
    dialog.wait_for(state="detached")
    assert request("GET", f"{stack.backend.url}/api/runs/{run_id}")[0] == 200
    page.click("button[data-action=delete-run]")
    go(page, lambda: page.locator("dialog.ask button.danger").click(), n)
    assert page.url.endswith("#/agent/ResearchAgent")
    assert "Deleted run “research 20d ago”." in page.inner_text("#flash")
    assert request("GET", f"{stack.backend.url}/api/runs/{run_id}")[0] == 404
    assert "research 20d ago" not in page.locator("a.run-name").all_inner_texts()


def test_deleting_an_agent_asks_first_and_removes_it_with_its_runs(stack, page):
    n = visit(page, stack, "/agent/bulk-00")
    page.click("button[data-action=delete-agent]")
    assert "bulk-00" in page.locator("dialog.ask h2").inner_text()
    go(page, lambda: page.locator("dialog.ask button.danger").click(), n)
    assert page.url.endswith("#/") and "Deleted agent “bulk-00”." in page.inner_text("#flash")
    assert request("GET", f"{stack.backend.url}/api/agents/bulk-00")[0] == 404
    assert request("GET", f"{stack.backend.url}/api/runs?agent=bulk-00")[0] == 404
    assert page.locator("a:text-is('bulk-00')").count() == 0


def test_renaming_a_run(stack, page, artifacts):
    run_id = stack.runs["research-45"][0]["run_id"]
    n = visit(page, stack, f"/run/{run_id}")
    page.click("button[data-action=rename-run]")
    field = page.locator("dialog.ask input[name=value]")
    assert field.input_value() == "research 45d ago"
    field.fill("quarterly report")
    go(page, lambda: field.press("Enter"), n)
    page.wait_for_function("document.querySelector('.page-head h1').textContent === 'quarterly report'")
    assert api(stack, f"/api/runs/{run_id}")["run_name"] == "quarterly report"
    assert page.locator("#crumbs .run-name").inner_text() == "quarterly report"
    page.screenshot(path=str(artifacts / "dashboard-renamed.png"))


def test_dark_mode_follows_the_system_switches_and_is_remembered(stack, artifacts):
    page = paused_page(color_scheme="light")
    try:
        visit(page, stack, "/metrics")
        background = lambda: page.evaluate("getComputedStyle(document.body).backgroundColor")  # noqa: E731
        assert page.get_attribute("html", "data-theme") == "light" and background() == "rgb(246, 247, 249)"
        page.click("#theme")
        assert page.get_attribute("html", "data-theme") == "dark" and background() == "rgb(18, 22, 31)"
        assert page.get_attribute("#theme", "aria-pressed") == "true"
        # The charts take the theme's colours too.
        ticks = page.evaluate("Chart.getChart(document.querySelector('#chart-cost canvas')).options.scales.x.ticks.color")
        assert ticks == "#9aa3b5"
        page.screenshot(path=str(artifacts / "dashboard-metrics-dark.png"), full_page=True)
        page.reload()
        settle(page)
        assert page.get_attribute("html", "data-theme") == "dark", "the choice is remembered"
    finally:
        page.context.close()
    page = paused_page(color_scheme="dark")
    try:
        visit(page, stack, f"/run/{stack.runs['research-1'][0]['run_id']}")
        assert page.get_attribute("html", "data-theme") == "dark", "with no choice made, the system's"
        page.screenshot(path=str(artifacts / "dashboard-run-dark.png"), full_page=True)
    finally:
        page.context.close()


def test_live_updates_change_only_what_changed_and_pause(stack):
    page = new_page()
    page.clock.install()
    n = visit(page, stack, "/agent/support-bot")
    events_card = page.locator(".card", has=page.locator("dt:text-is('Events')")).locator("dd")
    before = events_card.inner_text()
    kept = events_card.element_handle()
    more = dated_run("support-bot", 0, "live one")
    assert request("POST", stack.backend.url + "/api/events", {"events": more})[0] == 200
    page.clock.run_for(5_000)
    n = settle(page, n)
    page.wait_for_function("([el, old]) => el.textContent !== old", arg=[kept, before])
    assert kept.evaluate("el => el.isConnected"), "updated in place, not redrawn"
    assert "live one" in page.locator("a.run-name").all_inner_texts()
    # Paused: nothing is fetched; Live again: the page catches up at once.
    page.click("#live")
    assert page.inner_text("#live") == "Paused" and page.get_attribute("#live", "aria-pressed") == "false"
    later = dated_run("support-bot", 0, "while paused")
    assert request("POST", stack.backend.url + "/api/events", {"events": later})[0] == 200
    page.clock.run_for(15_000)
    assert "while paused" not in page.locator("a.run-name").all_inner_texts()
    assert page.evaluate("Number(document.body.dataset.rendered)") == n
    go(page, lambda: page.click("#live"), n)
    assert "while paused" in page.locator("a.run-name").all_inner_texts()
    assert page.inner_text("#updated").startswith("updated ")
    assert not page.errors, page.errors
    page.context.close()


def test_a_langgraph_runs_graph(stack, page, artifacts):
    events = stack.runs["graph"]
    n = visit(page, stack, f"/run/{events[0]['run_id']}")
    n = go(page, lambda: page.click(".tabs a:text-is('Graph')"), n)
    assert page.url.endswith(f"#/run/{events[0]['run_id']}?view=graph")
    nodes = page.locator(".graph svg g.node")
    assert sorted(nodes.evaluate_all("gs => gs.map(g => g.dataset.node)")) == sorted(GRAPH["nodes"])
    ran = page.locator(".graph svg g.node.ran").evaluate_all("gs => gs.map(g => g.dataset.node)")
    assert sorted(ran) == ["plan", "research", "write"]
    assert page.locator(".graph svg g.node.failed").evaluate_all("gs => gs.map(g => g.dataset.node)") == ["write"]
    assert page.locator(".graph svg path.edge").count() == len(GRAPH["edges"])
    assert page.locator(".graph svg path.edge.conditional").count() == 2
    go(page, lambda: page.click(".graph svg a[aria-label^='research']"), n)
    assert page.locator("aside.detail h2").inner_text() == "research"
    blocks = page.locator("aside.detail .block h3").all_text_contents()
    assert "State before" in blocks and "State after" in blocks
    page.screenshot(path=str(artifacts / "dashboard-graph.png"), full_page=True)
