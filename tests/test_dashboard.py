"""The dashboard page in headless Chromium against a running dashboard and backend."""

import shutil
import subprocess

import pytest

from gati_testing import SAMPLE_EVENTS, Service, free_port, request

# Without the background-networking flags Chromium keeps calling out, and this network refuses.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=5000",
]


@pytest.fixture(scope="session")
def chromium():
    path = shutil.which("chromium")
    if not path:
        pytest.fail("chromium is not installed: `cargo xtask test` installs it (Debian: apt-get install chromium)",
                    pytrace=False)
    return path


def render(chromium, tmp_path, url, screenshot=None):
    """The DOM after the page's scripts ran; optionally a PNG of the page too."""
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]
    if screenshot:
        subprocess.run([chromium, *flags, "--window-size=1280,800", f"--screenshot={screenshot}", url],
                       check=True, capture_output=True, timeout=60)
    return subprocess.run([chromium, *flags, "--dump-dom", url], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def dashboard_for(bin_dir, backend_url):
    return Service(bin_dir / "gati-dashboard", env={"BACKEND_URL": backend_url}, health="/healthz")


@pytest.fixture
def dashboard(bin_dir, seeded_backend):
    service = dashboard_for(bin_dir, seeded_backend.url)
    yield service
    service.stop()


def test_proxies_the_backend_api(dashboard, version):
    status, body = request("GET", dashboard.url + "/health")
    assert (status, body["status"], body["version"], body["database"]) == (200, "ok", version, "ok")
    status, body = request("GET", dashboard.url + "/api/agents/support-bot/runs")
    assert status == 200 and body[0]["run_id"] == "run-1"
    assert request("GET", dashboard.url + "/api/runs/nope")[0] == 404


def test_page_lists_agents_with_totals_and_version(chromium, dashboard, tmp_path, artifacts, version):
    dom = render(chromium, tmp_path, dashboard.url + "/", screenshot=artifacts / "dashboard-agents.png")
    assert 'href="#/agent/support-bot"' in dom and "triage-bot" in dom
    assert "<dt>Events</dt><dd>5</dd>" in dom and "<dt>Tokens</dt><dd>150</dd>" in dom
    assert f"gati {version}" in dom


def test_page_opens_an_agents_runs(chromium, dashboard, tmp_path):
    dom = render(chromium, tmp_path, dashboard.url + "/#/agent/support-bot")
    assert 'href="#/run/run-1"' in dom


def test_page_shows_a_runs_timeline(chromium, dashboard, tmp_path, artifacts):
    dom = render(chromium, tmp_path, dashboard.url + "/#/run/run-1", screenshot=artifacts / "dashboard-run.png")
    order = [dom.find(f'data-event-id="{e}"') for e in ("e1", "e2", "e3", "e4")]
    assert -1 not in order and order == sorted(order), order
    for event_type in ("run_start", "llm_call", "tool_call", "run_end"):
        assert f'<span class="event-type">{event_type}</span>' in dom
    assert "lookup_order" in dom and 'datetime="2026-01-31T12:00:02.000000Z"' in dom


def test_page_says_plainly_when_the_backend_is_unreachable(chromium, bin_dir, tmp_path, artifacts):
    service = dashboard_for(bin_dir, f"http://127.0.0.1:{free_port()}")
    try:
        dom = render(chromium, tmp_path, service.url + "/", screenshot=artifacts / "dashboard-backend-down.png")
        assert '<div id="status" role="alert">The gati backend is unreachable.' in dom
        env = {"GATI_PORT": str(service.port)}
        assert subprocess.run([bin_dir / "gati-dashboard", "healthcheck"], env=env).returncode == 0
    finally:
        service.stop()


@pytest.fixture
def upstream_dashboard(bin_dir, backend):
    """A dashboard over a backend holding one run of the gati 0.0.3 SDK, named "checkout flow"."""
    from test_backend import upstream_run

    events = upstream_run(run_name="checkout flow")
    status, body = request("POST", backend.url + "/api/events", {"events": events})
    assert status == 200, body
    service = dashboard_for(bin_dir, backend.url)
    service.events = events
    yield service
    service.stop()


def test_page_shows_tokens_and_cost_per_agent(chromium, upstream_dashboard, tmp_path):
    dom = render(chromium, tmp_path, upstream_dashboard.url + "/")
    assert "<dt>Tokens</dt><dd>150</dd>" in dom and "<dt>Cost</dt><dd>$0.000750</dd>" in dom
    assert '<span class="tokens">150<small class="muted"> (100 in / 50 out)</small></span>' in dom
    assert "<td>$0.000750</td>" in dom


def test_page_lists_runs_by_name_with_tokens_and_cost(chromium, upstream_dashboard, tmp_path, artifacts):
    run_id = upstream_dashboard.events[0]["run_id"]
    dom = render(chromium, tmp_path, upstream_dashboard.url + "/#/agent/support-bot",
                 screenshot=artifacts / "dashboard-runs.png")
    assert f'<a href="#/run/{run_id}" class="run-name" title="{run_id}">checkout flow</a>' in dom
    assert '<span class="tokens">150<small class="muted"> (100 in / 50 out)</small></span>' in dom
    assert "<td>$0.000750</td>" in dom and "<td>3.0 s</td>" in dom


def test_page_shows_a_run_as_the_tree_of_its_events(chromium, upstream_dashboard, tmp_path, artifacts):
    start, llm, tool, end = upstream_dashboard.events
    dom = render(chromium, tmp_path, upstream_dashboard.url + f"/#/run/{start['run_id']}",
                 screenshot=artifacts / "dashboard-run-tree.png")
    assert f'<span class="run-name" title="{start["run_id"]}">checkout flow</span>' in dom
    assert "<dt>Cost</dt><dd>$0.000750</dd>" in dom and '<span class="tokens">150' in dom
    # agent_start holds the llm_call (which holds the tool_call) and then agent_end.
    tree = dom[dom.find('<ol class="timeline">'):]
    opened = [tree.find(f'data-event-id="{e["event_id"]}"') for e in (start, llm, tool, end)]
    assert -1 not in opened and opened == sorted(opened), opened
    between = lambda a, b: tree[opened[a]:opened[b]]  # noqa: E731
    assert between(0, 1).count('<ol class="children">') == 1, "llm_call is a child of agent_start"
    assert between(1, 2).count('<ol class="children">') == 1, "tool_call is a child of llm_call"
    assert between(2, 3).count("</ol>") == 1, "agent_end is back at agent_start's level"
    assert '<span class="event-facts">150 tokens · $0.000750 · 850 ms</span>' in dom


def test_run_name_falls_back_to_the_id(chromium, bin_dir, backend, tmp_path):
    status, _ = request("POST", backend.url + "/api/events", [{**SAMPLE_EVENTS[0], "run_id": "unnamed-run"}])
    assert status == 200
    service = dashboard_for(bin_dir, backend.url)
    try:
        dom = render(chromium, tmp_path, service.url + "/#/agent/support-bot")
        assert 'class="run-name" title="unnamed-run">unnamed-run</a>' in dom
    finally:
        service.stop()
