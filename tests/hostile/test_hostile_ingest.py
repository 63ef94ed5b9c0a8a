"""The hostile corpus of POST /api/events: what a client can send that must never take the
backend down or change what is stored. Each case asserts its status and message, that /health
still answers, and that the agents' totals are as they were after a refused batch."""

import json

import pytest

from gati_testing import event, request

I64_MAX = 2**63 - 1


def post(backend, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request("POST", backend.url + "/api/events", raw, timeout=60)


def agents(backend):
    status, body = request("GET", backend.url + "/api/agents")
    assert status == 200, body
    return body


def still_up(backend):
    status, body = request("GET", backend.url + "/health")
    assert (status, body["status"]) == (200, "ok"), body


def refused(backend, body, status, *words):
    """Posts `body`, expects `status` with an error naming `words`, and nothing stored changed."""
    before = agents(backend)
    got, answer = post(backend, body)
    assert got == status, answer
    for word in words:
        assert word in answer["error"], answer
    still_up(backend)
    assert agents(backend) == before
    return answer


def test_a_chain_of_ten_thousand_events_is_traced_and_the_backend_stays_up(backend):
    chain = [dict(event(f"c{i}", run_id="deep", agent="deep-agent", ts=f"2026-01-31T12:{i // 600 % 60:02}:{i // 10 % 60:02}Z",
                        step=i), parent_event_id=f"c{i - 1}" if i else None) for i in range(10_000)]
    status, body = post(backend, {"events": chain})
    assert status == 200 and body["stored"] == 10_000, body
    status, trace = request("GET", backend.url + "/api/runs/deep-agent/deep/trace", timeout=120)
    assert status == 200, trace
    assert trace["depth_truncated"] is True and trace["depth_limit"] == 32
    node, seen = trace["execution_tree"][0], 0
    for _ in range(31):
        (node,) = node["children"]
    assert node["event_id"] == "c31" and len(node["children"]) == 10_000 - 32
    assert node["children"][-1]["depth_truncated"] is True and node["children"][-1]["depth"] == 32
    stack = list(trace["execution_tree"])
    while stack:
        seen += 1
        stack.extend(stack.pop()["children"])
    assert seen == 10_000
    still_up(backend)


def nested(levels):
    value = 1
    for _ in range(levels):
        value = {"d": value}
    return value


def test_deep_data_is_refused_naming_the_limit(backend):
    post(backend, {"events": [event("ok", d=nested(31))]})
    answer = refused(backend, {"events": [event("deep", d=nested(32))]}, 422, "32")
    assert answer["limit_depth"] == 32
    # Past serde_json's own limit of 128, and far past it: refused unparsed, never a 5xx.
    for levels in (200, 100_000):
        body = ("[" * levels + "]" * levels).encode()
        assert refused(backend, body, 422, "deep")["limit_depth"] == 32


def test_huge_strings(backend):
    big = "x" * (15 * 1024 * 1024)
    status, body = post(backend, {"events": [event("big", prompt=big)]})
    assert status == 200, body
    refused(backend, {"events": [dict(event("t"), timestamp=big)]}, 422, "timestamp")
    refused(backend, {"events": [event("r", run_id="r" * 10_000)]}, 422, "run_id")
    refused(backend, {"events": [event("over", prompt="y" * (17 * 1024 * 1024))]}, 413, "limit")


@pytest.mark.parametrize("data, field", [
    ({"tokens_in": -1}, "data.tokens_in"),
    ({"tokens_in": I64_MAX + 1}, "data.tokens_in"),
    ({"tokens": 1e19}, "data.tokens"),
    ({"tokens": "99999999999999999999"}, "data.tokens"),
    ({"tokens_in": I64_MAX, "tokens_out": 1}, "total_tokens"),
    ({"cost": -0.01}, "data.cost"),
    ({"cost": 1.7e308}, "data.cost"),
    ({"cost": "NaN"}, "data.cost"),
    ({"latency_ms": "Infinity"}, "data.latency_ms"),
])
def test_numbers_no_total_can_hold_are_refused(backend, data, field):
    post(backend, {"events": [event("seed", tokens=5)]})
    answer = refused(backend, {"events": [event("bad", **data)]}, 422, field)
    assert answer["field"] == field and answer["index"] == 0


def test_nan_as_raw_json_and_numbers_past_f64_are_refused(backend):
    refused(backend, b'{"events": [{"event_id": "n", "run_id": "r", "agent_name": "a", "event_type": "llm_call", '
                     b'"timestamp": "2026-01-31T12:00:00Z", "data": {"cost": NaN}}]}', 400, "JSON")
    refused(backend, b'[{"event_id": "n", "run_id": "r", "agent_name": "a", "event_type": "llm_call", '
                     b'"timestamp": "2026-01-31T12:00:00Z", "data": {"tokens": 1e400}}]', 400, "JSON")


def test_numbers_at_the_limit_are_stored_exactly(backend):
    status, body = post(backend, {"events": [event("max", agent="max", tokens_in=I64_MAX)]})
    assert status == 200, body
    (agent,) = [a for a in agents(backend) if a["name"] == "max"]
    assert agent["tokens_in"] == I64_MAX and agent["total_tokens"] == I64_MAX


def test_token_sums_past_i64_over_two_batches_are_refused_and_totals_stay_integers(backend):
    status, body = post(backend, {"events": [event("one", agent="a1", tokens_in=I64_MAX - 5)]})
    assert status == 200, body
    answer = refused(backend, {"events": [event("two", agent="a1", tokens_in=6)]}, 422, "tokens_in", str(I64_MAX))
    assert answer["field"] == "tokens_in" and answer["limit_total"] == I64_MAX
    # Another agent too: the metrics add every agent's totals.
    refused(backend, {"events": [event("three", agent="a2", run_id="other", tokens_in=6)]}, 422, "tokens_in")
    for path in ("/api/agents", "/api/metrics/summary", "/api/runs"):
        status, body = request("GET", backend.url + path)
        assert status == 200, (path, body)
    status, body = post(backend, {"events": [event("four", agent="a1", tokens_in=5)]})
    assert status == 200, body
    (a1,) = [a for a in agents(backend) if a["name"] == "a1"]
    assert a1["tokens_in"] == I64_MAX and isinstance(a1["tokens_in"], int)


@pytest.mark.parametrize("ts", ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z", 1e20,
                                "+10000-01-01T00:00:00"])
def test_far_timestamps_are_refused(backend, ts):
    refused(backend, {"events": [event("far", ts=ts)]}, 422, "timestamp")
