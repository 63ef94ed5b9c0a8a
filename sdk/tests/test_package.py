"""The built distributions: `twine check` clean, and a wheel whose version.py and compose file
name the same version; then `gati start` from that wheel, end to end, in a fresh venv."""

import os
import re
import subprocess
import sys
import uuid
import venv
import zipfile

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from gati_testing import free_port, request, required_env, wait_for


def test_twine_check_passes_without_warnings(dist):
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", dist["wheel"], dist["sdist"]],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_wheel_pins_its_images_to_its_own_version(dist, version):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        version_py = wheel.read("gati/version.py").decode()
        compose = wheel.read("gati/docker-compose.yml").decode()
        metadata = wheel.read(f"gati-{dist['wheel'].name.split('-')[1]}.dist-info/METADATA").decode()
    (pep440,) = re.findall(r'^__version__ = "([^"]+)"$', version_py, re.M)
    assert f"\nVersion: {pep440}\n" in metadata
    tags = re.findall(r"/gati-(backend|dashboard|mcp-server):(\S+)$", compose, re.M)
    assert sorted(s for s, _ in tags) == ["backend", "dashboard", "mcp-server"]
    assert {t for _, t in tags} == {version}


@pytest.fixture
def installed(dist, tmp_path):
    """A fresh virtual environment with only the built wheel installed."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [env_dir / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index", "--disable-pip-version-check"]
    subprocess.run([*pip, dist["wheel"]], check=True)
    return env_dir / "bin"


@pytest.mark.docker
def test_gati_start_from_the_wheel_end_to_end(installed, version):
    ports = {"GATI_BACKEND_PORT": free_port(), "GATI_DASHBOARD_PORT": free_port(), "GATI_MCP_PORT": free_port(),
             "GATI_OTLP_PORT": free_port()}
    project = f"gati-e2e-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "GATI_IMAGE_PREFIX": required_env("GATI_TEST_IMAGE_PREFIX"), "GATI_PROJECT": project,
           **{k: str(v) for k, v in ports.items()}}
    backend = f"http://127.0.0.1:{ports['GATI_BACKEND_PORT']}"

    def gati(*args):
        result = subprocess.run([installed / "gati", *args], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"gati {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    try:
        out = gati("start", "-d")
        assert f"gati {version} is running" in out
        assert f"http://127.0.0.1:{ports['GATI_DASHBOARD_PORT']}" in out
        status, health = request("GET", backend + "/health")
        assert (status, health["status"], health["version"]) == (200, "ok", version), health

        script = (f"from gati import observe\nobserve.init(backend_url={backend!r}, agent_name='e2e-agent')\n"
                  "with observe.run('answer'):\n    observe.event('llm_call', {'tokens': 11})\n"
                  "assert observe.flush(5)\n")
        subprocess.run([installed / "python", "-c", script], check=True, timeout=60)
        run_id = request("GET", backend + "/api/agents/e2e-agent/runs")[1][0]["run_id"]
        events = request("GET", backend + f"/api/runs/{run_id}")[1]["events"]
        assert [e["event_type"] for e in events] == ["run_start", "llm_call", "run_end"]

        # OpenTelemetry's port answers /v1/traces: an OTLP/JSON span is a run of its service.
        span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "otel-root",
                "startTimeUnixNano": "1769860800000000000", "endTimeUnixNano": "1769860801000000000"}
        otlp = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                               "value": {"stringValue": "otel-e2e"}}]},
                                   "scopeSpans": [{"spans": [span]}]}]}
        assert request("POST", f"http://127.0.0.1:{ports['GATI_OTLP_PORT']}/v1/traces", otlp) == (200, {})
        assert request("GET", backend + "/api/agents/otel-e2e")[1]["total_runs"] == 1

        mcp_url = f"http://127.0.0.1:{ports['GATI_MCP_PORT']}"
        wait_for(mcp_url + "/health")
        assert anyio.run(mcp_call, mcp_url, "get_run", {"run_id": run_id})["events"][1]["data"] == {"tokens": 11}
        assert "backend" in gati("status")

        gati("stop")
        with pytest.raises(OSError):
            request("GET", backend + "/health", timeout=2)
        gati("start", "-d")
        assert request("GET", backend + f"/api/runs/{run_id}")[1]["event_count"] == 3
        gati("stop")
    finally:
        compose = ["docker-compose", "--project-name", project, "--file",
                   str(next(installed.parent.glob("lib/python*/site-packages/gati/docker-compose.yml")))]
        subprocess.run([*compose, "down", "--volumes"], env=env, capture_output=True)


async def mcp_call(url, tool, arguments):
    async with streamable_http_client(url + "/mcp") as (read, write, *_):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool(tool, arguments)
            assert not result.is_error, result.content[0].text
            return result.structured_content  # after the summary in words


def test_wheel_and_sdist_ship_the_price_table(dist):
    """cost_calculator.py reads gati/prices.json at import: a package without it cannot import."""
    import tarfile
    from pathlib import Path
    table = (Path(__file__).parents[1] / "gati" / "prices.json").read_bytes()
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        assert wheel.read("gati/prices.json") == table
    with tarfile.open(dist["sdist"]) as sdist:
        (member,) = [m for m in sdist.getmembers() if m.name.endswith("/gati/prices.json")]
        assert sdist.extractfile(member).read() == table
