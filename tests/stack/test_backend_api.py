"""gati-backend over real HTTP, on a temporary database."""

import signal
import sqlite3
import subprocess
import urllib.parse
import uuid

from gati_testing import SAMPLE_EVENTS, Service, event, request


def upstream_event(event_type, run_id, run_name, agent, ts, parent=None, previous=None, **fields):
    """An event exactly as the gati 0.0.3 SDK posts it: `Event.to_dict()` of its dataclasses, whose
    own fields (`model`, `tokens_in`, ... for an `LLMCallEvent`) sit at the top level and again in
    `data`, with a naive `datetime.utcnow().isoformat()` timestamp."""
    return {"event_type": event_type, "run_id": run_id, "run_name": run_name, "timestamp": ts, "agent_name": agent,
            "event_id": str(uuid.uuid4()), "parent_event_id": parent, "previous_event_id": previous,
            "data": dict(fields), **fields}


def upstream_run(agent="support-bot", run_name=None, run_id=None, minute=0):
    """One traced run of the 0.0.3 SDK: agent_start, an llm_call of 100 tokens in and 50 out
    costing $0.00075, a tool_call below it, agent_end. `run_name` None is the SDK's default: a
    `temp_<uuid>` placeholder the backend numbers."""
    run_id = run_id or str(uuid.uuid4())
    run_name = run_name or f"temp_{uuid.uuid4()}"
    ts = f"2026-01-31T12:{minute:02d}:"
    start = upstream_event("agent_start", run_id, run_name, agent, ts + "00", input={"q": "where is order 42?"},
                           metadata={})
    llm = upstream_event("llm_call", run_id, run_name, agent, ts + "01.250000", parent=start["event_id"],
                         previous=start["event_id"], model="gpt-4o-mini", prompt="Find order 42",
                         completion="Calling lookup_order", tokens_in=100, tokens_out=50, latency_ms=850.0,
                         cost=0.00075, system_prompt="You are helpful.")
    tool = upstream_event("tool_call", run_id, run_name, agent, ts + "02.500000", parent=llm["event_id"],
                          previous=llm["event_id"], tool_name="lookup_order", input={"order": 42},
                          output={"status": "shipped"}, latency_ms=120.0)
    end = upstream_event("agent_end", run_id, run_name, agent, ts + "03", parent=start["event_id"],
                         previous=tool["event_id"], output={"answer": "shipped"}, total_duration_ms=3000.0,
                         total_cost=0.00075)
    return [start, llm, tool, end]


def upstream_agent_run(agent="ResearchAgent", init_name="my_agent", run_id=None, minute=0):
    """What 0.0.3 sends for `@track_agent(name=agent)` after `observe.init(name=init_name)`: only
    agent_start and agent_end carry the agent's name; the LLM call and the tool calls inside the
    run are stamped with `init_name`. Five events: agent_start, llm_call, tool_call, a tool_call
    that failed, agent_end."""
    start, llm, tool, end = upstream_run(agent=agent, run_id=run_id, minute=minute)
    ts = f"2026-01-31T12:{minute:02d}:02.750000"
    failed = upstream_event("tool_call", start["run_id"], start["run_name"], agent, ts, parent=start["event_id"],
                            previous=tool["event_id"], tool_name="flaky_tool", input={"query": "x"}, output=None,
                            error={"type": "RuntimeError", "message": "tool exploded"}, latency_ms=5.0)
    end["previous_event_id"] = failed["event_id"]
    for inner in (llm, tool, failed):
        inner["agent_name"] = init_name
    return [start, llm, tool, failed, end]


def post(backend, body):
    return request("POST", backend.url + "/api/events", body)


def get(backend, path):
    status, body = request("GET", backend.url + path)
    assert status == 200, (path, body)
    return body


def test_health_reports_the_workspace_version(backend, version):
    health = get(backend, "/health")
    assert (health["status"], health["version"], health["database"]) == ("ok", version, "ok")
    assert health["retention"] == {"days": None, "deleted_runs": 0, "last_swept_at": None}


def test_ingest_creates_agents_and_runs_on_first_sight(seeded_backend):
    agents = {a["name"]: a for a in get(seeded_backend, "/api/agents")}
    assert agents["support-bot"]["run_count"] == 1
    assert agents["support-bot"]["event_count"] == 4
    assert agents["support-bot"]["last_activity"] == "2026-01-31T12:00:03.000000Z"
    assert agents["triage-bot"]["event_count"] == 1


