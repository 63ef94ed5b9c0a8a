"""Sessions (issue 28): runs that name the same conversation, from the native SDK's `session_id` and
from OTLP spans' `gen_ai.conversation.id` or OpenInference's `session.id`, through
`/api/sessions`, the MCP tools and the dashboard.

The seeded sessions:
- "chat-1" (native events, support-bot): turn n1 on 2026-02-01 10:00 ("hi" -> "hello", $0.01,
  10 in / 5 out, completed), turn n2 at 10:05 ("and my order?", an LLM call, no end yet: active).
- "conv-otel" (OTLP/JSON, service otel-svc, `gen_ai.conversation.id`): trace A at 11:00 whose
  child span comes first and twice, its root (with the session) after; trace B at 11:30 whose only
  span names the session.
- "oi-sess" (OTLP/JSON, `session.id`, agent triage-bot): one trace at 2026-02-03 09:00.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from gati_testing import ROOT, Service, request

DAY = "2026-02-01"
START = 1769943600 * 1_000_000_000  # 2026-02-01T11:00:00Z


def native(event_id, run, event_type, ts, session="chat-1", **data):
    run_id, run_name = run
    return {"event_id": event_id, "run_id": run_id, "run_name": run_name, "agent_name": "support-bot",
            "event_type": event_type, "timestamp": ts, "session_id": session, "data": data}


N1, N2 = ("n1", "first turn"), ("n2", "second turn")
NATIVE = [
    native("n1-s", N1, "agent_start", f"{DAY}T10:00:00Z", input="hi"),
    native("n1-l", N1, "llm_call", f"{DAY}T10:00:01Z", model="gpt-x", prompt="hi", completion="hello",
           tokens_in=10, tokens_out=5, cost=0.01),
    native("n1-e", N1, "agent_end", f"{DAY}T10:00:02Z", output="hello"),
    native("n2-s", N2, "agent_start", f"{DAY}T10:05:00Z", input="and my order?"),
    native("n2-l", N2, "llm_call", f"{DAY}T10:05:01Z", model="gpt-x", prompt="and my order?",
           completion="it shipped", tokens_in=20, tokens_out=7, cost=0.02),
    # An event without the field: 0.0.3's SDK sends none, and the run keeps its session.
    {**native("n2-t", N2, "tool_call", f"{DAY}T10:05:02Z", tool_name="lookup"), "session_id": None},
]
TRACE_A, TRACE_B, TRACE_C = "a" * 32, "b" * 32, "c" * 32


def attribute(key, value):
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def span(trace, span_id, name, parent="", second=0, **attributes):
    start = START + second * 1_000_000_000
    return {"traceId": trace, "spanId": span_id, "parentSpanId": parent, "name": name,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 500_000_000),
            "attributes": [attribute(k, v) for k, v in attributes.items()]}


def export(*spans, service="otel-svc"):
    return {"resourceSpans": [{"resource": {"attributes": [attribute("service.name", service)]},
                               "scopeSpans": [{"scope": {"name": "manual"}, "spans": list(spans)}]}]}


CHILD_A = span(TRACE_A, "1" * 16, "chat", parent="0" * 15 + "1", second=1, **{
    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 50, "gen_ai.conversation.id": "conv-otel"})
ROOT_A = span(TRACE_A, "0" * 15 + "1", "answer", **{
    "gen_ai.operation.name": "invoke_agent", "input.value": "what is 2+2?", "output.value": "4"})
ROOT_B = span(TRACE_B, "2" * 16, "answer", second=1800, **{
    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 30,
    "gen_ai.usage.output_tokens": 3, "gen_ai.input.messages": "and 3+3?", "gen_ai.output.messages": "6",
    "gen_ai.conversation.id": "conv-otel"})
ROOT_C = span(TRACE_C, "3" * 16, "triage", second=2 * 86400 - 7200, **{
    "openinference.span.kind": "AGENT", "agent.name": "triage-bot", "session.id": "oi-sess",
    "input.value": "ticket 9", "output.value": "low"})


def send_spans(service, body):
    req = urllib.request.Request(service.url + "/v1/traces", data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 200


def seed(service):
    status, body = request("POST", service.url + "/api/events", {"events": NATIVE})
    assert status == 200 and body["stored"] == len(NATIVE), body
    # Out of order and twice: the child before its root, and again after it.
    for body in (export(CHILD_A), export(ROOT_A), export(CHILD_A), export(ROOT_B),
                 export(ROOT_C, service="oi-svc")):
        send_spans(service, body)


@pytest.fixture(scope="module")
def seeded(bin_dir, tmp_path_factory):
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path_factory.mktemp("sessions"))})
    try:
        seed(service)
        yield service
    finally:  # a failed seed too: no backend is left running
        service.stop()


def get(service, path, **params):
    """(status, X-Total-Count, parsed body) of a GET."""
    query = urllib.parse.urlencode(params)
    url = service.url + path + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("x-total-count"), json.loads(response.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, None, json.loads(raw)
        except ValueError:
            return e.code, None, raw.decode(errors="replace")


def ok(service, path, **params):
    status, _, body = get(service, path, **params)
    assert status == 200, (path, params, body)
    return body


def run(service, run_id):
    return ok(service, f"/api/runs/{run_id}")


# ---- the API --------------------------------------------------------------------------------------

def test_sessions_are_listed_latest_first_with_the_totals_of_their_runs(seeded):
    status, count, page = get(seeded, "/api/sessions")
    assert status == 200 and count == "3" and page["total"] == 3, page
    assert [s["session_id"] for s in page["sessions"]] == ["oi-sess", "conv-otel", "chat-1"]
    by_id = {s["session_id"]: s for s in page["sessions"]}

    chat = by_id["chat-1"]
    assert chat["agent_names"] == ["support-bot"]
    assert (chat["run_count"], chat["event_count"], chat["tokens_in"], chat["tokens_out"]) == (2, 6, 30, 12)
    assert chat["total_cost"] == pytest.approx(0.03)
    assert (chat["started_at"], chat["last_event_at"]) == (f"{DAY}T10:00:00.000000Z", f"{DAY}T10:05:02.000000Z")
    assert chat["status"] == "active", "the status of its latest run, n2, which has no end"

    # The child span sent twice counts once; the totals are the runs' own.
    otel = by_id["conv-otel"]
    runs = [run(seeded, TRACE_A), run(seeded, TRACE_B)]
    assert (otel["run_count"], otel["event_count"]) == (2, 3)
    assert (otel["tokens_in"], otel["tokens_out"]) == (130, 53)
    assert otel["total_cost"] == pytest.approx(sum(r["total_cost"] for r in runs)) and otel["total_cost"] > 0
    assert otel["agent_names"] == ["otel-svc"] and otel["status"] == "completed"
    assert by_id["oi-sess"]["agent_names"] == ["triage-bot"]
    assert all(r["session_id"] == "conv-otel" for r in runs)


def test_sessions_filter_by_agent_and_time_and_page(seeded):
    assert [s["session_id"] for s in ok(seeded, "/api/sessions", agent="triage-bot")["sessions"]] == ["oi-sess"]
    status, _, body = get(seeded, "/api/sessions", agent="nobody")
    assert status == 404 and "nobody" in body["error"], body
    until = ok(seeded, "/api/sessions", until=f"{DAY}T10:30:00Z")
    assert [s["session_id"] for s in until["sessions"]] == ["chat-1"]
    since = ok(seeded, "/api/sessions", since=f"{DAY}T10:30:00Z", until="2026-02-02")
    assert [s["session_id"] for s in since["sessions"]] == ["conv-otel"]
    status, count, second = get(seeded, "/api/sessions", limit=1, offset=1)
    assert (status, count, second["total"], second["limit"], second["offset"]) == (200, "3", 3, 1, 1)
    assert [s["session_id"] for s in second["sessions"]] == ["conv-otel"]
    for bad in ({"limit": "0"}, {"offset": "-1"}, {"since": "yesterday"}, {"since": DAY, "until": DAY}):
        status, _, body = get(seeded, "/api/sessions", **bad)
        assert status == 400 and body["error"], (bad, body)


def test_a_session_reads_turn_by_turn(seeded):
    session = ok(seeded, "/api/sessions/chat-1")
    listed = next(s for s in ok(seeded, "/api/sessions")["sessions"] if s["session_id"] == "chat-1")
    assert {k: session[k] for k in listed} == listed
    turns = [(t["run_id"], t["run_name"], t["status"], t["input"], t["output"]) for t in session["runs"]]
    assert turns == [("n1", "first turn", "completed", "hi", "hello"),
                     ("n2", "second turn", "active", "and my order?", "it shipped")]
    assert [t["total_cost"] for t in session["runs"]] == [pytest.approx(0.01), pytest.approx(0.02)]
    assert [(t["tokens_in"], t["tokens_out"]) for t in session["runs"]] == [(10, 5), (20, 7)]

    otel = ok(seeded, "/api/sessions/conv-otel")
    assert [(t["run_id"], t["input"], t["output"]) for t in otel["runs"]] == [
        (TRACE_A, "what is 2+2?", "4"), (TRACE_B, "and 3+3?", "6")]
    page = ok(seeded, "/api/sessions/conv-otel", limit=1, offset=1)
    assert [t["run_id"] for t in page["runs"]] == [TRACE_B] and page["run_count"] == 2
    for bad in ({"limit": "0"}, {"limit": "x"}, {"offset": "2000000"}):
        status, _, body = get(seeded, "/api/sessions/chat-1", **bad)
        assert status == 400 and body["error"], (bad, body)


def test_a_bad_session_id_is_refused_by_name_and_a_number_is_read_as_its_digits(bin_dir, tmp_path):
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path / "data")})
    try:
        for bad, words in [({"id": 1}, "must be a string"), ("x" * 257, "longer than 256 bytes"),
                           (True, "must be a string"), (1.5, "must be a string")]:
            status, body = request("POST", backend.url + "/api/events",
                                   {"events": [native("b1", N1, "llm_call", f"{DAY}T10:00:00Z", session=bad)]})
            assert (status, body["field"], body["index"]) == (422, "session_id", 0), body
            assert words in body["error"], body
        assert ok(backend, "/api/sessions")["total"] == 0, "nothing of a refused batch is stored"
        status, _ = request("POST", backend.url + "/api/events",
                            {"events": [native("b2", N1, "llm_call", f"{DAY}T10:00:00Z", session=7)]})
        assert status == 200
        assert [s["session_id"] for s in ok(backend, "/api/sessions")["sessions"]] == ["7"]
    finally:
        backend.stop()


@pytest.mark.parametrize("path", [
    "/api/sessions/" + "x" * 300, "/api/sessions/%FF%FE", "/api/sessions/%00", "/api/sessions/..%2F..%2Fetc",
    "/api/sessions/chat-1%2F..", "/api/sessions/%E2%80%AE", "/api/sessions/chat-1'%20OR%201=1--",
])
def test_unknown_and_hostile_ids_get_a_4xx_with_a_message(seeded, path):
    status, _, body = get(seeded, path)
    assert 400 <= status < 500, (path, status, body)
    assert body, path
    if path.endswith("--") or path.endswith("%00"):
        assert status == 404 and "no session" in body["error"], body


SDK_TURNS = """
from gati import observe
from gati.decorators import track_agent
observe.init(name="sdk-bot", backend_url=BACKEND, timeout=1.0, flush_interval=0.2)

