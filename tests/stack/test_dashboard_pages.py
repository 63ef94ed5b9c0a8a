"""The dashboard page in headless Chromium against a running dashboard and backend.

One Chromium serves the whole session (`browser()`, started on first use): Playwright drives
Debian's /usr/bin/chromium, never a downloaded browser. `render` opens a page in a fresh
context, waits until the page has drawn, and returns its DOM; tests/stack/test_upgrade_sdk.py and
tests/stack/test_dashboard_interaction.py use the same browser.
"""

import atexit
import shutil
import subprocess

import pytest

from gati_testing import SAMPLE_EVENTS, Service, free_port, request

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling out, and this network refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]

_session = {}


def browser():
    """The Chromium (Playwright) of the tests of one module, started on first use and stopped
    after the module (see conftest.py)."""
    if "browser" not in _session:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        _session["playwright"] = playwright
        _session["browser"] = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        atexit.register(_stop_browser)
    return _session["browser"]


def _stop_browser():
    if "browser" in _session:
        _session.pop("browser").close()
        _session.pop("playwright").stop()


@pytest.fixture(scope="session")
def chromium():
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is not installed: `cargo xtask test` installs it (Debian: apt-get install chromium)",
                    pytrace=False)
    return CHROMIUM


def new_page(**context):
    """A page in a context of its own (no storage shared with other tests), 1280×800 unless told."""
    ctx = browser().new_context(viewport=context.pop("viewport", {"width": 1280, "height": 800}), **context)
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


def settle(page, after=0):
    """Waits until the page has drawn more than `after` times (body[data-rendered]); returns the count."""
    page.wait_for_function(f"Number(document.body.dataset.rendered || 0) > {after}", timeout=10_000)
    return int(page.evaluate("document.body.dataset.rendered"))


def render(chromium, tmp_path, url, screenshot=None):
    """The DOM after the page's scripts drew it; optionally a PNG of the page too."""
    page = new_page()
    try:
        page.goto(url)
        settle(page)
        if screenshot:
            page.screenshot(path=str(screenshot), full_page=True)
        assert not page.errors, page.errors
        return page.content()
    finally:
        page.context.close()


def dashboard_for(bin_dir, backend_url):
    return Service(bin_dir / "gati-dashboard", env={"BACKEND_URL": backend_url}, health="/healthz")


@pytest.fixture
def dashboard(bin_dir, seeded_backend):
    service = dashboard_for(bin_dir, seeded_backend.url)
    service.backend = seeded_backend
    yield service
    service.stop()


def raw(url, method, path, body=None, headers=None):
    """(status, headers, parsed body) of a request with exactly these headers."""
    import json
    import urllib.error
    import urllib.request

    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_proxies_the_backend_api(dashboard, version):
    status, body = request("GET", dashboard.url + "/health")
    assert status == 200 and (body["status"], body["version"]) == ("ok", version)
    status, body = request("GET", dashboard.url + "/api/runs?agent=support-bot")
    assert status == 200 and body["runs"][0]["run_id"] == "run-1"
    assert request("GET", dashboard.url + "/api/runs/nope")[0] == 404
    # A bare-array list keeps its size header, which the pagers read.
    direct = raw(dashboard.backend.url, "GET", "/api/agents?limit=1")
    proxied = raw(dashboard.url, "GET", "/api/agents?limit=1")
    assert proxied[0] == 200 and proxied[2] == direct[2]
    assert proxied[1].get("x-total-count") == direct[1].get("x-total-count")


