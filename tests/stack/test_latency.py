"""Latency percentiles (GET /api/metrics/latency) of the real backend: calls posted natively and as
OTLP spans with known latencies across days, agents, models and tools; the route's p50/p95/p99 are
checked against the exact nearest-rank percentiles within the error it states."""

import json
import math
import random
import sqlite3
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from gati_testing import Service, days_ago, event, request

ERROR = 0.02
PERMILLE = {"p50_ms": 500, "p95_ms": 950, "p99_ms": 990}


def exact(values, permille):
    """The nearest-rank percentile: the smallest value at least `permille`/1000 of them are at most."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * permille // 1000))
    return ordered[rank - 1]


def assert_close(answer, values, what):
    """`answer`'s calls and percentiles are those of `values`, within the stated error."""
    assert answer["calls"] == len(values), (what, answer["calls"], len(values))
    for key, permille in PERMILLE.items():
        if not values:
            assert answer[key] is None, (what, key, answer)
            continue
        want = exact(values, permille)
        assert abs(answer[key] - want) <= want * ERROR * (1 + 1e-9), (what, key, answer[key], want)


def latency(backend, **params):
    status, body = request("GET", backend.url + "/api/metrics/latency?" + urllib.parse.urlencode(params))
    assert status == 200, (params, body)
    assert body["relative_error"] == ERROR
    return body


def by_name(body):
    return {item["name"]: item for item in body["items"]}


def post(backend, events):
    for start in range(0, len(events), 5000):
        status, body = request("POST", backend.url + "/api/events", events[start:start + 5000])
        assert status == 200, body


class Calls:
    """The calls posted, to compute what the route must answer: (day, agent, model, tool, ms, run)."""

    def __init__(self):
        self.rows = []
        self.events = []

    def add(self, day, agent, run, ms, model=None, tool=None, second=0):
        ts = f"{day}T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.{second % 997:06d}Z"
        n = len(self.events)
        if model:
            self.events.append(event(f"llm-{n}", run_id=run, agent=agent, event_type="llm_call", ts=ts, model=model,
                                     latency_ms=ms, prompt="hi"))
        else:
            self.events.append(event(f"tool-{n}", run_id=run, agent=agent, event_type="tool_call", ts=ts,
                                     tool_name=tool, duration_ms=ms))
        self.rows.append((day, agent, model, tool, ms, run, ts))

    def values(self, by, name=None, day=None, agent=None, run_out=None, since=None, until=None):
        out = []
        for d, a, model, tool, ms, run, ts in self.rows:
            key = {"agent": a, "model": model, "tool": tool}[by]
            if key is None or (name and key != name) or (day and d != day) or (agent and a != agent):
                continue
            if run == run_out or (since and ts < since) or (until and ts >= until):
                continue
            out.append(ms)
        return out


def seed(rng):
    """Three days (the middle one without calls), two agents, two models, two tools."""
    calls = Calls()
    for day in (days_ago(2), days_ago(0)):
        for i in range(600):
            agent = "alpha" if i % 3 else "beta"
            run = f"{agent}-{day}-{i % 4}"
            ms = round(rng.lognormvariate(6, 1.2), 3)
            if i % 5 == 0:
                calls.add(day, agent, run, ms / 10, tool=rng.choice(["search", "lookup"]), second=i * 97)
            else:
                calls.add(day, agent, run, ms, model="gpt-a" if i % 2 else "gpt-b", second=i * 97)
    return calls


def test_percentiles_per_model_tool_and_agent_by_day(backend):
    rng = random.Random(28)
    calls = seed(rng)
    # Noise that is no call with a latency: agent_start with a duration, an LLM call without one.
    noise = [event("start", run_id="alpha-x", agent="alpha", event_type="agent_start", ts=f"{days_ago(0)}T01:00:00Z",
                   duration_ms=5e6),
             event("untimed", run_id="alpha-x", agent="alpha", ts=f"{days_ago(0)}T01:00:01Z", model="gpt-a")]
    shuffled = calls.events + noise
    rng.shuffle(shuffled)  # out of order
    post(backend, shuffled)
    post(backend, shuffled[:700])  # and twice
    dates = [days_ago(2), days_ago(1), days_ago(0)]
    for by, names in (("model", ["gpt-a", "gpt-b"]), ("tool", ["search", "lookup"]), ("agent", ["alpha", "beta"])):
        body = latency(backend, by=by, days=3)
        assert body["by"] == by
        items = by_name(body)
        assert sorted(items) == sorted(names)
        assert [i["calls"] for i in body["items"]] == sorted((i["calls"] for i in body["items"]), reverse=True)
        assert_close(body["total"], calls.values(by), (by, "total"))
        assert [d["date"] for d in body["total"]["days"]] == dates
        for name in names:
            assert_close(items[name], calls.values(by, name), (by, name))
            assert [d["date"] for d in items[name]["days"]] == dates
            for d in items[name]["days"]:
                assert_close(d, calls.values(by, name, day=d["date"]), (by, name, d["date"]))
        assert items[names[0]]["days"][1] == {"date": days_ago(1), "calls": 0, "p50_ms": None, "p95_ms": None,
                                              "p99_ms": None}
    # One agent's calls only; and a range of part days, read from the events.
    beta = by_name(latency(backend, by="model", agent="beta", days=3))
    assert_close(beta["gpt-a"], calls.values("model", "gpt-a", agent="beta"), "beta's gpt-a")
    since, until = f"{days_ago(2)}T06:00:00.000000Z", f"{days_ago(0)}T09:30:00.000000Z"
    body = latency(backend, by="tool", since=since, until=until)
    assert [d["date"] for d in body["total"]["days"]] == dates
    for name, item in by_name(body).items():
        assert_close(item, calls.values("tool", name, since=since, until=until), ("part days", name))


