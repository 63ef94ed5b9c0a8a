"""The dashboard page in headless Chromium against a running dashboard and backend."""

import shutil
import subprocess

import pytest

from gati_testing import Service, free_port, request

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
    assert request("GET", dashboard.url + "/health") == (200, {"status": "ok", "version": version})
    status, body = request("GET", dashboard.url + "/api/agents/support-bot/runs")
    assert status == 200 and body["runs"][0]["run_id"] == "run-1"
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
