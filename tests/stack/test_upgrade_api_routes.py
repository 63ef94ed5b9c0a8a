"""Every HTTP route of gati 0.0.3's backend on ours, fed by the REAL gati 0.0.3 SDK (issue 20).

A script written against 0.0.3's SDK records four runs of two agents on different days (its
events carry their own timestamps, as any event may): planner's runs "first" 3 days ago,
"second" yesterday and "third" today (it fails), writer's "draft" yesterday. (0.0.3's `temp_`
run numbering is test_backend_api's: it follows the order batches arrive in, which 0.0.3's
background flushing does not fix.) Then every 0.0.3 route is called and its fields and
values checked — totals, averages, top agents, the timelines' day buckets (by the events' own
days, zeros between), the trace's nesting — and a run is renamed and deleted and an agent
deleted, with the totals following. Beside it: time ranges, retention, /health on a broken
database, and the OpenAPI document.

The 0.0.3 environment is test_upgrade_sdk's (target/compat, installed once from the package index).
"""

import contextlib
import json
import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from gati_testing import Daily, Service, days_ago as day, event, request
from test_upgrade_sdk import FRAMEWORKS, UPSTREAM, environment, run_script

SCRIPT = '''
import uuid
from datetime import datetime, timedelta
from gati import observe
from gati.core.event import AgentEndEvent, AgentStartEvent, LLMCallEvent, ToolCallEvent

observe.init(name="stack-test")
GRAPH = {"nodes": ["plan", "act"], "edges": [{"from": "plan", "to": "act", "type": "regular"}]}


def run(agent, name, days_ago, tokens_in, tokens_out, cost, fail=False):
    noon = datetime.utcnow().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
    at = lambda seconds: (noon + timedelta(seconds=seconds)).isoformat()
    common = {"run_id": str(uuid.uuid4()), "run_name": name, "agent_name": agent}
    start = AgentStartEvent(**common, timestamp=at(0), input={"query": "plan the trip"},
                            metadata={"graph_structure": GRAPH})
    llm = LLMCallEvent(**common, timestamp=at(1), parent_event_id=start.event_id,
                       previous_event_id=start.event_id, model="gpt-4o", prompt="Plan a trip to Lisbon",
                       completion="Day 1: Alfama", tokens_in=tokens_in, tokens_out=tokens_out, latency_ms=800.0,
                       cost=cost)
    tool = ToolCallEvent(**common, timestamp=at(2), parent_event_id=llm.event_id, previous_event_id=llm.event_id,
                         tool_name="weather", input={"city": "Lisbon"}, output={"sky": "clear"}, latency_ms=120.0)
    data = {"output": {"answer": "done"}, "total_duration_ms": 3000.0, "total_cost": cost}
    if fail:
        data = {"output": None, "error": {"type": "ValueError", "message": "gave up"}, "total_duration_ms": 3000.0}
    end = AgentEndEvent(**common, timestamp=at(3), parent_event_id=start.event_id, previous_event_id=tool.event_id,
                        data=data)
    for e in (start, llm, tool, end):
        observe.track_event(e)


run("planner", "first", 3, 100, 50, 0.01)
run("planner", "second", 1, 200, 100, 0.02)
run("writer", "draft", 1, 1000, 500, 0.5)
run("planner", "third", 0, 300, 150, 0.03, fail=True)
observe.flush()
print("recorded")
'''

def call(url, method="GET", body=None, headers=None):
    """(status, headers, parsed JSON) of a request; JSON content type unless `headers` says otherwise."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"content-type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method, headers={k: v for k, v in all_headers.items() if v})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def get(backend, path):
    status, _, body = call(backend.url + path)
    assert status == 200, (path, body)
    return body


@pytest.fixture(scope="session")
def upstream_python():
    return environment("venv-gati-0.0.3", [UPSTREAM, *FRAMEWORKS])


def record(bin_dir, upstream_python, work):
    """A backend holding the script's four runs, recorded by the real gati 0.0.3."""
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(work / "data")})
    result = run_script(upstream_python, {}, service.url, work, code=SCRIPT)
    assert result.returncode == 0 and result.stdout.strip() == "recorded", result.stderr[-3000:]
    return service