def test_deleted_and_moved_runs_take_their_calls_along(backend):
    calls = seed(random.Random(5))
    post(backend, calls.events)
    gone = f"alpha-{days_ago(0)}-1"
    status, body = request("DELETE", f"{backend.url}/api/runs/{gone}")
    assert status == 200, body
    items = by_name(latency(backend, by="agent", days=3))
    assert_close(items["alpha"], calls.values("agent", "alpha", run_out=gone), "alpha without the run")
    # A run first seen under "stray", whose agent_start later names beta: its calls move to beta.
    moved = [event("m1", run_id="moved", agent="stray", event_type="tool_call", ts=f"{days_ago(0)}T02:00:00Z",
                   tool_name="search", latency_ms=12345.0)]
    post(backend, moved)
    assert by_name(latency(backend, by="agent", days=1))["stray"]["calls"] == 1
    post(backend, [event("m0", run_id="moved", agent="beta", event_type="agent_start", ts=f"{days_ago(0)}T01:59:00Z")])
    items = by_name(latency(backend, by="agent", days=3))
    assert "stray" not in items
    assert_close(items["beta"], calls.values("agent", "beta") + [12345.0], "beta with the moved run")
    status, _ = request("DELETE", f"{backend.url}/api/agents/beta")
    assert status == 200
    assert sorted(by_name(latency(backend, by="model", days=3))) == ["gpt-a", "gpt-b"]
    assert_close(latency(backend, by="model", days=3)["total"], calls.values("model", agent="alpha", run_out=gone),
                 "alpha's models only")


def attribute(key, value):
    return {"key": key, "value": {"stringValue": value}}


def test_otlp_spans_count_their_end_minus_start(backend):
    now = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = int(now.timestamp()) * 1_000_000_000 + 3_600_000_000_000  # 01:00 UTC today
    trace = "0af7651916cd43dd8448eb211c80319c"
    root = {"traceId": trace, "spanId": "a000000000000000", "name": "agent", "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 60_000_000_000),
            "attributes": [attribute("gen_ai.operation.name", "invoke_agent"), attribute("gen_ai.agent.name", "otel")]}
    spans, llm_ms, tool_ms = [root], [], []
    for i in range(40):
        ms = 100 + i * 37.5
        kind = ("chat", "gen_ai.request.model", "gpt-o") if i % 4 else ("execute_tool", "gen_ai.tool.name", "grep")
        (llm_ms if i % 4 else tool_ms).append(ms)
        begin = start + (i + 1) * 1_000_000_000
        spans.append({"traceId": trace, "spanId": f"b{i:015x}", "parentSpanId": root["spanId"], "name": kind[0],
                      "startTimeUnixNano": str(begin), "endTimeUnixNano": str(begin + int(ms * 1_000_000)),
                      "attributes": [attribute("gen_ai.operation.name", kind[0]), attribute(kind[1], kind[2])]})
    body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]}
    req = urllib.request.Request(backend.url + "/v1/traces", data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 200
    assert_close(by_name(latency(backend, by="model", days=1))["gpt-o"], llm_ms, "OTLP LLM spans")
    assert_close(by_name(latency(backend, by="tool", days=1))["grep"], tool_ms, "OTLP tool spans")
    assert_close(by_name(latency(backend, by="agent", days=1))["otel"], llm_ms + tool_ms, "the agent's")


def test_bad_parameters_are_refused_with_a_message(backend):
    for params, status, word in [
        ({"by": "run"}, 400, "`by`"),
        ({"by": "x" * 5000}, 400, "`by`"),
        ({"days": "0"}, 422, "`days`"),
        ({"days": "-1"}, 422, "`days`"),
        ({"days": "99999999999999999999"}, 422, "`days`"),
        ({"since": "yesterday"}, 400, "`since`"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, 400, "before"),
        ({"since": "0000-01-01"}, 400, "`since`"),
        ({"since": "0001-01-01", "until": "9999-12-31"}, 400, "days"),
    ]:
        got, body = request("GET", backend.url + "/api/metrics/latency?" + urllib.parse.urlencode(params))
        assert got == status, (params, body)
        assert word in body["error"], (params, body)
    unknown = latency(backend, by="tool", agent="nobody", days=7)
    assert unknown["items"] == [] and unknown["total"]["calls"] == 0 and len(unknown["total"]["days"]) == 7
    last = latency(backend, since="9999-12-30", until="9999-12-31T12:00:00Z")
    assert [d["date"] for d in last["total"]["days"]] == ["9999-12-30", "9999-12-31"]


def test_a_version_4_database_gets_its_histograms_from_its_events(bin_dir, tmp_path):
    data = tmp_path / "data"
    calls = seed(random.Random(11))
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data)})
    try:
        post(service, calls.events)
        before = latency(service, by="model", days=3)
    finally:
        service.stop()
    db = sqlite3.connect(data / "gati.db")
    db.executescript("DROP TABLE daily_latency; PRAGMA user_version = 4;")
    db.close()
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data)})
    try:
        assert latency(service, by="model", days=3) == before
        assert_close(before["total"], calls.values("model"), "backfilled")
    finally:
        service.stop()
    assert sqlite3.connect(data / "gati.db").execute("PRAGMA user_version").fetchone() == (6,)


