"""The local services stay local: only this machine's Host names (and, in a container, its compose service name),
no cross-site writes, batches up to 16 MiB, and every refusal as JSON.

Raw HTTP here, so that each test sets exactly the Host, Origin and Content-Type a browser on
another site (or a DNS-rebound page) would send."""

import http.client
import json
import urllib.parse

import pytest

from gati_testing import SAMPLE_EVENTS, Service, event, request

LIMIT = 16 * 1024 * 1024


def raw(base_url, method, path, body=None, headers=None, chunked=False):
    """(status, content type without parameters, parsed JSON body or text) of one request with
    exactly these headers; Host defaults to the address connected to."""
    address = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    headers = dict(headers or {})
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    connection.putheader("Host", headers.pop("Host", address.netloc))
    for name, value in headers.items():
        connection.putheader(name, value)
    if chunked:
        connection.putheader("Transfer-Encoding", "chunked")
    elif data is not None and "Content-Length" not in headers:
        connection.putheader("Content-Length", str(len(data)))
    connection.endheaders()
    try:
        if data is not None and chunked:
            step = 1024 * 1024
            for i in range(0, len(data), step):
                piece = data[i:i + step]
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            connection.send(b"0\r\n\r\n")
        elif data is not None:
            connection.send(data)
    except (BrokenPipeError, ConnectionResetError):
        # The server may answer (a 413) and close before the whole body is sent, as any server
        # may: its answer is read all the same.
        pass
    response = connection.getresponse()
    content_type = response.getheader("Content-Type", "").split(";")[0].strip()
    text = response.read()
    connection.close()
    try:
        return response.status, content_type, json.loads(text)
    except ValueError:
        return response.status, content_type, text.decode(errors="replace")


JSON = {"Content-Type": "application/json"}


def stored(backend):
    return request("GET", backend.url + "/api/summary")[1]["events"]


def test_a_cross_site_write_is_refused_and_nothing_stored(backend):
    batch = {"events": SAMPLE_EVENTS}
    # What a page on evil.example can send without a CORS preflight: a "simple" text/plain POST.
    attempts = [
        ({"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403),
        ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
        ({"Content-Type": "application/json", "Origin": "null"}, 403),
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
        ({}, 415),
    ]
    for headers, want in attempts:
        status, content_type, body = raw(backend.url, "POST", "/api/events", batch, headers)
        assert (status, content_type) == (want, "application/json"), (headers, body)
        assert body["error"], body
    assert stored(backend) == 0

    # The SDK's own request, and a same-host page (the dashboard's origin), are fine.
    status, _, body = raw(backend.url, "POST", "/api/events", batch, {"Content-Type": "application/json; charset=utf-8"})
    assert (status, body["stored"]) == (200, 5), body
    status, _, body = raw(backend.url, "POST", "/api/events", batch, {**JSON, "Origin": "http://127.0.0.1:3000"})
    assert (status, body["duplicates"]) == (200, 5), body


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example",
                                  "127.0.0.1.nip.io:8000", "backend.evil.example"])
def test_a_foreign_host_is_refused(backend, host):
    for method, path, body, headers in [("GET", "/api/summary", None, {}), ("GET", "/health", None, {}),
                                        ("POST", "/api/events", SAMPLE_EVENTS, JSON)]:
        status, content_type, answer = raw(backend.url, method, path, body, {**headers, "Host": host})
        assert (status, content_type) == (403, "application/json"), (method, path, answer)
        assert host in answer["error"] and "GATI_ALLOWED_HOSTS" in answer["error"], answer
    assert stored(backend) == 0