def test_resending_a_batch_stores_nothing_twice(backend):
    status, body = post(backend, SAMPLE_EVENTS)
    assert (status, body["stored"], body["duplicates"]) == (200, 5, 0)
    status, body = post(backend, {"events": SAMPLE_EVENTS})
    assert (status, body["stored"], body["duplicates"]) == (200, 0, 5)
    # What the upstream backend answered, for scripts written against it.
    assert (body["status"], body["count"], body["failed"]) == ("success", 5, 0)
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
    status, body = post(backend, [event(f"e{i}") for i in range(10_001)])
    assert (status, body["limit_events"]) == (413, 10_000), body
    status, body = post(backend, b"[" + b" " * (16 * 1024 * 1024) + b"]")
    assert (status, body["limit_bytes"]) == (413, 16 * 1024 * 1024), body
    assert post(backend, [event(f"e{i}") for i in range(10_000)])[0] == 200
    assert request("GET", backend.url + "/api/runs/nope")[0] == 404
    assert request("GET", backend.url + "/api/agents/nobody/runs")[0] == 404
    status, body = request("GET", backend.url + "/api/agents?limit=abc")
    assert status == 400 and "limit" in body["error"]
    assert request("GET", backend.url + "/api/nothing-here")[0] == 404


def test_an_agents_runs(seeded_backend):
    (run,) = get(seeded_backend, "/api/agents/support-bot/runs")
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
    assert len(get(seeded_backend, "/api/agents?limit=1")) == 1


def test_summary_counts_tokens_and_cost(seeded_backend, version):
    summary = get(seeded_backend, "/api/summary")
    assert (summary["agents"], summary["runs"], summary["events"]) == (2, 2, 5)
    assert summary["total_tokens"] == 150
    assert abs(summary["total_cost"] - 0.003) < 1e-9
    assert summary["version"] == version


def test_upstream_sdk_events_keep_run_name_tokens_and_cost(backend):
    events = upstream_run(run_name="checkout flow")
    status, body = post(backend, {"events": events})
    assert (status, body["stored"]) == (200, 4), body

    (run,) = get(backend, "/api/runs")["runs"]
    assert (run["run_name"], run["label"], run["agent_name"]) == ("checkout flow", "checkout flow", "support-bot")
    assert (run["tokens_in"], run["tokens_out"], run["total_tokens"]) == (100, 50, 150)
    assert abs(run["total_cost"] - 0.00075) < 1e-12, "agent_end's total_cost must not count twice"
    assert run["total_duration_ms"] == 3000.0 and run["error_count"] == 0 and run["event_count"] == 4

    summary = get(backend, "/api/summary")
    assert (summary["tokens_in"], summary["tokens_out"], summary["total_tokens"]) == (100, 50, 150)
    assert abs(summary["total_cost"] - 0.00075) < 1e-12

    (agent,) = get(backend, "/api/agents")
    assert (agent["tokens_in"], agent["tokens_out"], agent["total_tokens"], agent["run_count"]) == (100, 50, 150, 1)
    assert abs(agent["total_cost"] - 0.00075) < 1e-12 and agent["total_duration_ms"] == 3000.0
    assert get(backend, "/api/agents/support-bot")["total_tokens"] == 150
    (listed,) = get(backend, "/api/agents/support-bot/runs")
    assert listed["run_name"] == "checkout flow" and listed["total_tokens"] == 150

    # The run is addressable by its id, its name, and agent and name as upstream did.
    by_id = get(backend, f"/api/runs/{run['run_id']}")
    for path in ("/api/runs/checkout%20flow", "/api/runs/support-bot/checkout%20flow"):
        assert get(backend, path) == by_id, path
    assert [r["run_id"] for r in get(backend, "/api/runs?name=checkout+flow")["runs"]] == [run["run_id"]]
    assert get(backend, "/api/runs?name=nothing")["runs"] == []

    # Every field the SDK sent comes back.
    llm = by_id["events"][1]
    assert llm["event_id"] == events[1]["event_id"] and llm["parent_event_id"] == events[0]["event_id"]
    assert llm["previous_event_id"] == events[0]["event_id"] and llm["run_name"] == "checkout flow"
    assert llm["data"] == events[1]["data"]
    assert llm["attributes"]["model"] == "gpt-4o-mini" and llm["attributes"]["tokens_in"] == 100
    assert (llm["tokens_in"], llm["tokens_out"], llm["total_tokens"], llm["cost"]) == (100, 50, 150, 0.00075)
    assert llm["timestamp"] == "2026-01-31T12:00:01.250000Z"
    found = get(backend, "/api/events?run_name=checkout+flow&q=You+are+helpful")["events"]
    assert [e["event_id"] for e in found] == [events[1]["event_id"]]