@contextlib.contextmanager
def recorded(bin_dir, upstream_python, work):
    service = record(bin_dir, upstream_python, work)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def daily_stack(bin_dir, upstream_python, tmp_path_factory):
    with Daily(lambda: recorded(bin_dir, upstream_python, tmp_path_factory.mktemp("stack"))) as daily:
        yield daily


@pytest.fixture
def stack(daily_stack):
    """The recorded backend, recorded today (UTC): its runs are dated relative to the day."""
    return daily_stack.get()


def approx(x):
    return pytest.approx(x, abs=1e-9)


def test_root_names_the_service_and_health_reads_the_database(stack, version):
    root = get(stack, "/")
    assert (root["name"], root["version"], root["status"]) == ("gati-backend", version, "running")
    health = get(stack, "/health")
    assert (health["status"], health["database"], health["version"]) == ("ok", "ok", version)


def test_agents_are_0_0_3s_bare_array_with_its_fields(stack):
    status, headers, agents = call(stack.url + "/api/agents")
    assert status == 200 and isinstance(agents, list) and headers["x-total-count"] == "2"
    by_name = {a["name"]: a for a in agents}
    assert [a["name"] for a in agents] == ["planner", "writer"], "most recently active first"
    planner = by_name["planner"]
    assert {"name", "description", "total_runs", "total_events", "total_cost", "avg_cost", "created_at"} <= set(planner)
    assert (planner["total_runs"], planner["total_events"], planner["description"]) == (3, 12, None)
    assert (planner["total_cost"], planner["avg_cost"]) == (approx(0.06), approx(0.02))
    assert planner["created_at"].startswith(day(3))
    assert get(stack, "/api/agents/planner") == planner
    assert call(stack.url + "/api/agents/nobody")[0] == 404


def test_an_agents_runs_are_0_0_3s_bare_array_with_a_truthful_status(stack):
    status, headers, runs = call(stack.url + "/api/agents/planner/runs")
    assert status == 200 and headers["x-total-count"] == "3"
    fields = {"run_name", "agent_name", "environment", "status", "total_duration_ms", "total_cost", "tokens_in",
              "tokens_out", "created_at"}
    assert all(fields <= set(r) for r in runs), runs
    assert [(r["run_name"], r["status"], r["tokens_in"], r["tokens_out"]) for r in runs] == [
        ("third", "failed", 300, 150), ("second", "completed", 200, 100), ("first", "completed", 100, 50)]
    assert [r["created_at"][:10] for r in runs] == [day(0), day(1), day(3)]
    assert all(r["total_duration_ms"] == 3000.0 for r in runs)
    assert [r["run_name"] for r in get(stack, "/api/agents/planner/runs?limit=1&offset=1")] == ["second"]
    assert call(stack.url + "/api/agents/nobody/runs")[0] == 404


def test_agent_metrics(stack):
    m = get(stack, "/api/agents/planner/metrics")
    assert (m["agent_name"], m["total_runs"], m["total_events"]) == ("planner", 3, 12)
    assert (m["total_cost"], m["avg_cost_per_run"]) == (approx(0.06), approx(0.02))
    assert (m["total_tokens_in"], m["total_tokens_out"], m["avg_tokens_in"], m["avg_tokens_out"]) == (600, 300, 200, 100)
    assert (m["total_duration_ms"], m["avg_duration_ms"]) == (9000.0, 3000.0)
    assert call(stack.url + "/api/agents/nobody/metrics")[0] == 404


def test_metrics_summary_with_top_agents(stack):
    s = get(stack, "/api/metrics/summary")
    assert (s["total_agents"], s["total_runs"], s["total_events"]) == (2, 4, 16)
    assert (s["total_cost"], s["avg_cost_per_run"]) == (approx(0.56), approx(0.14))
    assert (s["total_tokens_in"], s["total_tokens_out"]) == (1600, 800)
    assert (s["avg_tokens_in_per_run"], s["avg_tokens_out_per_run"]) == (400, 200)
    assert s["total_duration_hours"] == approx(12000 / 3_600_000)
    assert s["top_agents_by_cost"] == [{"agent_name": "writer", "cost": approx(0.5)},
                                       {"agent_name": "planner", "cost": approx(0.06)}]
    assert s["top_agents_by_runs"] == [{"agent_name": "planner", "runs": 3}, {"agent_name": "writer", "runs": 1}]
    assert s["error_count"] == 1


