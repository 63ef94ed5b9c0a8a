"""What a client can send the dashboard, the MCP server and the local guard of all three: each
case answered 4xx with a JSON message (or, for MCP, a JSON-RPC error), and the services still
answer /health afterwards. Raw sockets, so that each request carries exactly its bytes."""

import json
import socket

import pytest

from gati_testing import Service, request
from test_local_guard import raw

JSON = {"Content-Type": "application/json"}
MCP = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def stack(bin_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("hostile") / "data"
    backend = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(data)})
    dashboard = Service(bin_dir / "gati-dashboard", env={"BACKEND_URL": backend.url}, health="/healthz")
    mcp = Service(bin_dir / "gati-mcp-server", args=["--http"], env={"BACKEND_URL": backend.url})
    yield {"backend": backend, "dashboard": dashboard, "mcp": mcp}
    for service in (mcp, dashboard, backend):
        service.stop()


def all_up(stack):
    for name, path in [("backend", "/health"), ("dashboard", "/healthz"), ("mcp", "/health")]:
        assert request("GET", stack[name].url + path)[0] == 200, name


def send(port, data):
    """The raw answer (status line, headers, body) to bytes sent as they are."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def framing(headers):
    assert headers.get("x-frame-options") == "DENY", headers
    policies = headers.get("content-security-policy", "")
    assert policies.count("frame-ancestors") == 1 and "frame-ancestors 'none'" in policies, headers


@pytest.mark.parametrize("service,path", [
    ("dashboard", "/"), ("dashboard", "/index.html"), ("dashboard", "/app.js"), ("dashboard", "/style.css"),
    ("dashboard", "/api/summary"), ("dashboard", "/healthz"), ("dashboard", "/nothing"),
    ("backend", "/health"), ("backend", "/docs"), ("backend", "/api/summary"), ("backend", "/nothing"),
    ("mcp", "/health"), ("mcp", "/mcp"), ("mcp", "/nothing"),
])
def test_no_page_or_answer_may_be_framed(stack, service, path):
    port = stack[service].port
    status, headers, _ = send(port, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    assert status < 500, (path, status)
    framing(headers)
    # Refusals too.
    status, headers, _ = send(port, f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode())
    assert status == 403
    framing(headers)
    all_up(stack)


@pytest.mark.parametrize("host", ["backend", "dashboard", "mcp-server", "backend:8000", "mcp-server:8080"])
def test_service_names_are_refused_natively(stack, host):
    for name in ("backend", "dashboard", "mcp"):
        status, _, body = raw(stack[name].url, "GET", "/health" if name != "dashboard" else "/healthz", None,
                              {"Host": host})
        assert status == 403 and "GATI_ALLOWED_HOSTS" in body["error"], (name, body)
        status, _, body = raw(stack[name].url, "GET", "/health" if name != "dashboard" else "/healthz", None,
                              {"Origin": f"http://{host}"})
        assert status == 403 and "Origin" in body["error"], (name, body)
    all_up(stack)


def test_service_names_are_answered_where_the_container_says(bin_dir, stack):
    for binary, name, args, health in [("gati-dashboard", "dashboard", [], "/healthz"),
                                       ("gati-mcp-server", "mcp-server", ["--http"], "/health")]:
        service = Service(bin_dir / binary, args=args, health=health,
                          env={"BACKEND_URL": stack["backend"].url, "GATI_CONTAINER_HOSTS": name})
        try:
            assert raw(service.url, "GET", health, None, {"Host": f"{name}:1"})[0] == 200
            assert raw(service.url, "GET", health, None, {"Origin": f"http://{name}:1"})[0] == 200
            assert raw(service.url, "GET", health, None, {"Host": "backend"})[0] == 403
        finally:
            service.stop()


def test_absolute_form_targets_name_this_machine(stack):
    status, headers, body = send(stack["dashboard"].port, b"GET http://evil.example/api/summary HTTP/1.1\r\n"
                                 b"Host: localhost\r\nConnection: close\r\n\r\n")
    assert status == 403 and "evil.example" in json.loads(body)["error"], body
    all_up(stack)


@pytest.mark.parametrize("path", ["/api/../health", "/api/%2e%2e/openapi.json", "/api/runs/%2E/run-1",
                                  "/api/runs/x/.%2e", "/api/./summary"])
def test_the_proxy_never_resolves_dot_segments(stack, path):
    status, content_type, body = raw(stack["dashboard"].url, "GET", path)
    assert (status, content_type) == (400, "application/json"), (path, body)
    assert "`..` segment" in body["error"], body
    all_up(stack)


def test_the_proxy_forwards_odd_names_as_they_came(stack):
    url = stack["dashboard"].url
    for path, name in [("/api/runs/a%2Fb", "a/b"), ("/api/runs/x%5C..%5C..%5Cagents", "x\\..\\..\\agents")]:
        status, _, body = raw(url, "GET", path)
        assert status == 404 and json.dumps(name) in body["error"], (path, body)
    # A raw backslash is a name too, never a slash: DELETE /api/runs/x\..\..\agents\y stays a run.
    status, _, body = raw(url, "DELETE", "/api/runs/x\\..\\..\\agents\\y")
    assert status == 404 and "agents" in body["error"], body
    status, _, body = raw(url, "GET", "/api/runs/%ff%fe")
    assert status == 400 and "UTF-8" in body["error"], body
    all_up(stack)


def test_the_proxy_bounds_bodies(stack):
    url = stack["dashboard"].url
    status, content_type, body = raw(url, "PATCH", "/api/runs/a/b", b"{" + b" " * (1 << 20) + b"}", JSON)
    assert (status, content_type, body["limit_bytes"]) == (413, "application/json", 64 * 1024), body
    status, content_type, body = raw(url, "POST", "/api/events", b"[" + b" " * (100 << 10) + b"]", JSON)
    assert (status, content_type) == (405, "application/json"), body
    all_up(stack)


@pytest.mark.parametrize("request_bytes,want", [
    (b"GET /api/runs/\xff\xfe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 400),
    (b"GET /api/events?q=\xff HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 400),
    (b"GET /api/x HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 500_000 + b"\r\nConnection: close\r\n\r\n", 431),
    (b"GET /api/x HTTP/1.1\r\nHost: localhost\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200))
     + b"Connection: close\r\n\r\n", 431),
], ids=["raw-bytes-in-path", "raw-bytes-in-query", "huge-header", "many-headers"])
def test_what_http_cannot_parse_is_refused_and_the_dashboard_stays_up(stack, request_bytes, want):
    # hyper answers these itself, before any route (and so without a JSON body): see the report.
    status, _, _ = send(stack["dashboard"].port, request_bytes)
    assert status == want
    all_up(stack)


def mcp_session(stack):
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                             "clientInfo": {"name": "hostile", "version": "1"}}}
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", stack["mcp"].port, timeout=20)
    connection.request("POST", "/mcp", json.dumps(initialize), MCP)
    response = connection.getresponse()
    response.read()
    session = {"Mcp-Session-Id": response.getheader("mcp-session-id"), "Mcp-Protocol-Version": "2025-06-18"}
    raw(stack["mcp"].url, "POST", "/mcp", {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {**MCP, **session})
    return session


def rpc_answer(body):
    """The JSON-RPC message of an answer, plain JSON or one SSE event."""
    if isinstance(body, dict):
        return body
    (data,) = [line[5:] for line in body.splitlines() if line.startswith("data:") and line[5:].strip()]
    return json.loads(data)


@pytest.mark.parametrize("message,status,code,needle", [
    (b"{not json", 400, -32700, "not JSON"),
    (b"", 400, -32700, "not JSON"),
    (b"[" * 10_000 + b"]" * 10_000, 400, -32600, "10000 levels deep"),
    (b'{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/list"}', 400, -32600, "64 bits"),
    (b'{"jsonrpc":"2.0","id":1e400,"method":"tools/list"}', 400, -32700, "not JSON"),
    (b"[1, 2]", 400, -32600, "Invalid Request"),
    (b" " * (1024 * 1024 + 1), 413, -32600, "1048576 bytes"),
], ids=["invalid", "empty", "deep", "huge-id", "id-past-f64", "batch", "too-big"])
def test_odd_mcp_messages_get_a_json_rpc_error(stack, message, status, code, needle):
    session = mcp_session(stack)
    got, content_type, body = raw(stack["mcp"].url, "POST", "/mcp", message, {**MCP, **session})
    assert (got, content_type) == (status, "application/json"), body
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == code and needle in body["error"]["message"], body
    # The session still answers.
    status, _, body = raw(stack["mcp"].url, "POST", "/mcp", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                          {**MCP, **session})
    assert status == 200 and rpc_answer(body)["result"]["tools"], body
    all_up(stack)


@pytest.mark.parametrize("tool,arguments,needle", [
    ("list_runs", {"limit": 1e20}, "`limit` must be a whole number from 1 to 1000"),
    ("list_runs", {"limit": 5000}, "`limit` must be a whole number from 1 to 1000, got 5000"),
    ("list_runs", {"offset": -1}, "`offset` must be a whole number from 0 to 4294967295, got -1"),
    ("search_events", {"offset": 2 ** 40}, "`offset` must be a whole number"),
    ("get_cost_timeline", {"days": 100_000}, "`days` must be a whole number from 1 to 365"),
    ("get_tokens_timeline", {"days": 0}, "`days` must be a whole number from 1 to 365, got 0"),
])
def test_numbers_past_an_arguments_limit_are_refused_by_name(stack, tool, arguments, needle):
    session = mcp_session(stack)
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    status, _, body = raw(stack["mcp"].url, "POST", "/mcp", call, {**MCP, **session})
    answer = rpc_answer(body)
    # rmcp answers a tool's bad arguments as a tool error (as MCP asks, so that the assistant can
    # correct itself), or as a JSON-RPC error: either names the argument and its range.
    text = answer["result"]["content"][0]["text"] if "result" in answer else answer["error"]["message"]
    assert "result" not in answer or answer["result"]["isError"], answer
    assert status == 200 and needle in text, answer
    all_up(stack)


def test_an_unknown_method_is_a_json_rpc_error(stack):
    session = mcp_session(stack)
    status, _, body = raw(stack["mcp"].url, "POST", "/mcp", {"jsonrpc": "2.0", "id": 4, "method": "no/such"},
                          {**MCP, **session})
    assert rpc_answer(body)["error"]["code"] == -32601, body
    all_up(stack)


def test_delete_mcp_ends_a_session_and_a_cross_site_write_is_still_refused(stack):
    session = mcp_session(stack)
    status, _, body = raw(stack["mcp"].url, "POST", "/mcp", {"jsonrpc": "2.0", "id": 5, "method": "tools/list"},
                          {"Accept": MCP["Accept"], "Content-Type": "text/plain", **session})
    assert status == 415, body
    status, _, body = raw(stack["mcp"].url, "DELETE", "/mcp", b"x", {"Content-Type": "text/plain", **session})
    assert status == 415, body
    status, _, _ = raw(stack["mcp"].url, "DELETE", "/mcp", None, session)
    assert 200 <= status < 300
    status, _, _ = raw(stack["mcp"].url, "POST", "/mcp", {"jsonrpc": "2.0", "id": 6, "method": "tools/list"},
                       {**MCP, **session})
    assert status == 404
    all_up(stack)
