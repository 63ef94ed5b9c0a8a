"""The hostile corpus of POST /v1/traces (OTLP/HTTP): OTLP/JSON with the older GenAI names, spans
out of order and twice, a failed span, and every refusal, each with its status and message. After
each, the backend still answers and what was stored is as it was (or as the spans say)."""

import gzip
import json
import sqlite3
import struct
import urllib.error
import urllib.request

import pytest

from gati_testing import Service, request

I64_MAX = 2**63 - 1
START = 1_769_860_800_000_000_000  # 2026-01-31T12:00:00Z in nanoseconds
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def backend(bin_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("otlp-hostile")
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data)})
    service.data_dir = data
    yield service
    assert service.stop() == 0, "the backend stopped cleanly after the corpus"


def send(backend, body, content_type="application/json", encoding=None, origin=None, timeout=60):
    """(status, headers, body as JSON, or as bytes when it is not JSON)."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    headers = {"content-type": content_type}
    if encoding:
        headers["content-encoding"] = encoding
    if origin:
        headers["origin"] = origin
    req = urllib.request.Request(backend.url + "/v1/traces", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    try:
        return status, headers, json.loads(raw)
    except ValueError:
        return status, headers, raw


def status_and_answer(backend, body, **headers):
    status, _, answer = send(backend, body, **headers)
    return status, answer


def span(trace, span_id, name, parent="", second=0, attributes=(), status=None, events=()):
    start = START + second * 1_000_000_000
    s = {"traceId": trace, "spanId": span_id, "parentSpanId": parent, "name": name,
         "startTimeUnixNano": str(start), "endTimeUnixNano": start + 250_000_000,
         "attributes": [attribute(k, v) for k, v in attributes], "events": list(events)}
    if status:
        s["status"] = status
    return s


def attribute(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def export(*spans, service="hostile-svc"):
    return {"resourceSpans": [{"resource": {"attributes": [attribute("service.name", service)]},
                               "scopeSpans": [{"scope": {"name": "manual"}, "spans": list(spans)}]}]}


def get(backend, path):
    status, body = request("GET", backend.url + path)
    assert status == 200, (path, body)
    return body


def totals(backend):
    """What a refused request must not change: every agent's totals and the summary."""
    return get(backend, "/api/agents"), get(backend, "/api/summary")


def refused(backend, body, status, *words, **headers):
    before = totals(backend)
    got, _, answer = send(backend, body, **headers)
    assert got == status, answer
    assert isinstance(answer, dict), f"every error is JSON: {answer!r}"
    for word in words:
        assert word in answer["error"], answer
    assert get(backend, "/health")["status"] == "ok"
    assert totals(backend) == before
    return answer


def test_otlp_json_with_the_older_names(backend):
    trace = "0AF7651916CD43DD8448EB211C80319C"  # hex is case-insensitive
    llm = span(trace, "B7AD6B7169203331", "chat gpt-4", parent="B7AD6B7169203330", second=1, attributes=[
        ("gen_ai.system", "openai"), ("gen_ai.request.model", "gpt-4"), ("gen_ai.usage.prompt_tokens", 1000),
        ("gen_ai.usage.completion_tokens", 500), ("gen_ai.prompt", "Hello"), ("gen_ai.completion", "Hi"),
        ("llm.request.type", "chat")])
    llm["startTimeUnixNano"] = int(llm["startTimeUnixNano"])  # 64-bit integers as numbers, too
    root = span(trace, "B7AD6B7169203330", "older-root", attributes=[("gen_ai.agent.name", "older-agent")])
    status, headers, answer = send(backend, export(llm, root))
    assert (status, answer, headers["content-type"]) == (200, {}, "application/json")
    run = get(backend, f"/api/runs/{trace.lower()}")
    assert (run["agent_name"], run["run_name"], run["status"]) == ("older-agent", "older-root", "completed")
    (call,) = [e for e in run["events"] if e["event_type"] == "llm_call"]
    assert (call["model"], call["tokens_in"], call["tokens_out"], call["total_tokens"]) == ("gpt-4", 1000, 500, 1500)
    assert call["cost"] == pytest.approx(0.06) and call["duration_ms"] == 250.0
    assert (call["data"]["provider"], call["data"]["prompt"], call["data"]["completion"]) == ("openai", "Hello", "Hi")
    assert call["parent_event_id"] == f"{trace.lower()}-b7ad6b7169203330"