def test_temporary_run_names_are_numbered_per_agent(backend):
    first, second = upstream_run(), upstream_run(minute=5)
    other = upstream_run(agent="triage-bot")
    post(backend, {"events": first[:2]})
    post(backend, {"events": second + other})
    post(backend, {"events": first[2:]})  # later events of a run keep its name
    names = {(r["agent_name"], r["run_id"]): r["run_name"] for r in get(backend, "/api/runs")["runs"]}
    assert names == {("support-bot", first[0]["run_id"]): "run 1", ("support-bot", second[0]["run_id"]): "run 2",
                     ("triage-bot", other[0]["run_id"]): "run 1"}
    assert get(backend, "/api/runs/support-bot/run%202")["run_id"] == second[0]["run_id"]
    assert get(backend, "/api/runs?agent=triage-bot&name=run+1")["total"] == 1
    status, body = request("GET", backend.url + "/api/runs/run%201")
    assert status == 409 and len(body["runs"]) == 2 and "run_id" in body["error"], body
    assert get(backend, f"/api/runs/{first[0]['run_id']}")["event_count"] == 4

    # Without a name the id is the label; a name sent later is kept.
    nameless = event("n1", run_id="nameless-run")
    post(backend, [nameless])
    run = get(backend, "/api/runs/nameless-run")
    assert (run["run_name"], run["label"]) == (None, "nameless-run")
    post(backend, [{**event("n2", run_id="nameless-run"), "run_name": "named later"}])
    assert get(backend, "/api/runs/nameless-run")["label"] == "named later"


def test_a_0_0_3_run_is_its_agents_with_every_event_and_no_phantom_agent(backend):
    """0.0.3 stamps the events inside an agent's run with `observe.init`'s name: they are the run's
    agent's all the same, and the init name is no agent of its own."""
    events = upstream_agent_run()
    assert post(backend, {"events": events})[0] == 200
    ids = sorted(e["event_id"] for e in events)

    agents = get(backend, "/api/agents")
    assert [a["name"] for a in agents] == ["ResearchAgent"], agents
    (agent,) = agents
    assert (agent["run_count"], agent["event_count"], agent["total_tokens"], agent["error_count"]) == (1, 5, 150, 1)
    assert agent["last_activity"] == "2026-01-31T12:00:03.000000Z"
    assert abs(agent["total_cost"] - 0.00075) < 1e-12
    assert get(backend, "/api/agents/ResearchAgent") == agent
    assert request("GET", backend.url + "/api/agents/my_agent")[0] == 404
    summary = get(backend, "/api/summary")
    assert (summary["agents"], summary["runs"], summary["events"]) == (1, 1, 5)

    # Filtering by the agent finds every event of its run, the failing tool call too.
    found = get(backend, "/api/events?agent=ResearchAgent")
    assert sorted(e["event_id"] for e in found["events"]) == ids and found["total"] == 5
    assert {e["agent_name"] for e in found["events"]} == {"ResearchAgent"}
    (error,) = get(backend, "/api/events?agent=ResearchAgent&q=tool+exploded")["events"]
    assert (error["event_id"], error["error"]) == (events[3]["event_id"], True)
    assert get(backend, "/api/events?agent=my_agent")["total"] == 0
    (run,) = get(backend, "/api/runs?agent=ResearchAgent")["runs"]
    assert (run["run_name"], run["event_count"], run["error_count"]) == ("run 1", 5, 1)
    assert sorted(e["event_id"] for e in get(backend, f"/api/runs/{run['run_id']}")["events"]) == ids

    # The name the SDK sent stays readable, and findable, where it is not the agent's.
    sent = {e["event_id"]: e["attributes"].get("agent_name") for e in found["events"]}
    assert sent == {e["event_id"]: None if e["event_type"].startswith("agent_") else "my_agent" for e in events}
    assert get(backend, "/api/events?q=my_agent")["total"] == 3


