"""How long the dashboard's pages take to draw in Chromium over a big database.

    .tools/venv/bin/python dashboard/bench/page_load.py BIN_DIR [--events N] [--rounds R]

BIN_DIR holds gati-backend and gati-dashboard (e.g. target/x86_64-unknown-linux-gnu/release).
The database (target/bench-dashboard/, kept between runs) gets N events (default 1,000,000: 20
agents x 500 runs x 100 events, LLM calls with tokens and cost, over the last 90 days) through
the backend's API the first time. Then each page is opened R times (default 5) in a fresh
browser context (nothing cached) and again in the same context (the dashboard's files
revalidated, 304): the time from navigation to the page's first settled draw (performance mark
`gati-rendered`: data fetched, tables and charts drawn) is printed as p50 and max.
"""

import argparse
import datetime
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from gati_testing import Service, request  # noqa: E402
from test_dashboard import browser, settle  # noqa: E402

AGENTS, RUNS, PER_RUN = 20, 500, 100
PAGES = ["/", "/metrics?days=30", "/metrics?days=90", "/agent/agent-07"]


def batches(events_wanted):
    """The events, 10,000 per batch: per run an agent_start, LLM calls with tool calls, agent_end."""
    now = datetime.datetime.now(datetime.timezone.utc)
    runs = max(1, events_wanted // PER_RUN)
    batch = []
    for r in range(runs):
        agent = f"agent-{r % AGENTS:02d}"
        run_id = str(uuid.uuid4())
        start = now - datetime.timedelta(minutes=(r * 90 * 24 * 60) // runs)
        for i in range(PER_RUN):
            ts = (start + datetime.timedelta(milliseconds=250 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            kind = "agent_start" if i == 0 else "agent_end" if i == PER_RUN - 1 else "llm_call" if i % 2 else "tool_call"
            data = {"model": f"gpt-{r % 3}", "prompt": f"step {i} of run {r}", "completion": "ok", "tokens_in": 100,
                    "tokens_out": 20, "cost": 0.0003, "latency_ms": 120.0} if kind == "llm_call" else {
                "tool_name": "search", "input": {"q": i}, "output": "found", "latency_ms": 30.0} if kind == "tool_call" else {}
            batch.append({"event_id": str(uuid.uuid4()), "run_id": run_id, "run_name": f"run {r}", "agent_name": agent,
                          "event_type": kind, "timestamp": ts, "data": data})
            if len(batch) == 10_000:
                yield batch
                batch = []
    if batch:
        yield batch


def load(backend, events_wanted):
    summary = request("GET", backend.url + "/api/summary")[1]
    if summary.get("events", 0) >= events_wanted:
        return summary["events"]
    started = time.monotonic()
    for n, batch in enumerate(batches(events_wanted), start=1):
        status, body = request("POST", backend.url + "/api/events", {"events": batch}, timeout=300)
        assert status == 200, body
        if n % 10 == 0:
            print(f"  loaded {n * len(batch):,} events, {n * len(batch) / (time.monotonic() - started):,.0f}/s", flush=True)
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
        events = load(backend, args.events)
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