def test_timelines_bucket_by_the_events_own_days_with_zeros_between(stack):
    cost = get(stack, "/api/metrics/cost-timeline?days=7")
    assert [p["date"] for p in cost] == [day(d) for d in range(6, -1, -1)]
    assert all(p["timestamp"] == f"{p['date']}T00:00:00Z" for p in cost)
    by_day = {p["date"]: p for p in cost}
    assert [by_day[day(d)]["cost"] for d in (6, 3, 2, 1, 0)] == [0, approx(0.01), 0, approx(0.52), approx(0.03)]
    assert [p["cumulative_cost"] for p in cost][-1] == approx(0.56)
    assert by_day[day(2)]["cumulative_cost"] == approx(0.01)
    assert (by_day[day(1)]["runs"], by_day[day(1)]["events"]) == (2, 8)
    tokens = {p["date"]: p for p in get(stack, "/api/metrics/tokens-timeline?days=7")}
    assert (tokens[day(1)]["tokens_in"], tokens[day(1)]["tokens_out"]) == (1200, 600)
    assert (tokens[day(0)]["cumulative_tokens_in"], tokens[day(0)]["cumulative_tokens_out"]) == (1600, 800)
    assert tokens[day(2)] | {"date": None, "timestamp": None} == {
        "date": None, "timestamp": None, "tokens_in": 0, "tokens_out": 0, "total_tokens": 0,
        "cumulative_tokens_in": 100, "cumulative_tokens_out": 50, "cumulative_total_tokens": 150}
    assert len(get(stack, "/api/metrics/cost-timeline")) == 30, "0.0.3's default: 30 days"
    # Of one agent, and over a range of one's own.
    writer = get(stack, f"/api/metrics/cost-timeline?agent=writer&since={day(2)}&until={day(0)}")
    assert [(p["date"], p["cost"]) for p in writer] == [(day(2), 0), (day(1), approx(0.5))]
    daily = {p["date"]: p for p in get(stack, "/api/metrics/timeline?days=4")}
    assert (daily[day(0)]["errors"], daily[day(0)]["llm_calls"], daily[day(3)]["events"]) == (1, 1, 4)


def test_agents_comparison_and_cost_per_model(stack):
    rows = get(stack, "/api/metrics/agents-comparison")
    assert [(r["agent_name"], r["runs"], r["cost"], r["avg_cost_per_run"], r["total_tokens"]) for r in rows] == [
        ("writer", 1, approx(0.5), approx(0.5), 1500), ("planner", 3, approx(0.06), approx(0.02), 900)]
    (model,) = get(stack, "/api/metrics/models")
    assert (model["model"], model["calls"], model["cost"], model["tokens_in"]) == ("gpt-4o", 4, approx(0.56), 1600)
    assert model["avg_latency_ms"] == 800.0


def test_a_run_its_timeline_and_its_nested_trace(stack):
    run = get(stack, "/api/runs/planner/third")
    fields = {"run_name", "agent_name", "environment", "status", "total_duration_ms", "total_cost", "tokens_in",
              "tokens_out", "metadata", "created_at", "event_count"}
    assert fields <= set(run)
    assert (run["status"], run["event_count"], run["total_cost"], run["error_count"]) == ("failed", 4, approx(0.03), 1)
    timeline = get(stack, "/api/runs/planner/third/timeline")
    assert [e["event_type"] for e in timeline["events"]] == ["agent_start", "llm_call", "tool_call", "agent_end"]
    assert all({"event_id", "event_type", "timestamp", "data"} <= set(e) for e in timeline["events"])
    assert (timeline["run_name"], timeline["status"], timeline["total_duration_ms"]) == ("third", "failed", 3000.0)

    trace = get(stack, "/api/runs/planner/third/trace")
    assert (trace["run_name"], trace["agent_name"], trace["total_tokens_in"], trace["total_tokens_out"]) == (
        "third", "planner", 300, 150)
    assert trace["total_cost"] == approx(0.03) and trace["total_duration_ms"] == 3000.0
    assert trace["graph_structure"]["nodes"] == ["plan", "act"]
    start, end = trace["execution_tree"]
    assert (start["event_type"], end["event_type"], end["children"]) == ("agent_start", "agent_end", [])
    (llm,) = start["children"]
    assert (llm["event_type"], llm["latency_ms"], llm["tokens_in"], llm["tokens_out"]) == ("llm_call", 800.0, 300, 150)
    assert llm["cost"] == approx(0.03) and llm["depth"] == 1
    (tool,) = llm["children"]
    assert (tool["event_type"], tool["latency_ms"], tool["depth"], tool["children"]) == ("tool_call", 120.0, 2, [])
    assert (start["subtree"]["events"], start["subtree"]["total_tokens"]) == (3, 450)
    assert end["error"] and end["data"]["error"]["message"] == "gave up"
    for path in ("/api/runs/planner/run%209", "/api/runs/planner/run%209/timeline", "/api/runs/nobody/first/trace"):
        assert call(stack.url + path)[0] == 404, path