@track_agent(name="sdk-bot", session_id="sdk-chat")
def answer(question):
    observe.event("llm_call", {"model": "gpt-x", "prompt": question, "completion": question.upper(),
                               "tokens_in": 3, "tokens_out": 2, "cost": 0.001})
    return question.upper()

answer("first")
answer("second")
assert observe.flush(5)
"""


def test_the_native_sdk_joins_its_runs_to_a_session_and_otlp_spans_join_it_too(bin_dir, tmp_path):
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path / "data")})
    try:
        script = f"BACKEND = {backend.url!r}\n" + SDK_TURNS
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(ROOT / "sdk")})
        assert result.returncode == 0, result.stderr
        # A third turn from OpenTelemetry, an hour later, names the same conversation.
        late = span("d" * 32, "4" * 16, "third", second=int(time.time()) - START // 10 ** 9 + 3600, **{
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "sdk-bot",
            "gen_ai.conversation.id": "sdk-chat", "input.value": "third", "output.value": "THIRD"})
        send_spans(backend, export(late))
        session = ok(backend, "/api/sessions/sdk-chat")
        assert [(t["input"], t["output"], t["status"]) for t in session["runs"]] == [
            ('{"question":"first"}', "FIRST", "completed"), ('{"question":"second"}', "SECOND", "completed"),
            ("third", "THIRD", "completed")]
        assert (session["run_count"], session["agent_names"], session["tokens_in"]) == (3, ["sdk-bot"], 6)
        assert session["total_cost"] == pytest.approx(0.002)
    finally:
        backend.stop()


FIXTURES = ROOT / "backend" / "src" / "otlp" / "fixtures"


def test_protobuf_captures_of_the_real_libraries_are_turns_of_their_session(bin_dir, tmp_path):
    """Each capture (tests/stack/otel/capture_fixtures.py) is a trace whose agent span names the
    session conversation-42; one is sent twice."""
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path / "data")})
    try:
        captures = sorted(FIXTURES.glob("*.pb"))
        assert len(captures) == 4
        for capture in [*captures, captures[0]]:
            req = urllib.request.Request(backend.url + "/v1/traces", data=capture.read_bytes(), method="POST",
                                         headers={"content-type": "application/x-protobuf"})
            with urllib.request.urlopen(req, timeout=10) as response:
                assert response.status == 200
        session = ok(backend, "/api/sessions/conversation-42")
        assert (session["run_count"], session["event_count"]) == (4, 16)
        assert (session["tokens_in"], session["tokens_out"]) == (4 * (42 + 64), 4 * (17 + 9))
        starts = [t["started_at"] for t in session["runs"]]
        assert starts == sorted(starts) and len({t["run_id"] for t in session["runs"]}) == 4
        assert session["total_cost"] == pytest.approx(sum(t["total_cost"] for t in session["runs"]))
        assert all(t["status"] == "completed" and t["agent_name"] == "weather-agent" for t in session["runs"])
    finally:
        backend.stop()


# ---- the MCP tools --------------------------------------------------------------------------------

def test_the_mcp_tools_list_sessions_and_read_one_turn_by_turn(bin_dir, seeded):
    from test_mcp_tools import answer, calls, failure, usd

    every, triage, page, chat, unknown, missing = calls(
        bin_dir, seeded, ("list_sessions", {}), ("list_sessions", {"agent_name": "triage-bot"}),
        ("list_sessions", {"limit": 1, "offset": 1}), ("get_session", {"session_id": "chat-1"}),
        ("get_session", {"session_id": "nope"}), ("get_session", {}))

    summary, data = answer(every)
    assert data == ok(seeded, "/api/sessions")
    assert summary.startswith("3 sessions, latest activity first:"), summary
    lines = summary.splitlines()[1:]
    assert [line.split('"')[1] for line in lines] == ["oi-sess", "conv-otel", "chat-1"]
    assert "2 runs, 6 events, 42 tokens (30 in, 12 out), $0.03" in lines[2] and "last run active" in lines[2]
    assert answer(triage)[1]["sessions"][0]["session_id"] == "oi-sess"
    summary, data = answer(page)
    assert data == ok(seeded, "/api/sessions", limit=1, offset=1) and "showing 2-2" in summary, summary

    summary, data = answer(chat)
    assert data == ok(seeded, "/api/sessions/chat-1", limit=50) and data["runs_limit"] == 50, "50 turns unless asked"
    turns = summary.split("Runs in time order:\n")[1].splitlines()
    assert turns[0].startswith('1. "first turn" (run_id n1) of support-bot, completed') and usd(0.01) in turns[0]
    assert turns[1:3] == ["   input: hi", "   output: hello"]
    assert turns[3].startswith('2. "second turn"') and turns[4:6] == ["   input: and my order?", "   output: it shipped"]
    assert "no session" in failure(unknown) and "nope" in failure(unknown)
    text = str(missing) if isinstance(missing, Exception) else failure(missing)
    assert "session_id" in text, text


# ---- the dashboard --------------------------------------------------------------------------------

HOSTILE = '<img src=x onerror="window.pwned=1">'


@pytest.fixture
def page():
    from test_dashboard_interaction import paused_page

    page = paused_page()
    yield page
    assert not page.errors, page.errors
    page.context.close()


def test_the_dashboard_lists_sessions_and_reads_one_turn_by_turn(bin_dir, tmp_path, page, artifacts):
    from test_dashboard_interaction import go
    from test_dashboard_pages import dashboard_for, settle

    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path / "data")})
    try:
        dashboard = dashboard_for(bin_dir, backend.url)
    except BaseException:
        backend.stop()
        raise
    try:
        seed(backend)
        hostile = native("h1", ("h", HOSTILE), "agent_start", "2026-01-15T10:00:00Z", session=HOSTILE,
                         input="<script>window.pwned=2</script>")
        assert request("POST", backend.url + "/api/events", {"events": [hostile]})[0] == 200

        page.goto(f"{dashboard.url}/#/")
        n = settle(page)
        n = go(page, lambda: page.click("#nav a[data-section=sessions]"), n)
        assert page.url.endswith("#/sessions")
        assert page.get_attribute("#nav a[data-section=sessions]", "aria-current") == "page"
        links = page.locator("tbody a.run-name").all_inner_texts()
        assert links == ["oi-sess", "conv-otel", "chat-1", HOSTILE], links
        row = page.locator("tr", has=page.locator("a.run-name:text-is('chat-1')")).locator("td").all_inner_texts()
        assert row[1:4] == ["support-bot", "2", "active"] and "$0.0300" in row, row

        n = go(page, lambda: page.click("a.run-name:text-is('chat-1')"), n)
        assert page.url.endswith("#/session/chat-1")
        turns = page.locator("li.turn")
        assert turns.count() == 2
        first, second = (turns.nth(i) for i in range(2))
        assert first.locator("a.run-name").inner_text() == "first turn"
        assert first.locator(".turn-input pre").inner_text() == "hi"
        assert first.locator(".turn-output pre").inner_text() == "hello"
        assert "completed" in first.inner_text() and "$0.0100" in first.inner_text()
        assert second.locator(".turn-input pre").inner_text() == "and my order?"
        assert second.locator(".turn-output pre").inner_text() == "it shipped"
        assert "active" in second.inner_text()
        page.screenshot(path=str(artifacts / "dashboard-session.png"), full_page=True)

        # The session's agent: its sessions only, and the agent's page links to them too.
        n = go(page, lambda: page.click("a.button:text-is('Sessions of support-bot')"), n)
        assert page.url.endswith("#/sessions?agent=support-bot")
        assert page.locator("tbody a.run-name").all_inner_texts() == ["chat-1", HOSTILE]
        n = go(page, lambda: page.click("tbody a:text-is('support-bot') >> nth=0"), n)
        n = go(page, lambda: page.click("a.button:text-is('Its sessions')"), n)
        assert page.url.endswith("#/sessions?agent=support-bot")
        n = go(page, lambda: page.click("a.run-name:text-is('chat-1')"), n)

        # A turn links to its run, and the run back to its session.
        n = go(page, lambda: page.click("li.turn >> nth=0 >> a.run-name"), n)
        assert page.url.endswith("#/run/n1")
        n = go(page, lambda: page.click("a.button:text-is('Its session')"), n)
        assert page.url.endswith("#/session/chat-1")

        # Client text is text: the hostile id and input are shown, never run.
        page.goto(f"{dashboard.url}/#/session/{urllib.parse.quote(HOSTILE, safe='')}")
        settle(page, n)
        assert page.locator("#view h1").inner_text() == f"Session {HOSTILE}"
        assert page.locator(".turn-input pre").inner_text() == "<script>window.pwned=2</script>"
        assert page.evaluate("window.pwned") is None and page.locator("#view img").count() == 0

        page.goto(f"{dashboard.url}/#/session/nope")
        settle(page, n)
        assert "Not found" in page.inner_text("#view")
    finally:
        dashboard.stop()
        backend.stop()