def test_spans_out_of_order_and_twice_keep_the_totals_true(backend):
    trace = "11111111111111111111111111111111"
    chat = [("gen_ai.operation.name", "chat"), ("gen_ai.request.model", "gpt-4o-mini"),
            ("gen_ai.usage.input_tokens", 100), ("gen_ai.usage.output_tokens", 10)]
    grandchild = span(trace, "3333333333333333", "execute_tool lookup", parent="2222222222222222", second=2,
                      attributes=[("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", "lookup")])
    child = span(trace, "2222222222222222", "chat", parent="1111111111111111", second=1, attributes=chat)
    root = span(trace, "1111111111111111", "ordered-root")
    summary = get(backend, "/api/summary")
    # The grandchild before its parent, the root last, each request but the first sent twice.
    steps = [(export(grandchild), (1, 0, 0)), (export(child, grandchild), (2, 100, 110)),
             (export(child), (2, 100, 110)), (export(root, child, grandchild), (3, 100, 110))]
    for body, expected in steps:
        status, _, answer = send(backend, body)
        assert (status, answer) == (200, {})
        run = get(backend, f"/api/runs/{trace}")
        assert (run["event_count"], run["tokens_in"], run["total_tokens"]) == expected, "totals follow every batch"
        assert run["status"] == ("completed" if expected[0] == 3 else "active")
    assert send(backend, export(root, child, grandchild), encoding="gzip")[0] == 400, "gzip says gzip"
    run = get(backend, f"/api/runs/{trace}")
    assert (run["event_count"], run["tokens_in"], run["tokens_out"], run["status"]) == (3, 100, 10, "completed")
    assert run["run_name"] == "ordered-root"
    by_id = {e["event_id"].split("-")[1]: e for e in run["events"]}
    assert by_id["3333333333333333"]["parent_event_id"] == f"{trace}-2222222222222222"
    (top,) = get(backend, f"/api/runs/hostile-svc/{trace}/trace")["execution_tree"]
    assert top["children"][0]["children"][0]["event_type"] == "tool_call"
    (agent,) = [a for a in get(backend, "/api/agents") if a["name"] == "hostile-svc"]
    assert agent["event_count"] == 3 and agent["total_runs"] == 1
    after = get(backend, "/api/summary")
    assert (after["events"] - summary["events"], after["tokens_in"] - summary["tokens_in"]) == (3, 100)
    assert after["total_cost"] - summary["total_cost"] == pytest.approx(run["total_cost"]) and run["total_cost"] > 0


def test_an_error_span_fails_its_call_and_its_run(backend):
    trace = "22222222222222222222222222222222"
    failed = span(trace, "2222222222222223", "chat", parent="2222222222222222", second=1,
                  attributes=[("gen_ai.operation.name", "chat")], status={"code": 2, "message": "rate limited"})
    thrown = span(trace, "2222222222222224", "execute_tool", parent="2222222222222222", second=2,
                  attributes=[("gen_ai.operation.name", "execute_tool")],
                  events=[{"timeUnixNano": str(START), "name": "exception", "attributes": [
                      attribute("exception.type", "ValueError"), attribute("exception.message", "bad city")]}])
    root = span(trace, "2222222222222222", "failing-root", status={"code": 2})
    assert send(backend, export(failed, thrown, root, service="failing-svc"))[0] == 200
    run = get(backend, f"/api/runs/{trace}")
    assert (run["status"], run["error_count"]) == ("failed", 3)
    errors = {e["event_type"]: e["data"].get("error") for e in run["events"] if e["error"]}
    assert errors == {"llm_call": "rate limited", "tool_call": "ValueError: bad city", "span": None}, errors


