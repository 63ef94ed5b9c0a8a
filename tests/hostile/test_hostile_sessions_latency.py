"""The hostile corpus of sessions and latency percentiles: many names over the longest range,
odd session ids and parameters past every bound. Each case asserts its status and its answer."""

import urllib.parse

from gati_testing import request


def get(backend, path):
    return request("GET", backend.url + path, timeout=120)


def post(backend, events):
    status, body = request("POST", backend.url + "/api/events", {"events": events}, timeout=120)
    assert status == 200, body
    return body


def tool_call(i, ms=5):
    return {"event_id": f"t{i}", "run_id": "r1", "agent_name": "a", "event_type": "tool_call",
            "timestamp": "2026-01-31T12:00:00Z", "data": {"tool_name": f"tool-{i:05}", "latency_ms": ms}}


def test_many_names_over_ten_years_answer_a_bounded_report(backend):
    # One batch of distinct tool names, read over ten years: a series per name with a day per
    # date would be names × 3,650 entries (gigabytes for 10,000 names).
    names = 1000
    post(backend, [tool_call(i, ms=1 + i) for i in range(names)])
    status, body = get(backend, "/api/metrics/latency?by=tool&since=2017-01-01&until=2027-01-01")
    assert status == 200, body
    assert body["item_count"] == names
    assert len(body["items"]) == 100, "only the series with most calls"
    assert body["total"]["calls"] == names, "the total still counts every call"
    assert len(body["total"]["days"]) == 3652
    assert all(len(s["days"]) == 3652 and s["calls"] == 1 for s in body["items"])
    assert [s["name"] for s in body["items"]] == [f"tool-{i:05}" for i in range(100)], "ties by name"


def test_odd_session_ids_are_stored_as_sent_or_refused(backend):
    sent = {"\u0000": 200, "a/b": 200, "%2F": 200, "é" * 128: 200, "é" * 129: 422, "x" * 257: 422}
    for i, (session, want) in enumerate(sent.items()):
        e = {"event_id": f"s{i}", "run_id": f"sr{i}", "agent_name": "a", "event_type": "llm_call",
             "timestamp": "2026-01-31T12:00:00Z", "session_id": session, "data": {}}
        status, body = request("POST", backend.url + "/api/events", {"events": [e]})
        assert status == want, (session, body)
        if want == 200:
            status, found = get(backend, "/api/sessions/" + urllib.parse.quote(session, safe=""))
            assert (status, found["session_id"], found["run_count"]) == (200, session, 1), found
    status, body = get(backend, "/api/sessions/%FF")
    assert status == 400 and "UTF-8" in body["error"], body
    status, body = get(backend, "/api/sessions/" + "x" * 300)
    assert status == 400 and "256 bytes" in body["error"], body


def test_a_range_on_the_last_day_of_year_9999_counts_nothing_else_and_ends(backend):
    # The day after 9999-12-31 written as text ("+10000-01-01") sorted before every day: a
    # timeline ending then never ended, a range inside it counted every day before.
    post(backend, [tool_call(1, ms=5)])
    inside = "since=9999-12-31T23:00:00Z&until=9999-12-31T23:30:00Z"
    status, summary = get(backend, "/api/metrics/summary?" + inside)
    assert (status, summary["total_events"], summary["total_tokens_in"]) == (200, 0, 0), summary
    status, latency = get(backend, "/api/metrics/latency?by=tool&" + inside)
    assert (status, latency["items"], latency["item_count"]) == (200, [], 0), latency
    for path in ["/api/metrics/timeline", "/api/metrics/cost-timeline", "/api/metrics/latency"]:
        status, body = request("GET", backend.url + path + "?since=9999-12-30&until=9999-12-31T23:00:00Z", timeout=20)
        assert status == 200, (path, body)
    status, body = get(backend, "/api/metrics/timeline?since=9999-12-30&until=9999-12-31T23:00:00Z")
    assert [d["date"] for d in body] == ["9999-12-30", "9999-12-31"], body


def test_a_range_of_days_never_starts_before_year_1(backend):
    for path in ["/api/metrics/latency", "/api/metrics/timeline"]:
        status, body = get(backend, path + "?until=0001-01-02")
        assert status == 400 and "0001-01-01" in body["error"], (path, body)
        status, body = get(backend, path + "?until=0001-01-02&days=1")
        assert status == 200, (path, body)


def test_an_otlp_session_id_blank_once_cut_names_no_session(backend):
    from test_hostile_otlp import export, span

    # 256 spaces then a letter: cut to 256 bytes it is blank, which a native event's is not taken as.
    blank = span("ab" * 16, "cd" * 8, "root", attributes=[("gen_ai.conversation.id", " " * 256 + "x")])
    kept = span("ef" * 16, "cd" * 8, "root", attributes=[("gen_ai.conversation.id", "  s  ")])
    status, body = request("POST", backend.url + "/v1/traces", export(blank, kept))
    assert status == 200, body
    status, body = get(backend, "/api/sessions")
    assert status == 200 and [s["session_id"] for s in body["sessions"]] == ["  s  "], body
