"""gati-mcp-server in real MCP sessions against a running backend holding data.

Two clients: the raw protocol over stdio (newline-delimited JSON-RPC, written out here), and
the official Python `mcp` SDK, an independent implementation, over stdio and streamable HTTP.
"""

import json
import os
import subprocess

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from gati_testing import Service, free_port, request
from test_mcp_tools import READ_TOOLS as TOOLS


def rpc(id, method, params=None):
    message = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def test_raw_protocol_session_over_stdio(bin_dir, seeded_backend, version):
    messages = [
        rpc(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "raw-test", "version": "1"}}),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        rpc(2, "tools/list"),
        rpc(3, "tools/call", {"name": "get_summary", "arguments": {}}),
    ]
    stdin = "".join(json.dumps(m) + "\n" for m in messages)
    proc = subprocess.Popen([bin_dir / "gati-mcp-server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, "BACKEND_URL": seeded_backend.url}, text=True)
    proc.stdin.write(stdin)
    proc.stdin.flush()
    replies = {}
    while len(replies) < 3:
        line = proc.stdout.readline()
        assert line, f"server closed stdout after {len(replies)} replies"
        reply = json.loads(line)
        replies[reply["id"]] = reply
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0

    assert replies[1]["result"]["serverInfo"] == {"name": "gati", "version": version}
    tools = replies[2]["result"]["tools"]
    assert {t["name"] for t in tools} == TOOLS
    assert all(t["inputSchema"]["type"] == "object" and t["outputSchema"]["type"] == "object" for t in tools)
    # A summary in words first, then the data: structured, and as JSON text.
    text, data = replies[3]["result"]["content"]
    assert text["text"].startswith("gati holds 2 agents, 2 runs, 5 events: 150 tokens"), text
    summary = replies[3]["result"]["structuredContent"]
    assert summary["events"] == 5 and json.loads(data["text"]) == summary


async def exercise_every_tool(session):
    """Calls each tool the way an assistant would and checks the answers against the seeded data."""
    await session.initialize()
    listed = await session.list_tools()
    assert {t.name for t in listed.tools} == TOOLS

    async def call(name, arguments):
        result = await session.call_tool(name, arguments)
        return result.is_error, result.structured_content, result.content[0].text

    error, data, text = await call("list_agents", {})
    assert not error and {a["name"] for a in data["agents"]} == {"support-bot", "triage-bot"}
    assert text.startswith("2 agents"), text
    error, data, text = await call("list_runs", {"agent_name": "support-bot"})
    assert not error and [r["run_id"] for r in data["runs"]] == ["run-1"]
    error, data, text = await call("get_run", {"run_id": "run-1"})
    assert not error and [e["event_id"] for e in data["events"]] == ["e1", "e2", "e3", "e4"]
    error, data, text = await call("search_events", {"event_type": "tool_call", "query": "lookup"})
    assert not error and [e["event_id"] for e in data["events"]] == ["e3"]
    assert "tool_call lookup_order" in text, text
    error, data, text = await call("get_summary", {})
    assert not error and data["total_tokens"] == 150

    error, data, text = await call("get_run", {"run_id": "no-such-run"})
    assert error and "no-such-run" in text


def test_python_sdk_over_stdio(bin_dir, seeded_backend):
    params = StdioServerParameters(command=str(bin_dir / "gati-mcp-server"),
                                   env={"BACKEND_URL": seeded_backend.url})

    async def main():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise_every_tool(session)

    anyio.run(main)


@pytest.fixture
def mcp_http(bin_dir, seeded_backend):
    service = Service(bin_dir / "gati-mcp-server", args=["--http"], env={"BACKEND_URL": seeded_backend.url})
    yield service
    service.stop()


def test_python_sdk_over_streamable_http(mcp_http):
    async def main():
        async with streamable_http_client(mcp_http.url + "/mcp") as (read, write, *_):
            async with ClientSession(read, write) as session:
                await exercise_every_tool(session)

    anyio.run(main)


def test_backend_down_is_a_readable_tool_error(bin_dir):
    dead = f"http://127.0.0.1:{free_port()}"
    params = StdioServerParameters(command=str(bin_dir / "gati-mcp-server"), env={"BACKEND_URL": dead})

    async def main():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("list_agents", {})
                assert result.is_error
                assert "not reachable" in result.content[0].text and dead in result.content[0].text
                # The server is still there for the next call.
                assert (await session.list_tools()).tools

    anyio.run(main)


def test_http_healthcheck_subcommand(bin_dir, mcp_http):
    env = {"GATI_PORT": str(mcp_http.port)}
    assert subprocess.run([bin_dir / "gati-mcp-server", "healthcheck"], env=env).returncode == 0
    mcp_http.stop()
    assert subprocess.run([bin_dir / "gati-mcp-server", "healthcheck"], env=env,
                          capture_output=True).returncode != 0


@pytest.fixture
def upstream_backend(backend):
    """A backend holding two runs of the gati 0.0.3 SDK: "checkout flow" and one it numbered "run 1"."""
    from test_backend_api import upstream_run

    named = upstream_run(run_name="checkout flow")
    numbered = upstream_run(minute=5)
    for batch in (named, numbered):
        status, body = request("POST", backend.url + "/api/events", {"events": batch})
        assert status == 200, body
    backend.runs = {"checkout flow": named, "run 1": numbered}
    return backend


def test_tools_answer_with_run_names_tokens_and_cost(bin_dir, upstream_backend):
    params = StdioServerParameters(command=str(bin_dir / "gati-mcp-server"), env={"BACKEND_URL": upstream_backend.url})
    named = upstream_backend.runs["checkout flow"]

    async def main():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()

                async def call(name, arguments):
                    result = await session.call_tool(name, arguments)
                    assert not result.is_error, result.content[0].text
                    return result.structured_content

                (agent,) = (await call("list_agents", {}))["agents"]
                assert (agent["tokens_in"], agent["tokens_out"], agent["total_tokens"]) == (200, 100, 300)
                assert abs(agent["total_cost"] - 0.0015) < 1e-12

                runs = (await call("list_runs", {"agent_name": "support-bot"}))["runs"]
                assert sorted(r["run_name"] for r in runs) == ["checkout flow", "run 1"]
                assert all((r["total_tokens"], r["total_cost"]) == (150, 0.00075) for r in runs)
                (found,) = (await call("list_runs", {"run_name": "checkout flow"}))["runs"]
                assert found["run_id"] == named[0]["run_id"]

                run = await call("get_run", {"run_name": "checkout flow"})
                assert (run["run_id"], run["label"], run["total_tokens"]) == (named[0]["run_id"], "checkout flow", 150)
                assert run["events"][1]["parent_event_id"] == named[0]["event_id"]
                run = await call("get_run", {"run_name": "run 1", "agent_name": "support-bot"})
                assert run["run_id"] == upstream_backend.runs["run 1"][0]["run_id"]

                events = (await call("search_events", {"run_name": "checkout flow", "event_type": "llm_call"}))["events"]
                assert [(e["run_name"], e["tokens_in"], e["tokens_out"], e["cost"]) for e in events] == [
                    ("checkout flow", 100, 50, 0.00075)]

                summary = await call("get_summary", {})
                assert (summary["tokens_in"], summary["tokens_out"], summary["total_tokens"]) == (200, 100, 300)
                assert abs(summary["total_cost"] - 0.0015) < 1e-12
                assert [a["name"] for a in summary["by_agent"]] == ["support-bot"]
                assert summary["by_agent"][0]["total_tokens"] == 300

                result = await session.call_tool("get_run", {})
                assert result.is_error and "run_id" in result.content[0].text

    anyio.run(main)


def test_http_refuses_foreign_hosts_and_origins_as_json(bin_dir, backend):
    from test_local_guard import raw

    service = Service(bin_dir / "gati-mcp-server", args=["--http"],
                      env={"BACKEND_URL": backend.url, "GATI_MCP_ALLOWED_HOSTS": "old-name.lan",
                           "GATI_ALLOWED_HOSTS": "gati.lan"})
    try:
        initialize = rpc(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                           "clientInfo": {"name": "raw-test", "version": "1"}})
        accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        for host in ("evil.example", "evil.example:8080"):
            status, content_type, body = raw(service.url, "POST", "/mcp", initialize, {**accept, "Host": host})
            assert (status, content_type) == (403, "application/json") and "evil.example" in body["error"], body
        status, _, body = raw(service.url, "POST", "/mcp", initialize, {**accept, "Origin": "http://evil.example"})
        assert status == 403 and "Origin" in body["error"], body
        status, _, body = raw(service.url, "POST", "/mcp", json.dumps(initialize).encode(),
                              {"Accept": accept["Accept"], "Content-Type": "text/plain"})
        assert status == 415, body
        for host in ("gati.lan:8080", "old-name.lan", "localhost"):
            status, _, body = raw(service.url, "POST", "/mcp", initialize, {**accept, "Host": host})
            assert status == 200, (host, body)
        assert raw(service.url, "GET", "/nothing", None, {})[:2] == (404, "application/json")
    finally:
        service.stop()


def test_a_session_over_streamable_http_closes_cleanly(mcp_http):
    """The client ends its session with `DELETE /mcp` (no body, no content type): answered 2xx,
    and the session is gone; a raw DELETE without content type is accepted, a cross-site one not."""
    import httpx2

    from test_local_guard import raw

    deletes = []

    async def record(response):
        if response.request.method == "DELETE":
            deletes.append((response.status_code, response.request.headers.get("content-type")))

    async def main():
        async with httpx2.AsyncClient(event_hooks={"response": [record]}) as client:
            async with streamable_http_client(mcp_http.url + "/mcp", http_client=client) as (read, write, *_):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    assert (await session.list_tools()).tools

    anyio.run(main)
    # (rmcp answers 202; this client calls anything but 200 and 204 a failure in its log.)
    assert len(deletes) == 1 and 200 <= deletes[0][0] < 300, deletes

    initialize = rpc(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                       "clientInfo": {"name": "raw-test", "version": "1"}})
    accept = {"Accept": "application/json, text/event-stream"}
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", mcp_http.port, timeout=10)
    connection.request("POST", "/mcp", json.dumps(initialize), {**accept, "Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    session = {"Mcp-Session-Id": response.getheader("mcp-session-id")}
    status, _, body = raw(mcp_http.url, "DELETE", "/mcp", None, {**session, "Origin": "http://evil.example"})
    assert status == 403, body
    status, _, body = raw(mcp_http.url, "DELETE", "/mcp", None, session)
    assert 200 <= status < 300, body
    assert raw(mcp_http.url, "GET", "/health")[0] == 200
