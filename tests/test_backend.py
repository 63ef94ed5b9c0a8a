"""gati-backend over real HTTP, on a temporary database."""

import signal
import subprocess
import urllib.parse

from gati_testing import SAMPLE_EVENTS, Service, event, request


def post(backend, body):
    return request("POST", backend.url + "/api/events", body)


def get(backend, path):
    status, body = request("GET", backend.url + path)
    assert status == 200, (path, body)
    return body


def test_health_reports_the_workspace_version(backend, version):
    assert get(backend, "/health") == {"status": "ok", "version": version}


def test_ingest_creates_agents_and_runs_on_first_sight(seeded_backend):
    agents = {a["name"]: a for a in get(seeded_backend, "/api/agents")["agents"]}
    assert agents["support-bot"]["run_count"] == 1
    assert agents["support-bot"]["event_count"] == 4
    assert agents["support-bot"]["last_activity"] == "2026-01-31T12:00:03.000000Z"
    assert agents["triage-bot"]["event_count"] == 1


def test_resending_a_batch_stores_nothing_twice(backend):
    assert post(backend, SAMPLE_EVENTS) == (200, {"stored": 5, "duplicates": 0})
    assert post(backend, {"events": SAMPLE_EVENTS}) == (200, {"stored": 0, "duplicates": 5})
    assert get(backend, "/api/summary")["events"] == 5


def test_a_bad_batch_is_refused_whole_naming_field_and_index(backend):
    bad = [event("ok-1"), event("ok-2"), {**event("bad"), "timestamp": "yesterday"}]
    status, body = post(backend, bad)
    assert status == 422
    assert (body["field"], body["index"]) == ("timestamp", 2)
    assert get(backend, "/api/summary")["events"] == 0

    missing = event("no-run")
    del missing["run_id"]
    status, body = post(backend, [missing])
    assert (status, body["field"], body["index"]) == (422, "run_id", 0)

    status, body = post(backend, [{**event("wrong-type"), "data": ["not", "an", "object"]}])
    assert (status, body["field"]) == (422, "data")
    assert get(backend, "/api/summary")["events"] == 0


def test_error_statuses(backend):
    assert post(backend, b"{not json")[0] == 400
    assert post(backend, [event(f"e{i}") for i in range(1001)])[0] == 413
    status, body = post(backend, b"[" + b" " * (6 * 1024 * 1024) + b"]")
    assert status == 413, body
    assert request("GET", backend.url + "/api/runs/nope")[0] == 404
    assert request("GET", backend.url + "/api/agents/nobody/runs")[0] == 404
    status, body = request("GET", backend.url + "/api/agents?limit=abc")
    assert status == 400 and "limit" in body["error"]
    assert request("GET", backend.url + "/api/nothing-here")[0] == 404


def test_an_agents_runs(seeded_backend):
    body = get(seeded_backend, "/api/agents/support-bot/runs")
    assert body["total"] == 1
    (run,) = body["runs"]
    assert (run["run_id"], run["event_count"]) == ("run-1", 4)
    assert run["started_at"] == "2026-01-31T12:00:00.000000Z"


def test_one_run_has_its_events_in_time_order(backend):
    shuffled = [SAMPLE_EVENTS[i] for i in (3, 0, 2, 1)]
    post(backend, shuffled)
    run = get(backend, "/api/runs/run-1")
    assert [e["event_id"] for e in run["events"]] == ["e1", "e2", "e3", "e4"]
    assert run["events"][1]["data"]["model"] == "gpt-x"


def test_event_search_by_agent_type_and_text(seeded_backend):
    def ids(query):
        return sorted(e["event_id"] for e in get(seeded_backend, "/api/events?" + urllib.parse.urlencode(query))["events"])

    assert ids({"agent": "triage-bot"}) == ["e5"]
    assert ids({"type": "llm_call"}) == ["e2", "e5"]
    assert ids({"q": "ORDER 42"}) == ["e2"]
    assert ids({"agent": "support-bot", "type": "tool_call"}) == ["e3"]
    assert ids({"q": "no such text"}) == []


def test_pagination(seeded_backend):
    first = get(seeded_backend, "/api/events?limit=2")
    second = get(seeded_backend, "/api/events?limit=2&offset=2")
    assert first["total"] == 5 and len(first["events"]) == 2 and len(second["events"]) == 2
    assert not {e["event_id"] for e in first["events"]} & {e["event_id"] for e in second["events"]}
    assert len(get(seeded_backend, "/api/agents?limit=1")["agents"]) == 1


def test_summary_counts_tokens_and_cost(seeded_backend, version):
    summary = get(seeded_backend, "/api/summary")
    assert (summary["agents"], summary["runs"], summary["events"]) == (2, 2, 5)
    assert summary["total_tokens"] == 150
    assert abs(summary["total_cost"] - 0.003) < 1e-9
    assert summary["version"] == version


def test_acknowledged_events_survive_kill_9(bin_dir, backend):
    for i in range(20):
        assert post(backend, [event(f"k{i}", run_id=f"run-{i % 3}")])[0] == 200
    backend.stop(signal.SIGKILL)
    restarted = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(backend.data_dir)})
    try:
        assert get(restarted, "/api/summary")["events"] == 20
    finally:
        restarted.stop()


def test_sigterm_stops_cleanly(backend):
    assert backend.stop(signal.SIGTERM) == 0


def test_healthcheck_subcommand(bin_dir, backend):
    env = {"GATI_PORT": str(backend.port)}
    assert subprocess.run([bin_dir / "gati-backend", "healthcheck"], env=env, capture_output=True).returncode == 0
    backend.stop()
    assert subprocess.run([bin_dir / "gati-backend", "healthcheck"], env=env, capture_output=True).returncode != 0