def test_loopback_names_are_answered_and_service_names_only_in_a_container(backend, bin_dir, tmp_path):
    port = backend.port
    for host in [f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", "LOCALHOST."]:
        status, _, body = raw(backend.url, "GET", "/api/summary", None, {"Host": host})
        assert status == 200, (host, body)
    # A native install: a hostile network's DNS could point `backend` anywhere.
    for host in ["backend:8000", "BACKEND", "dashboard", "mcp-server:8080"]:
        status, _, body = raw(backend.url, "GET", "/api/summary", None, {"Host": host})
        assert status == 403 and "GATI_ALLOWED_HOSTS" in body["error"], (host, body)
    # The image says which name its container is reached by (its Dockerfile's ENV).
    service = Service(bin_dir / "gati-backend",
                      env={"GATI_DATA_DIR": str(tmp_path / "data"), "GATI_CONTAINER_HOSTS": "backend"})
    try:
        for host in ["backend:8000", "BACKEND"]:
            assert raw(service.url, "GET", "/api/summary", None, {"Host": host})[0] == 200, host
        assert raw(service.url, "GET", "/api/summary", None, {"Host": "dashboard"})[0] == 403
    finally:
        service.stop()


def test_hosts_published_on_purpose_are_configurable(bin_dir, tmp_path):
    service = Service(bin_dir / "gati-backend",
                      env={"GATI_DATA_DIR": str(tmp_path / "data"), "GATI_ALLOWED_HOSTS": "gati.lan, Traces.Example:8000"})
    try:
        for host in ["gati.lan", "gati.lan:8000", "traces.example", "localhost"]:
            assert raw(service.url, "GET", "/api/summary", None, {"Host": host})[0] == 200, host
        assert raw(service.url, "GET", "/api/summary", None, {"Host": "evil.example"})[0] == 403
        status, _, body = raw(service.url, "POST", "/api/events", SAMPLE_EVENTS, {**JSON, "Origin": "https://gati.lan"})
        assert status == 200, body
    finally:
        service.stop()


def test_a_16_mib_batch_is_accepted(backend):
    prompt = "x" * (1024 * 1024 - 2048)
    batch = {"events": [event(f"big-{i}", run_id="big-run", prompt=prompt) for i in range(16)]}
    body = json.dumps(batch).encode()
    assert LIMIT - 64 * 1024 < len(body) <= LIMIT, len(body)
    status, _, answer = raw(backend.url, "POST", "/api/events", body, JSON)
    assert (status, answer["stored"]) == (200, 16), answer
    run = request("GET", backend.url + "/api/runs/big-run")[1]
    assert run["event_count"] == 16 and run["events"][0]["data"]["prompt"] == prompt


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_larger_batch_is_refused_with_json_naming_the_limit(backend, chunked):
    prompt = "x" * (1024 * 1024)
    body = json.dumps([event(f"big-{i}", prompt=prompt) for i in range(17)]).encode()
    assert len(body) > LIMIT
    status, content_type, answer = raw(backend.url, "POST", "/api/events", body, JSON, chunked=chunked)
    assert (status, content_type) == (413, "application/json"), answer
    assert answer["limit_bytes"] == LIMIT and str(LIMIT) in answer["error"], answer
    assert stored(backend) == 0
    # Just over the limit, by one byte, is over.
    status, _, answer = raw(backend.url, "POST", "/api/events", b" " * (LIMIT + 1), JSON, chunked=chunked)
    assert (status, answer["limit_bytes"]) == (413, LIMIT), answer


def test_every_error_is_json(backend):
    cases = [
        ("GET", "/api/nothing", None, {}, 404),
        ("PUT", "/api/events", SAMPLE_EVENTS, JSON, 405),
        ("DELETE", "/api/summary", None, JSON, 405),
        ("GET", "/api/agents?limit=abc", None, {}, 400),
        ("POST", "/api/events", b"{not json", JSON, 400),
        ("GET", "/api/runs/nope", None, {}, 404),
    ]
    for method, path, body, headers, want in cases:
        status, content_type, answer = raw(backend.url, method, path, body, headers)
        assert (status, content_type) == (want, "application/json"), (method, path, answer)
        assert isinstance(answer, dict) and answer["error"], answer


@pytest.fixture
def dashboard(bin_dir, seeded_backend):
    service = Service(bin_dir / "gati-dashboard", env={"BACKEND_URL": seeded_backend.url}, health="/healthz")
    service.backend = seeded_backend
    yield service
    service.stop()


def test_the_dashboard_and_its_api_proxy_refuse_other_sites(dashboard):
    for path in ["/", "/app.js", "/api/summary", "/api/runs/run-1", "/health", "/healthz"]:
        status, content_type, body = raw(dashboard.url, "GET", path, None, {"Host": "evil.example:3000"})
        assert (status, content_type) == (403, "application/json"), (path, body)
        status, _, body = raw(dashboard.url, "GET", path, None, {"Origin": "http://evil.example"})
        assert status == 403, (path, body)
    # Its own page's origin, and the names it is reached by, are fine.
    for headers in [{"Origin": f"http://127.0.0.1:{dashboard.port}"}, {"Host": "localhost:3000"},
                    {"Origin": "http://localhost:3000", "Host": "localhost:3000"}]:
        status, _, body = raw(dashboard.url, "GET", "/api/summary", None, headers)
        assert (status, body["events"]) == (200, 5), (headers, body)
    # Writes are not proxied, and a cross-site one is refused before that.
    status, _, body = raw(dashboard.url, "POST", "/api/events", [event("via-dashboard")],
                          {"Content-Type": "text/plain", "Origin": "http://evil.example"})
    assert status == 403, body
    status, content_type, body = raw(dashboard.url, "POST", "/api/events", [event("via-dashboard")], JSON)
    assert (status, content_type) == (405, "application/json"), body
    assert stored(dashboard.backend) == 5
    assert raw(dashboard.url, "GET", "/nothing")[:2] == (404, "application/json")


def test_the_dashboard_reaches_its_backend_by_name(bin_dir, seeded_backend):
    """BACKEND_URL names the backend by a host name (compose: http://backend:8000); the
    backend answers it because the proxied request's Host is that name."""
    service = Service(bin_dir / "gati-dashboard", env={"BACKEND_URL": f"http://localhost:{seeded_backend.port}"},
                      health="/healthz")
    try:
        status, _, body = raw(service.url, "GET", "/api/summary")
        assert (status, body["events"]) == (200, 5), body
    finally:
        service.stop()