def test_a_runs_agent_is_the_one_its_agent_start_names_whatever_comes_first(backend):
    inside_first, reversed_batch, start_later = (upstream_agent_run(minute=m) for m in (0, 1, 2))
    post(backend, {"events": inside_first[1:4]})  # a batch of the run's inner events alone...
    post(backend, {"events": inside_first[:1] + inside_first[4:]})  # ...then its agent_start and agent_end
    post(backend, {"events": reversed_batch[::-1]})
    post(backend, {"events": start_later[1:2]})
    post(backend, {"events": start_later[2:] + start_later[:1]})
    # Outside any agent run, 0.0.3's events are the init name's: a real agent with a run.
    post(backend, [event("outside", run_id="global-run", agent="my_agent")])

    runs = {r["run_id"]: r for r in get(backend, "/api/runs")["runs"]}
    for events in (inside_first, reversed_batch, start_later):
        run = runs[events[0]["run_id"]]
        assert (run["agent_name"], run["event_count"], run["error_count"]) == ("ResearchAgent", 5, 1), run
    assert sorted(r["run_name"] for r in runs.values() if r["agent_name"] == "ResearchAgent") == [
        "run 1", "run 2", "run 3"]
    agents = {a["name"]: a for a in get(backend, "/api/agents")}
    assert {name: (a["run_count"], a["event_count"]) for name, a in agents.items()} == {
        "ResearchAgent": (3, 15), "my_agent": (1, 1)}
    assert get(backend, "/api/events?agent=ResearchAgent&limit=500")["total"] == 15
    assert [e["event_id"] for e in get(backend, "/api/events?agent=my_agent")["events"]] == ["outside"]


def test_a_database_with_events_under_the_init_name_is_attributed_to_the_runs_agents(bin_dir, tmp_path):
    """A database of the previous schema (version 1), holding what it stored for 0.0.3: the inner
    events under the init name, an agent for that name, and a run credited to it because its
    LLM call came before its agent_start."""
    data_dir = tmp_path / "v1"
    data_dir.mkdir()
    db = sqlite3.connect(data_dir / "gati.db")
    db.executescript("""
        CREATE TABLE agents (name TEXT PRIMARY KEY, first_seen TEXT NOT NULL);
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, agent_name TEXT NOT NULL REFERENCES agents(name),
                           first_seen TEXT NOT NULL, run_name TEXT);
        CREATE TABLE events (event_id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id),
            agent_name TEXT NOT NULL REFERENCES agents(name), event_type TEXT NOT NULL, timestamp TEXT NOT NULL,
            parent_event_id TEXT, data TEXT NOT NULL, previous_event_id TEXT, attributes TEXT NOT NULL DEFAULT '{}',
            tokens_in INTEGER, tokens_out INTEGER, total_tokens INTEGER, cost REAL, duration_ms REAL,
            error INTEGER NOT NULL DEFAULT 0);
        INSERT INTO agents VALUES ('ResearchAgent', '2026-01-01T00:00:00.000000Z'),
                                  ('my_agent', '2026-01-01T00:00:01.000000Z'),
                                  ('WriterAgent', '2026-01-01T00:01:00.000000Z');
        INSERT INTO runs VALUES ('r1', 'ResearchAgent', '2026-01-01T00:00:00.000000Z', 'run 1'),
                                ('w1', 'WriterAgent', '2026-01-01T00:01:00.000000Z', 'run 1'),
                                ('w2', 'my_agent', '2026-01-01T00:02:00.000000Z', 'run 1');
        INSERT INTO events (event_id, run_id, agent_name, event_type, timestamp, data, attributes,
                            tokens_in, tokens_out, total_tokens, cost, error) VALUES
            ('r1-start', 'r1', 'ResearchAgent', 'agent_start', '2026-01-01T00:00:00.000000Z', '{}', '{}',
             NULL, NULL, NULL, NULL, 0),
            ('r1-llm', 'r1', 'my_agent', 'llm_call', '2026-01-01T00:00:01.000000Z', '{"tokens_in": 100}',
             '{"model": "gpt-4o"}', 100, NULL, 100, 0.5, 0),
            ('r1-tool', 'r1', 'my_agent', 'tool_call', '2026-01-01T00:00:02.000000Z',
             '{"error": "tool exploded"}', '{}', NULL, NULL, NULL, NULL, 1),
            ('r1-end', 'r1', 'ResearchAgent', 'agent_end', '2026-01-01T00:00:03.000000Z', '{}', '{}',
             NULL, NULL, NULL, NULL, 0),
            ('w1-start', 'w1', 'WriterAgent', 'agent_start', '2026-01-01T00:01:00.000000Z', '{}', '{}',
             NULL, NULL, NULL, NULL, 0),
            ('w2-llm', 'w2', 'my_agent', 'llm_call', '2026-01-01T00:02:00.000000Z', '{}', '{}',
             NULL, NULL, NULL, NULL, 0),
            ('w2-start', 'w2', 'WriterAgent', 'agent_start', '2026-01-01T00:02:01.000000Z', '{}', '{}',
             NULL, NULL, NULL, NULL, 0);
        PRAGMA user_version = 1;
    """)
    db.close()
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data_dir)})
    try:
        agents = {a["name"]: a for a in get(service, "/api/agents")}
        assert {name: (a["run_count"], a["event_count"], a["error_count"]) for name, a in agents.items()} == {
            "ResearchAgent": (1, 4, 1), "WriterAgent": (2, 3, 0)}, agents
        assert agents["ResearchAgent"]["total_tokens"] == 100
        assert get(service, "/api/summary")["agents"] == 2
        found = get(service, "/api/events?agent=ResearchAgent")["events"]
        assert sorted(e["event_id"] for e in found) == ["r1-end", "r1-llm", "r1-start", "r1-tool"]
        llm = get(service, "/api/runs/r1")["events"][1]
        assert (llm["agent_name"], llm["attributes"]) == ("ResearchAgent", {"model": "gpt-4o", "agent_name": "my_agent"})
        # The run credited to the init name is WriterAgent's; its name no longer repeats one.
        names = {r["run_id"]: (r["agent_name"], r["run_name"]) for r in get(service, "/api/runs")["runs"]}
        assert names == {"r1": ("ResearchAgent", "run 1"), "w1": ("WriterAgent", "run 1"),
                         "w2": ("WriterAgent", "run 2")}
        assert get(service, "/api/events?agent=my_agent")["total"] == 0
        assert request("GET", service.url + "/api/agents/my_agent")[0] == 404
        # New events of a migrated run go to its agent too.
        late = upstream_event("tool_call", "r1", "run 1", "my_agent", "2026-01-01T00:00:02.500000", tool_name="t")
        assert post(service, [late])[0] == 200
        assert get(service, "/api/agents/ResearchAgent")["event_count"] == 5
        assert get(service, "/api/summary")["agents"] == 2
    finally:
        service.stop()