def test_bad_spans_are_rejected_in_partial_success_and_the_rest_taken(backend):
    trace = "33333333333333333333333333333333"
    good = span(trace, "3333333333333333", "kept-root")
    short_id = span(trace, "33333333", "short")  # 4 bytes: hex, but no span id
    zero = span("0" * 32, "3333333333333334", "zero trace")
    backwards = dict(span(trace, "3333333333333335", "backwards"), endTimeUnixNano="1")
    far = dict(span(trace, "3333333333333336", "far"), endTimeUnixNano=str(2**64 - 1))
    deep = span(trace, "3333333333333337", "deep")
    # Deeper than an event's data may nest, within what OTLP/JSON decodes: arrays in arrays.
    deep["attributes"] = [{"key": "deep", "value": anyvalue(32, kvlists=False)}]
    costly = span(trace, "3333333333333338", "costly", attributes=[
        ("gen_ai.operation.name", "chat"), ("gen_ai.request.model", "gpt-4"), ("gen_ai.usage.input_tokens", I64_MAX)])
    status, _, answer = send(backend, export(good, short_id, zero, backwards, far, deep, costly))
    assert status == 200, answer
    partial = answer["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 6, partial
    for why in ("spanId must be 8 bytes", "traceId must be 16 bytes", "before startTimeUnixNano", "2262",
                "nests deeper", "the most one event may cost"):
        assert why in partial["errorMessage"], partial
    run = get(backend, f"/api/runs/{trace}")
    assert run["event_count"] == 1 and run["run_name"] == "kept-root"


def anyvalue(levels, kvlists=True):
    """An OTLP/JSON AnyValue `levels` deep: arrays (and key-value lists, every other level)."""
    value = {"intValue": "1"}
    for level in range(levels - 1):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}} if kvlists and level % 2 else \
            {"arrayValue": {"values": [value]}}
    return value


# --- Refusals of the whole request ---------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def protobuf_request(attribute_value):
    """An ExportTraceServiceRequest of one span whose one attribute is `attribute_value` (AnyValue bytes)."""
    span_bytes = (field(1, b"\x44" * 16) + field(2, b"\x55" * 8) + field(5, b"pb-root")
                  + varint(7 << 3 | 1) + struct.pack("<Q", START) + varint(8 << 3 | 1) + struct.pack("<Q", START + 1)
                  + field(9, field(1, b"k") + field(2, attribute_value)))
    return field(1, field(2, field(2, span_bytes)))


def nested_protobuf(levels):
    value = b"\x18\x01"  # intValue 1
    for _ in range(levels):
        value = field(5, field(1, value))  # arrayValue { values: [value] }
    return value


def test_protobuf_by_hand_is_taken_and_its_answer_is_protobuf(backend):
    status, headers, answer = send(backend, protobuf_request(field(1, b"text")), "application/x-protobuf")
    assert (status, headers["content-type"], answer) == (200, "application/x-protobuf", b"")
    assert get(backend, "/api/runs/44444444444444444444444444444444")["run_name"] == "pb-root"


@pytest.mark.parametrize("body, content_type, words", [
    (b"\xff\xff\xff\xff", "application/x-protobuf", ["not an OTLP ExportTraceServiceRequest"]),
    (b"{not json", "application/json", ["not an OTLP/JSON ExportTraceServiceRequest"]),
    (b'{"resourceSpans": 3}', "application/json", ["OTLP/JSON"]),
    (json.dumps(export(span("zz" * 16, "3333333333333333", "bad hex"))).encode(), "application/json", ["OTLP/JSON"]),
    (json.dumps(export(span("1" * 32, "xyz", "bad hex"))).encode(), "application/json", ["OTLP/JSON"]),
    # Numbers past every limit: 64-bit integers past u64, and past i64 where signed.
    (json.dumps(export(dict(span("1" * 32, "3" * 16, "t"), startTimeUnixNano="18446744073709551616"))).encode(),
     "application/json", ["OTLP/JSON"]),
    (json.dumps(export(span("1" * 32, "3" * 16, "t", attributes=[("n", 2**63)]))).encode(), "application/json",
     ["OTLP/JSON"]),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": 1e400}]}]}]}', "application/json",
     ["OTLP/JSON"]),
    # Deep JSON past serde_json's recursion limit, and far past it: refused, never a crash.
    (json.dumps(export(dict(span("1" * 32, "3" * 16, "deep"), attributes=[{"key": "d", "value": anyvalue(200)}])))
     .encode(), "application/json", ["recursion limit"]),
    (b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", ["OTLP/JSON"]),
    # Deep protobuf: prost's recursion limit.
    (protobuf_request(nested_protobuf(2_000)), "application/x-protobuf", ["recursion limit"]),
])
def test_undecodable_bodies_are_400(backend, body, content_type, words):
    refused(backend, body, 400, *words, content_type=content_type)