def test_time_ranges_on_runs_events_search_and_metrics(stack):
    since, until = f"{day(1)}T00:00:00Z", f"{day(0)}T00:00:00Z"
    runs = get(stack, f"/api/runs?since={since}&until={until}")
    assert sorted((r["agent_name"], r["run_name"]) for r in runs["runs"]) == [("planner", "second"), ("writer", "draft")]
    assert get(stack, f"/api/runs?since={since}")["total"] == 3
    assert [r["run_name"] for r in get(stack, f"/api/agents/planner/runs?until={until}")] == ["second", "first"]
    assert get(stack, f"/api/runs?status=failed")["runs"][0]["run_name"] == "third"
    events = get(stack, f"/api/events?type=llm_call&since={since}&until={until}")
    assert sorted(e["tokens_in"] for e in events["events"]) == [200, 1000] and events["total"] == 2
    # A naive time is UTC; an offset counts; a date is its midnight.
    noon = f"{day(1)}T12:00:01"
    assert get(stack, f"/api/events?since={noon}&until={day(0)}")["total"] == 6
    shifted = urllib.parse.quote(f"{day(1)}T14:00:01+02:00")
    assert get(stack, f"/api/events?since={shifted}&until={day(0)}")["total"] == 6
    found = get(stack, f"/api/events?q=Lisbon&since={since}")
    assert found["total"] == 6 and not found["total_capped"]
    s = get(stack, f"/api/metrics/summary?since={since}")
    assert (s["total_runs"], s["total_events"], s["total_cost"]) == (3, 12, approx(0.55))
    assert s["top_agents_by_runs"] == [{"agent_name": "planner", "runs": 2}, {"agent_name": "writer", "runs": 1}]
    # Within a day: only its events count (the run's last two events of yesterday's planner run).
    part = get(stack, f"/api/agents/planner/metrics?since={day(1)}T12:00:02Z&until={day(1)}T13:00:00Z")
    assert (part["total_events"], part["total_runs"], part["total_tokens_in"]) == (2, 1, 0)
    assert get(stack, f"/api/summary?until={day(2)}")["events"] == 4

    for bad, name in [("since=yesterday", "since"), ("until=2026-13-01", "until"),
                      (f"since={day(0)}&until={day(1)}", "since")]:
        status, _, body = call(stack.url + "/api/events?" + bad)
        assert status == 400 and f"`{name}`" in body["error"], (bad, body)
    for days in ("0", "366", "week"):
        status, _, body = call(stack.url + f"/api/metrics/cost-timeline?days={days}")
        assert status == 422 and "`days`" in body["error"], body
    assert call(stack.url + "/api/runs?status=sleeping")[0] == 400
    assert call(stack.url + "/api/runs?agent=nobody")[0] == 404


