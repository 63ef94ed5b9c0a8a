"""How long the dashboard's pages take to draw in Chromium over a big database.

    .tools/venv/bin/python dashboard/bench/page_load.py BIN_DIR [--events N] [--rounds R]

BIN_DIR holds gati-backend, gati-dashboard and examples/gati-load (the load generator of
`cargo xtask bench backend`, backend/examples/load.rs), e.g. target/x86_64-unknown-linux-gnu/release.
The database (target/bench-dashboard/, kept between runs) gets N events (default 1,000,000: the
backend bench's 20 agents, runs of 100 events, LLM calls with tokens and cost, over the last 30
days) the first time, through the backend's API. Then each page is opened R times (default 5) in a fresh
browser context (nothing cached) and again in the same context (the dashboard's files
revalidated, 304): the time from navigation to the page's first settled draw (performance mark
`gati-rendered`: data fetched, tables and charts drawn) is printed as p50 and max.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "stack")]

from gati_testing import Service, request  # noqa: E402
from test_dashboard_pages import browser, settle  # noqa: E402

PAGES = ["/", "/metrics?days=30", "/metrics?days=90", "/agent/agent-07"]


def load(backend, loader, events_wanted):
    """The backend bench's data (backend/examples/load.rs), loaded once and kept."""
    summary = request("GET", backend.url + "/api/summary")[1]
    if summary.get("events", 0) < events_wanted:
        if not loader.is_file():
            sys.exit(f"{loader} is missing: `cargo build --release --target x86_64-unknown-linux-gnu "
                     "-p gati-backend --example gati-load`")
        print(f"loading {events_wanted:,} events with {loader.name} …", flush=True)
        subprocess.run([str(loader), "ingest", backend.url, str(events_wanted - summary.get("events", 0))], check=True)
    return request("GET", backend.url + "/api/summary")[1]["events"]


def drawn_in(page, url):
    page.goto(url)
    settle(page)
    return page.evaluate("performance.getEntriesByName('gati-rendered')[0].startTime")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = ROOT / "target" / "bench-dashboard"
    backend = Service(args.bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data)})
    dashboard = None
    try:
        events = load(backend, args.bin_dir / "examples" / "gati-load", args.events)
        dashboard = Service(args.bin_dir / "gati-dashboard", env={"BACKEND_URL": backend.url}, health="/healthz")
        print(f"{events:,} events in {data}")
        print(f"{'page':24} {'cold p50':>9} {'cold max':>9} {'warm p50':>9} {'warm max':>9}   (ms, {args.rounds} rounds)")
        for path in PAGES:
            url = f"{dashboard.url}/#{path}"
            cold, warm = [], []
            for _ in range(args.rounds):
                ctx = browser().new_context(viewport={"width": 1280, "height": 800})
                ctx.add_init_script("localStorage.setItem('gati-live', 'paused')")
                page = ctx.new_page()
                cold.append(drawn_in(page, url))
                page.goto("about:blank")
                warm.append(drawn_in(page, url))
                ctx.close()
            print(f"{path:24} {statistics.median(cold):9.0f} {max(cold):9.0f} {statistics.median(warm):9.0f} {max(warm):9.0f}")
        for path in ["/api/agents?limit=50", "/api/summary", "/api/metrics/summary", "/api/metrics/cost-timeline?days=30"]:
            times = []
            for _ in range(args.rounds):
                started = time.monotonic()
                status, _ = request("GET", dashboard.url + path)
                times.append((time.monotonic() - started) * 1000)
                assert status == 200, path
            print(f"  {path:40} {statistics.median(times):7.1f} ms p50 through the dashboard")
        print(json.dumps({"events": events}))
    finally:
        if dashboard:
            dashboard.stop()
        backend.stop()


if __name__ == "__main__":
    main()