def test_token_spellings_and_errors_add_up(backend):
    spellings = [
        {"tokens_in": 10, "tokens_out": 5},
        {"prompt_tokens": 10, "completion_tokens": 5},
        {"input_tokens": 10, "output_tokens": 5},
        {"usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}},
        {"usage_metadata": {"input_tokens": 10, "output_tokens": 5}},
    ]
    batch = [event(f"s{i}", run_id="spellings", **data) for i, data in enumerate(spellings)]
    batch.append({**event("top", run_id="spellings"), "usage": {"input_tokens": 10, "output_tokens": 5}})
    batch.append(event("fail", run_id="spellings", status="error", error_message="rate limited", latency_ms=40))
    assert post(backend, batch)[0] == 200
    run = get(backend, "/api/runs/spellings")
    assert (run["tokens_in"], run["tokens_out"], run["total_tokens"], run["error_count"]) == (60, 30, 90, 1)
    summary = get(backend, "/api/summary")
    assert (summary["total_tokens"], summary["error_count"]) == (90, 1)
    assert get(backend, "/api/agents/support-bot")["error_count"] == 1


def test_a_database_of_the_first_schema_gets_its_totals(bin_dir, tmp_path):
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    db = sqlite3.connect(data_dir / "gati.db")
    db.executescript("""
        CREATE TABLE agents (name TEXT PRIMARY KEY, first_seen TEXT NOT NULL);
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, agent_name TEXT NOT NULL REFERENCES agents(name),
                           first_seen TEXT NOT NULL);
        CREATE TABLE events (event_id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id),
                             agent_name TEXT NOT NULL REFERENCES agents(name), event_type TEXT NOT NULL,
                             timestamp TEXT NOT NULL, parent_event_id TEXT, data TEXT NOT NULL);
        INSERT INTO agents VALUES ('old-bot', '2026-01-01T00:00:00.000000Z');
        INSERT INTO runs VALUES ('old-run', 'old-bot', '2026-01-01T00:00:00.000000Z');
        INSERT INTO events VALUES ('o1', 'old-run', 'old-bot', 'llm_call', '2026-01-01T00:00:00.000000Z', NULL,
                                   '{"tokens_in": 100, "tokens_out": 50, "cost": 0.5}');
    """)
    db.close()
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data_dir)})
    try:
        summary = get(service, "/api/summary")
        assert (summary["events"], summary["total_tokens"], summary["total_cost"]) == (1, 150, 0.5)
        assert post(service, upstream_run(agent="old-bot"))[0] == 200
        assert get(service, "/api/agents/old-bot")["total_tokens"] == 300
    finally:
        service.stop()


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