def test_the_mcp_tool_answers_the_routes_data(bin_dir, backend):
    from test_mcp_tools import answer, calls, failure

    seeded = seed(random.Random(3))
    post(backend, seeded.events)
    by_model, by_agent, of_beta, bad = calls(
        bin_dir, backend, ("get_latency", {"by": "model", "days": 3}), ("get_latency", {}),
        ("get_latency", {"by": "tool", "agent_name": "beta", "since": days_ago(2), "until": days_ago(-1)}),
        ("get_latency", {"since": "not a date"}))
    summary, data = answer(by_model)
    assert data == latency(backend, by="model", days=3)
    assert "gpt-a" in summary and "p95" in summary
    summary, data = answer(by_agent)
    assert data == latency(backend)
    assert data["by"] == "agent" and sorted(by_name(data)) == ["alpha", "beta"]
    _, data = answer(of_beta)
    assert data == latency(backend, by="tool", agent="beta", since=days_ago(2), until=days_ago(-1))
    assert_close(data["total"], seeded.values("tool", agent="beta"), "beta's tools over the MCP")
    assert "`since`" in failure(bad)


def shown_duration(ms):
    """format.js's `duration` of a latency, as the dashboard writes it."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{math.floor(ms + 0.5)} ms"
    if ms < 60000:
        return f"{ms / 1000:.1f} s"
    return None  # not compared: the seed's percentiles stay under a minute


def test_the_dashboard_charts_the_routes_percentiles(bin_dir, backend, artifacts):
    from test_dashboard_interaction import chart_data, paused_page, visit
    from test_dashboard_pages import dashboard_for

    post(backend, seed(random.Random(9)).events)
    dashboard = dashboard_for(bin_dir, backend.url)
    page = paused_page()
    try:
        visit(page, dashboard, "/metrics?days=7")
        page.locator("#chart-latency").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "dashboard-latency.png"), full_page=True)
        every = latency(backend, by="agent", since=days_ago(6))
        drawn = chart_data(page, "chart-latency")
        days = every["total"]["days"]
        assert drawn["labels"] == [d["date"] for d in days] and len(days) == 7
        assert drawn["names"] == ["p50", "p95", "p99"]
        assert drawn["data"] == [[d[key] for d in days] for key in ("p50_ms", "p95_ms", "p99_ms")]
        assert drawn["empty"] is None
        for host, by in (("#latency-models", "model"), ("#latency-tools", "tool")):
            rows = page.eval_on_selector_all(f"{host} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
            items = latency(backend, by=by, since=days_ago(6))["items"]
            want = [[s["name"], f"{s['calls']:,}", *(shown_duration(s[k]) for k in ("p50_ms", "p95_ms", "p99_ms"))]
                    for s in items]
            assert rows == want, (by, rows, want)
        assert not page.errors, page.errors
    finally:
        page.context.close()
        dashboard.stop()