def test_rename_and_delete_a_run_and_an_agent_and_the_totals_follow(bin_dir, upstream_python, tmp_path):
    backend = record(bin_dir, upstream_python, tmp_path)
    try:
        url = backend.url
        assert get(backend, "/api/events?q=Lisbon")["total"] == 8
        status, _, run = call(url + "/api/runs/planner/first", "PATCH", {"new_run_name": "first trip"})
        assert (status, run["run_name"], run["agent_name"], run["tokens_in"]) == (200, "first trip", "planner", 100)
        assert get(backend, "/api/runs/planner/first%20trip")["run_id"] == run["run_id"]
        assert call(url + "/api/runs/planner/first")[0] == 404
        status, _, body = call(url + "/api/runs/planner/second", "PATCH", {"new_run_name": "first trip"})
        assert status == 400 and "already exists" in body["error"], body
        for bad in ({}, {"new_run_name": ""}, {"new_run_name": 7}, {"new_run_name": "x" * 256}):
            status, _, body = call(url + "/api/runs/planner/second", "PATCH", bad)
            assert (status, body["field"]) == (422, "new_run_name"), (bad, body)
        # A write's body must be JSON, a DELETE's too (the local guard; a DELETE without a body needs
        # no content type: no browser sends one cross-site without a preflight).
        assert call(url + "/api/runs/planner/second", "DELETE", "x", headers={"content-type": "text/plain"})[0] == 415
        assert call(url + "/api/runs/planner/second", "PATCH", {"new_run_name": "x"},
                    headers={"content-type": "text/plain"})[0] == 415
        assert call(url + "/api/runs/planner/second", "DELETE", headers={"origin": "http://evil.example"})[0] == 403

        status, _, deleted = call(url + "/api/runs/planner/first%20trip", "DELETE")
        assert (status, deleted["status"], deleted["deleted_events"], deleted["run_name"]) == (200, "success", 4,
                                                                                              "first trip")
        assert call(url + "/api/runs/planner/first%20trip", "DELETE")[0] == 404
        planner = get(backend, "/api/agents/planner")
        assert (planner["total_runs"], planner["total_events"], planner["total_cost"]) == (2, 8, approx(0.05))
        cost = {p["date"]: p["cost"] for p in get(backend, "/api/metrics/cost-timeline?days=7")}
        assert cost[day(3)] == 0, "the deleted run's day is empty again"
        assert get(backend, "/api/metrics/summary")["total_cost"] == approx(0.55)
        assert get(backend, "/api/events?q=Lisbon")["total"] == 6, "its events left the search too"

        status, _, deleted = call(url + "/api/agents/writer", "DELETE")
        assert (status, deleted["deleted_runs"], deleted["deleted_events"]) == (200, 1, 4)
        assert call(url + "/api/agents/writer")[0] == 404 and call(url + "/api/agents/writer", "DELETE")[0] == 404
        assert [a["name"] for a in get(backend, "/api/agents")] == ["planner"]
        s = get(backend, "/api/metrics/summary")
        assert (s["total_agents"], s["total_runs"], s["total_events"], s["total_cost"]) == (1, 2, 8, approx(0.05))
        assert get(backend, "/api/metrics/agents-comparison")[0]["agent_name"] == "planner"
        assert get(backend, "/api/metrics/models")[0]["calls"] == 2
        assert get(backend, "/api/summary")["events"] == 8
        assert get(backend, "/api/events?q=Lisbon")["total"] == 4
    finally:
        backend.stop()


def post(url, events):
    status, _, body = call(url + "/api/events", "POST", events)
    assert status == 200, body


