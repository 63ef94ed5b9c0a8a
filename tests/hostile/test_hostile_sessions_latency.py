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