def test_serves_the_ui_and_chart_js_from_the_binary_with_etags(dashboard):
    status, headers, body = raw(dashboard.url, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html") and b'src="/app.js"' in body
    status, headers, body = raw(dashboard.url, "GET", "/vendor/chart.umd.min.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert body.startswith(b"/*!\n * Chart.js v4.6.1"), body[:80]
    # A reload revalidates and gets 304 while the binary is the same.
    status, _, body = raw(dashboard.url, "GET", "/vendor/chart.umd.min.js", None, {"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")
    status, headers, _ = raw(dashboard.url, "GET", "/js/nothing.js")
    assert (status, headers["content-type"]) == (404, "application/json")


def test_deletes_and_renames_go_through_with_the_local_guards_rules(dashboard):
    backend = dashboard.backend.url
    json_header = {"Content-Type": "application/json"}
    # A cross-site write is refused by the dashboard itself, whatever its content type; a body
    # that is not JSON is refused too. (A DELETE without a body needs no content type: a browser
    # cannot send one cross-site without a preflight, which the Origin check refuses.)
    for headers, sent in [({**json_header, "Origin": "http://evil.example"}, None),
                          ({"Origin": "http://evil.example"}, None), ({"Content-Type": "text/plain"}, b"x")]:
        status, _, body = raw(dashboard.url, "DELETE", "/api/runs/run-2", sent, headers)
        assert status in (403, 415), (headers, status, body)
    status, _, body = raw(dashboard.url, "PATCH", "/api/runs/run-1", {"new_run_name": "x"},
                          {"Content-Type": "text/plain", "Origin": f"http://127.0.0.1:{dashboard.port}"})
    assert status == 415, body
    assert request("GET", backend + "/api/runs/run-2")[0] == 200, "a refused delete deleted nothing"
    # The page's own requests: JSON, from its own origin.
    own = {**json_header, "Origin": f"http://127.0.0.1:{dashboard.port}"}
    status, _, body = raw(dashboard.url, "PATCH", "/api/runs/run-1", {"new_run_name": "order lookup"}, own)
    assert status == 200, body
    assert request("GET", backend + "/api/runs/run-1")[1]["run_name"] == "order lookup"
    status, _, body = raw(dashboard.url, "DELETE", "/api/runs/run-2", {}, own)
    assert status == 200, body
    assert request("GET", backend + "/api/runs/run-2")[0] == 404
    status, _, body = raw(dashboard.url, "DELETE", "/api/agents/triage-bot", {}, own)
    assert status == 200, body
    assert request("GET", backend + "/api/agents/triage-bot")[0] == 404
    # Writes the UI does not make are not forwarded.
    status, headers, _ = raw(dashboard.url, "POST", "/api/events", SAMPLE_EVENTS[:1], own)
    assert (status, headers["content-type"]) == (405, "application/json")


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
    from test_backend_api import upstream_run

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
    # agent_start holds the llm_call (which holds the tool_call); agent_end follows it as a root
    # (the backend's trace nests as 0.0.3 did).
    tree = dom[dom.find('<ol class="timeline">'):]
    opened = [tree.find(f'data-event-id="{e["event_id"]}"') for e in (start, llm, tool, end)]
    assert -1 not in opened and opened == sorted(opened), opened
    between = lambda a, b: tree[opened[a]:opened[b]]  # noqa: E731
    assert between(0, 1).count('<ol class="children">') == 1, "llm_call is a child of agent_start"
    assert between(1, 2).count('<ol class="children">') == 1, "tool_call is a child of llm_call"
    assert between(2, 3).count("</ol>") == 2, "agent_end is back at agent_start's level"
    assert '<span class="event-facts">150 tokens · $0.000750 · 850 ms</span>' in dom
    # Readable names: the model of the LLM call, the tool's name.
    assert '<a class="event-name" href="#/run/' in dom and ">gpt-4o-mini</a>" in dom and ">lookup_order</a>" in dom


def test_run_name_falls_back_to_the_id(chromium, bin_dir, backend, tmp_path):
    status, _ = request("POST", backend.url + "/api/events", [{**SAMPLE_EVENTS[0], "run_id": "unnamed-run"}])
    assert status == 200
    service = dashboard_for(bin_dir, backend.url)
    try:
        dom = render(chromium, tmp_path, service.url + "/#/agent/support-bot")
        assert 'class="run-name" title="unnamed-run">unnamed-run</a>' in dom
    finally:
        service.stop()
