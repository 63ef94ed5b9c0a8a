"""The hostile corpus of the backend's reads, search, renames and deletes: queries in FTS5's own
syntax, phrases with quotes, backslashes, newlines and non-ASCII, names no URL likes, parameters
past every bound, ids freed by a delete, a duplicate event under a new run, and writes racing
deletes. Each case asserts its status and message, that /health still answers, and that what is
stored is as it was (the agents' totals, read before and after)."""

import threading
import urllib.parse

from gati_testing import event, request


def get(backend, path):
    return request("GET", backend.url + path, timeout=60)


def post(backend, events):
    status, body = request("POST", backend.url + "/api/events", {"events": events}, timeout=60)
    assert status == 200, body
    return body


def state(backend):
    status, agents = get(backend, "/api/agents")
    assert status == 200, agents
    status, runs = get(backend, "/api/runs?limit=1000")
    assert status == 200, runs
    return agents, sorted((r["run_id"], r["run_name"], r["event_count"]) for r in runs["runs"])


def still_up(backend):
    status, body = get(backend, "/health")
    assert (status, body["status"]) == (200, "ok"), body


def found(backend, q):
    status, body = get(backend, "/api/events?" + urllib.parse.urlencode({"q": q}))
    assert status == 200, (q, body)
    return {e["event_id"] for e in body["events"]}


def test_fts5_syntax_in_a_query_is_text_never_an_error(backend):
    post(backend, [event("p1", note='say "hello" NEAR the end'), event("p2", note="plain words")])
    before = state(backend)
    for q in ['"', '""', '"unbalanced', "NEAR(a b)", "a NEAR b", "*", "hel*", "-plain", "note:plain", "(", ")",
              "((a)", "a AND", "OR", "NOT x", "^plain", "{note}: x", "\x00", "\\", "'; DROP TABLE events; --"]:
        found(backend, q)
    assert found(backend, 'say "hello"') == {"p1"}
    assert found(backend, "plain words") == {"p2"}
    still_up(backend)
    assert state(backend) == before


def test_phrases_match_the_text_as_the_event_holds_it(backend):
    post(backend, [event("q1", text='she said "stop" now'), event("q2", text="C:\\temp\\gati"),
                   event("q3", text="line one\nline two"), event("q4", text="Émile Zola à Paris")])
    assert found(backend, 'said "stop"') == {"q1"}
    assert found(backend, "C:\\temp") == {"q2"}
    assert found(backend, "one\nline two") == {"q3"}
    assert found(backend, "émile zola") == {"q4"}
    assert found(backend, "EMILE") == {"q4"}


def test_an_event_stored_after_the_newest_run_is_deleted_is_found(backend):
    post(backend, [event("old", run_id="keep", text="first")])
    post(backend, [event("new", run_id="gone", text="second")])
    assert found(backend, "second") == {"new"}
    status, body = request("DELETE", backend.url + "/api/runs/gone")
    assert status == 200, body
    post(backend, [event("later", run_id="fresh", text="quokka")])
    assert found(backend, "quokka") == {"later"}
    assert found(backend, "second") == set()


def test_a_duplicate_event_under_a_new_run_makes_no_run_or_agent(backend):
    post(backend, [event("dup", run_id="first-run", agent="a1")])
    before = state(backend)
    body = post(backend, [event("dup", run_id="other-run", agent="a2")])
    assert (body["stored"], body["duplicates"]) == (0, 1), body
    assert state(backend) == before
    assert get(backend, "/api/agents/a2")[0] == 404
    assert get(backend, "/api/runs/other-run")[0] == 404


NAMES = ["a/b", "a\\b", "tab\tname", "bell\x07", "ünïcödé", "日本語", "emoji 🦘", "%2F", "..", ".", "?x=1", "#frag"]


def test_names_with_slashes_controls_and_non_ascii_round_trip(backend):
    for i, name in enumerate(NAMES):
        post(backend, [event(f"n{i}", run_id=f"nr{i}", agent=name)])
    for i, name in enumerate(NAMES):
        quoted = urllib.parse.quote(name, safe="")
        status, agent = get(backend, f"/api/agents/{quoted}")
        if name in (".", ".."):
            # A client's URL library would rewrite these paths; the answer is a 4xx, never a 5xx.
            assert status < 500, (name, status, agent)
            continue
        assert status == 200 and agent["name"] == name, (name, status, agent)
        status, runs = get(backend, f"/api/agents/{quoted}/runs")
        assert status == 200 and [r["run_id"] for r in runs] == [f"nr{i}"], (name, runs)
    still_up(backend)