def test_retention_deletes_runs_whose_last_event_is_older(bin_dir, tmp_path):
    data = tmp_path / "data"
    stamp = lambda days_ago: (datetime.now(timezone.utc) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data)})
    try:
        post(backend.url, [
            event("old-1", run_id="old", ts=stamp(10), tokens=100, cost=1.0, note="ancient"),
            event("old-2", run_id="old", ts=stamp(9), tokens=100, cost=1.0, note="ancient"),
            event("long-1", run_id="long", ts=stamp(12), tokens=10, cost=0.5),
            event("long-2", run_id="long", ts=stamp(0), tokens=10, cost=0.5),
            event("new-1", run_id="new", agent="triage-bot", ts=stamp(1), tokens=1, cost=0.25),
            event("gone-1", run_id="gone", agent="gone-bot", ts=stamp(30)),
        ])
        assert get(backend, "/health")["retention"]["days"] is None
        assert get(backend, "/api/events?q=ancient")["total"] == 2
    finally:
        backend.stop()
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data), "GATI_RETENTION_DAYS": "7"})
    try:
        retention = get(backend, "/health")["retention"]
        assert (retention["days"], retention["deleted_runs"]) == (7, 2) and retention["last_swept_at"]
        runs = sorted(r["run_id"] for r in get(backend, "/api/runs")["runs"])
        assert runs == ["long", "new"], "a run is kept while its last event is recent"
        assert sorted(a["name"] for a in get(backend, "/api/agents")) == ["support-bot", "triage-bot"]
        summary = get(backend, "/api/summary")
        assert (summary["runs"], summary["events"], summary["total_tokens"], summary["total_cost"]) == (
            2, 3, 21, approx(1.25))
        assert get(backend, "/api/agents/support-bot")["total_tokens"] == 20
        assert get(backend, "/api/events?q=ancient")["total"] == 0
    finally:
        backend.stop()
    assert "runs whose last event is older than 7 days are deleted" in backend.proc.stderr.read().decode()
    status = subprocess.run([bin_dir / "gati-backend"], env={"GATI_RETENTION_DAYS": "a week", "GATI_PORT": "1",
                                                             "GATI_DATA_DIR": str(data)}, capture_output=True, text=True)
    assert status.returncode != 0 and 'GATI_RETENTION_DAYS="a week"' in status.stderr


@pytest.mark.parametrize("breakage", ["garbage", "deleted"])
def test_health_is_503_with_the_reason_when_the_database_is_broken(bin_dir, backend, breakage):
    db = backend.data_dir / "gati.db"
    assert get(backend, "/health")["database"] == "ok"
    if breakage == "garbage":
        # Everything in the file itself first (as a checkpoint leaves it), then the file overwritten.
        checkpoint = sqlite3.connect(db)
        assert checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        checkpoint.close()
        db.write_bytes(b"this is not a database" * 1000)
    else:
        db.unlink()
    status, _, health = call(backend.url + "/health")
    assert (status, health["status"], health["database"]) == (503, "unhealthy", "error"), health
    assert str(db) in health["error"], health
    check = subprocess.run([bin_dir / "gati-backend", "healthcheck"], env={"GATI_PORT": str(backend.port)},
                           capture_output=True)
    assert check.returncode != 0


# Every route of gati 0.0.3's backend, and ours.
UPSTREAM_ROUTES = [
    ("get", "/"), ("get", "/health"), ("post", "/api/events"), ("get", "/api/agents"),
    ("get", "/api/agents/{name}"), ("delete", "/api/agents/{name}"), ("get", "/api/agents/{name}/runs"),
    ("get", "/api/agents/{name}/metrics"), ("get", "/api/metrics/summary"), ("get", "/api/metrics/cost-timeline"),
    ("get", "/api/metrics/tokens-timeline"), ("get", "/api/metrics/agents-comparison"),
    ("get", "/api/runs/{agent}/{run}"), ("patch", "/api/runs/{agent}/{run}"), ("delete", "/api/runs/{agent}/{run}"),
    ("get", "/api/runs/{agent}/{run}/timeline"), ("get", "/api/runs/{agent}/{run}/trace"),
]
OUR_ROUTES = [
    ("get", "/api/events"), ("get", "/api/events/{event_id}"), ("get", "/api/events/{event_id}/children"),
    ("get", "/api/runs"), ("get", "/api/runs/{run}"), ("patch", "/api/runs/{run}"), ("delete", "/api/runs/{run}"),
    ("get", "/api/summary"), ("get", "/api/metrics/timeline"), ("get", "/api/metrics/models"),
]