def test_other_content_types_and_encodings_are_415(backend):
    body = export(span("5" * 32, "5" * 16, "x"))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/grpc"):
        refused(backend, body, 415, "Content-Type", content_type=content_type)
    refused(backend, body, 415, "Content-Encoding", "gzip", encoding="br")
    refused(backend, b"not gzip at all", 400, "gzip", encoding="gzip")


def test_a_foreign_origin_is_refused_even_with_protobuf(backend):
    refused(backend, protobuf_request(field(1, b"x")), 403, "cross-site", content_type="application/x-protobuf",
            origin="http://evil.example")


def test_bodies_past_the_limit_are_413_naming_it(backend):
    answer = refused(backend, b" " * (16 * MIB + 1), 413, "limit")
    assert answer["limit_bytes"] == 16 * MIB
    # A gzip bomb: 16 KiB that would inflate past 16 MiB; refused after 16 MiB of work.
    bomb = gzip.compress(b"\0" * (16 * MIB + 1), compresslevel=9)
    assert len(bomb) < 100_000
    answer = refused(backend, bomb, 413, "inflated body", encoding="gzip")
    assert answer["limit_bytes"] == 16 * MIB
    spans = [span("6" * 32, f"{i + 1:016x}", "s", parent="1" * 16) for i in range(10_001)]
    answer = refused(backend, export(*spans), 413, "10001 spans")
    assert answer["limit_spans"] == 10_000


def test_token_totals_past_i64_are_refused_whole(bin_dir, tmp_path):
    """Numbers no total can hold, over two requests: the second is refused (422, the limit named)."""
    fresh = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path / "data")})
    try:
        chat = [("gen_ai.operation.name", "chat"), ("gen_ai.request.model", "no-price-model")]
        first = span("7" * 32, "7" * 16, "max", attributes=[*chat, ("gen_ai.usage.input_tokens", I64_MAX)])
        assert status_and_answer(fresh, export(first)) == (200, {})
        over = span("8" * 32, "8" * 16, "over", attributes=[*chat, ("gen_ai.usage.input_tokens", 1)])
        answer = refused(fresh, export(over), 422, "tokens_in", str(I64_MAX))
        assert answer["limit_total"] == I64_MAX
        negative = span("9" * 32, "9" * 16, "negative", attributes=[*chat, ("gen_ai.usage.input_tokens", -5)])
        assert status_and_answer(fresh, export(negative)) == (200, {})
        assert get(fresh, f"/api/runs/{'9' * 32}")["events"][0]["tokens_in"] is None, "a negative count is none"
    finally:
        fresh.stop()


def test_storage_unavailable_is_503_with_retry_after(backend):
    """The one answer an exporter retries: another process holds the database's write lock past
    the backend's busy timeout."""
    db = sqlite3.connect(backend.data_dir / "gati.db", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        status, headers, answer = send(backend, export(span("a" * 32, "a" * 16, "locked")))
        assert status == 503, answer
        assert headers["retry-after"] == "5" and "storage is unavailable" in answer["error"]
        assert get(backend, "/health")["status"] == "ok", "reads go on"
    finally:
        db.execute("ROLLBACK")
        db.close()
    status, _, answer = send(backend, export(span("a" * 32, "a" * 16, "locked")))
    assert (status, answer) == (200, {})