def test_parameters_past_their_bounds_are_refused_naming_them(backend):
    post(backend, [event("b1")])
    before = state(backend)
    cases = [
        ("/api/runs?limit=0", 400, "limit"), ("/api/runs?limit=-1", 400, "limit"),
        ("/api/runs?limit=99999999999999999999999", 400, "limit"), ("/api/runs?limit=abc", 400, "limit"),
        ("/api/runs?offset=-1", 400, "offset"), ("/api/runs?offset=1000001", 400, "offset"),
        ("/api/runs?offset=9223372036854775808", 400, "offset"), ("/api/events?offset=1e9", 400, "offset"),
        ("/api/agents?limit=0", 400, "limit"),
        ("/api/runs?since=0000-01-01", 400, "since"), ("/api/runs?until=99999-01-01", 400, "until"),
        ("/api/events?since=not-a-date", 400, "since"),
        ("/api/runs?since=2026-02-01&until=2026-01-01", 400, "since"),
        ("/api/metrics/timeline?days=0", 422, "days"), ("/api/metrics/timeline?days=366", 422, "days"),
        ("/api/metrics/timeline?days=-5", 422, "days"),
        ("/api/metrics/cost-timeline?days=18446744073709551617", 422, "days"),
        ("/api/runs/support-bot/run-1?limit=10001", 400, "limit"),
    ]
    for path, status, word in cases:
        got, body = get(backend, path)
        assert got == status, (path, got, body)
        assert word in body["error"], (path, body)
    # Large but valid pages answer, empty.
    assert get(backend, "/api/runs?offset=1000000")[1]["runs"] == []
    still_up(backend)
    assert state(backend) == before


def test_renames_and_deletes_racing_deletes_answer_4xx(backend):
    post(backend, [event(f"r{i}", run_id=f"race-{i}", agent="racer") for i in range(40)])
    answers, lock = [], threading.Lock()

    def act(method, path, body=None):
        got = request(method, backend.url + path, body, timeout=60)
        with lock:
            answers.append((method, path, got))

    threads = []
    for i in range(40):
        threads.append(threading.Thread(target=act, args=("DELETE", f"/api/runs/race-{i}")))
        threads.append(threading.Thread(target=act, args=("PATCH", f"/api/runs/race-{i}", {"new_run_name": f"n{i}"})))
        threads.append(threading.Thread(target=act, args=("DELETE", f"/api/runs/race-{i}")))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for method, path, (status, body) in answers:
        assert status in (200, 404), (method, path, status, body)
        if status == 404:
            assert "error" in body, body
    # Every run went, once.
    assert sum(1 for m, _, (s, _) in answers if m == "DELETE" and s == 200) == 40
    agents, runs = state(backend)
    assert [r for r in runs if r[0].startswith("race-")] == []
    assert next(a for a in agents if a["name"] == "racer")["total_events"] == 0
    still_up(backend)


def test_deletes_during_ingest_keep_the_totals_true(backend):
    stop = threading.Event()
    failures = []

    def ingest():
        i = 0
        while not stop.is_set() and i < 200:
            status, body = request("POST", backend.url + "/api/events",
                                   {"events": [event(f"i{i}-{j}", run_id=f"ingest-{i}", agent="busy", tokens=3)
                                               for j in range(5)]}, timeout=60)
            if status != 200:
                failures.append((status, body))
            i += 1

    def delete():
        while not stop.is_set():
            status, body = request("DELETE", backend.url + "/api/agents/busy", timeout=60)
            if status not in (200, 404):
                failures.append((status, body))

    threads = [threading.Thread(target=ingest), threading.Thread(target=delete)]
    for t in threads:
        t.start()
    threads[0].join()
    stop.set()
    threads[1].join()
    assert failures == []
    # What is left adds up: the agent's totals are its runs' events.
    status, runs = get(backend, "/api/agents/busy/runs?limit=1000")
    if status == 404:
        return
    assert status == 200, runs
    status, agent = get(backend, "/api/agents/busy")
    assert status == 200, agent
    assert agent["total_events"] == sum(r["event_count"] for r in runs)
    assert agent["total_runs"] == len(runs)
    still_up(backend)
