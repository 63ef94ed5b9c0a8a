"""The three images in the Docker Engine: small, labelled, non-root, healthy together on one
network with a volume, and data flowing backend -> mcp-server and backend -> dashboard."""

import json
import subprocess
import time
import uuid

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from gati_testing import SAMPLE_EVENTS, request

pytestmark = pytest.mark.docker

SERVICES = {"backend": 8000, "dashboard": 3000, "mcp-server": 8080}
MAX_IMAGE_BYTES = 15 * 1000 * 1000


def docker(*args, check=True):
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def inspect(ref):
    return json.loads(docker("image", "inspect", ref))[0]


def test_each_image_is_small_labelled_and_non_root(images, version):
    for name, ref in images.items():
        image = inspect(ref)
        assert image["Size"] < MAX_IMAGE_BYTES, f"{ref} is {image['Size']} bytes"
        config = image["Config"]
        assert config["User"] == "65532:65532", ref
        assert config["Healthcheck"]["Test"] == ["CMD", f"/gati-{name}", "healthcheck"]
        labels = config["Labels"]
        assert labels["org.opencontainers.image.title"] == f"gati-{name}"
        assert labels["org.opencontainers.image.version"] == version
        assert {"revision", "created", "source"} <= {k.rsplit(".", 1)[1] for k in labels}
        # Assembled by xtask, FROM scratch in spirit: one layer, the binary (and the backend's
        # empty /data owned by its user).
        assert len(image["RootFS"]["Layers"]) == 1, ref
        assert labels["dev.gati.rustc"].startswith("rustc "), labels


AGREED = ("User", "Env", "Entrypoint", "Cmd", "WorkingDir", "ExposedPorts", "Volumes", "Healthcheck", "Labels")


def test_the_dockerfile_and_the_assembled_image_agree(images, version):
    """Each service's Dockerfile stays the readable description of its image: `docker build`
    of it, from the same binary and build arguments, gives the configuration xtask assembles."""
    prefix = images["backend"].split("/gati-")[0]
    for name, ref in images.items():
        built = inspect(f"{prefix}/dockerfile-gati-{name}:{version}")["Config"]
        assembled = inspect(ref)["Config"]
        for field in AGREED:
            assert assembled.get(field) == built.get(field), (name, field, assembled.get(field), built.get(field))
        assert assembled["User"] == "65532:65532" and assembled["Healthcheck"]["Test"][1] == f"/gati-{name}"


class Stack:
    """The three containers on one network, the backend's data on a named volume."""

    def __init__(self, images):
        self.images = images
        self.id = uuid.uuid4().hex[:8]
        self.network = f"gati-test-{self.id}"
        self.volume = f"gati-test-data-{self.id}"
        docker("network", "create", self.network)
        docker("volume", "create", self.volume)
        self.containers = {}

    def run(self, name):
        container = f"gati-test-{name}-{self.id}"
        args = ["run", "-d", "--name", container, "--network", self.network, "--network-alias", name,
                "-p", f"127.0.0.1::{SERVICES[name]}"]
        if name == "backend":
            args += ["-v", f"{self.volume}:/data"]
        docker(*args, self.images[name])
        self.containers[name] = container

    def url(self, name):
        port = docker("port", self.containers[name], str(SERVICES[name])).splitlines()[0].rsplit(":", 1)[1]
        return f"http://127.0.0.1:{port}"

    def wait_healthy(self, timeout=60):
        deadline = time.monotonic() + timeout
        states = {}
        while time.monotonic() < deadline:
            states = {n: docker("inspect", "--format", "{{.State.Health.Status}}", c)
                      for n, c in self.containers.items()}
            if all(s == "healthy" for s in states.values()):
                return
            time.sleep(0.5)
        logs = {n: subprocess.run(["docker", "logs", c], capture_output=True, text=True).stderr
                for n, c in self.containers.items()}
        raise AssertionError(f"not healthy within {timeout}s: {states}; logs: {logs}")

    def remove(self, name):
        docker("rm", "-f", self.containers.pop(name))

    def close(self):
        for container in self.containers.values():
            docker("rm", "-f", container, check=False)
        docker("network", "rm", self.network, check=False)
        docker("volume", "rm", self.volume, check=False)


@pytest.fixture
def stack(images):
    stack = Stack(images)
    try:
        for name in SERVICES:
            stack.run(name)
        stack.wait_healthy()
        yield stack
    finally:
        stack.close()


async def mcp_summary(url):
    async with streamable_http_client(url + "/mcp") as (read, write, *_):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("get_summary", {})
            assert not result.is_error, result.content[0].text
            return result.structured_content  # after the summary in words


def test_stack_runs_healthy_and_data_flows(stack, version):
    backend = stack.url("backend")
    status, health = request("GET", backend + "/health")
    assert (status, health["status"], health["version"]) == (200, "ok", version), health
    assert request("POST", backend + "/api/events", SAMPLE_EVENTS)[0] == 200

    # backend -> dashboard, through the dashboard's proxy over the docker network
    status, body = request("GET", stack.url("dashboard") + "/api/runs/run-1")
    assert status == 200 and [e["event_id"] for e in body["events"]] == ["e1", "e2", "e3", "e4"]

    # backend -> mcp-server, through an MCP session
    summary = anyio.run(mcp_summary, stack.url("mcp-server"))
    assert (summary["events"], summary["total_tokens"], summary["version"]) == (5, 150, version)

    # The data lives on the volume: a new backend container sees it.
    stack.remove("backend")
    stack.run("backend")
    stack.wait_healthy()
    status, body = request("GET", stack.url("backend") + "/api/summary")
    assert status == 200 and body["events"] == 5