def test_the_openapi_document_lists_every_route_and_each_answers(stack):
    doc = get(stack, "/openapi.json")
    assert doc["openapi"].startswith("3.1"), doc["openapi"]
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert set(UPSTREAM_ROUTES + OUR_ROUTES) <= documented, sorted(set(UPSTREAM_ROUTES + OUR_ROUTES) - documented)
    assert "Agent" in doc["components"]["schemas"] and "Trace" in doc["components"]["schemas"]
    # Every documented GET is served (no "no such endpoint"), with its path filled from the data.
    run = get(stack, "/api/runs/planner/second")
    values = {"name": "planner", "agent": "planner", "run": "second", "event_id": run["events"][0]["event_id"],
              "id": "no-such-session"}
    for method, path in sorted(documented):
        if method != "get":
            continue
        status, _, body = call(stack.url + path.format(**values))
        # The recorded runs name no session: that route answers its own 404 (test_sessions.py asks it more).
        if path == "/api/sessions/{id}":
            assert status == 404 and "no session" in body["error"], body
            continue
        assert status == 200, (path, body)
    page = urllib.request.urlopen(stack.url + "/docs", timeout=10).read().decode()
    assert all(f"<code>{path}</code>" in page for _, path in UPSTREAM_ROUTES + OUR_ROUTES)
    status, _, body = call(stack.url + "/api/nothing")
    assert status == 404 and "/docs" in body["error"]


def test_a_database_of_the_previous_schema_is_migrated_and_searchable(bin_dir, tmp_path):
    """A database of version 2 (the schema before totals and the search index): it starts,
    totals and days are computed from its events, and its events can be found."""
    data = tmp_path / "v2"
    data.mkdir()
    db = sqlite3.connect(data / "gati.db")
    db.executescript("""
        CREATE TABLE agents (name TEXT PRIMARY KEY, first_seen TEXT NOT NULL);
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, agent_name TEXT NOT NULL REFERENCES agents(name),
                           first_seen TEXT NOT NULL, run_name TEXT);
        CREATE TABLE events (event_id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id),
            agent_name TEXT NOT NULL REFERENCES agents(name), event_type TEXT NOT NULL, timestamp TEXT NOT NULL,
            parent_event_id TEXT, data TEXT NOT NULL, previous_event_id TEXT, attributes TEXT NOT NULL DEFAULT '{}',
            tokens_in INTEGER, tokens_out INTEGER, total_tokens INTEGER, cost REAL, duration_ms REAL,
            error INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX events_by_run ON events(run_id, timestamp);
        CREATE VIEW run_totals AS SELECT run_id FROM runs;
        INSERT INTO agents VALUES ('old-bot', '2026-01-01T00:00:00.000000Z');
        INSERT INTO runs VALUES ('r1', 'old-bot', '2026-01-01T10:00:00.000000Z', 'run 1');
        INSERT INTO events VALUES
            ('a', 'r1', 'old-bot', 'agent_start', '2026-01-01T10:00:00.000000Z', NULL, '{}', NULL, '{}',
             NULL, NULL, NULL, NULL, NULL, 0),
            ('b', 'r1', 'old-bot', 'llm_call', '2026-01-02T10:00:00.000000Z', 'a',
             '{"model": "gpt-4o", "prompt": "hello\\nancient world"}', NULL, '{}', 10, 5, 15, 0.5, 800, 0),
            ('c', 'r1', 'old-bot', 'agent_end', '2026-01-02T10:00:01.000000Z', 'a', '{}', NULL, '{}',
             NULL, NULL, NULL, NULL, NULL, 0);
        PRAGMA user_version = 2;
    """)
    db.close()
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data)})
    try:
        (agent,) = get(service, "/api/agents")
        assert (agent["total_runs"], agent["total_events"], agent["total_cost"], agent["active_runs"]) == (1, 3, 0.5, 0)
        (run,) = get(service, "/api/agents/old-bot/runs")
        assert (run["status"], run["total_tokens"]) == ("completed", 15)
        cost = get(service, "/api/metrics/cost-timeline?since=2026-01-01&until=2026-01-03")
        assert [(p["date"], p["cost"], p["runs"]) for p in cost] == [("2026-01-01", 0, 1), ("2026-01-02", 0.5, 0)]
        assert get(service, "/api/metrics/models")[0]["model"] == "gpt-4o"
        (found,) = get(service, "/api/events?q=ancient+world")["events"]
        assert found["event_id"] == "b"
        post(service.url, [event("d", run_id="r1", agent="old-bot", ts="2026-01-02T10:00:02Z", tokens=1)])
        assert get(service, "/api/agents/old-bot")["total_events"] == 4
    finally:
        service.stop()
    assert sqlite3.connect(data / "gati.db").execute("PRAGMA user_version").fetchone() == (6,)
