"""The `gati` CLI: its choice of compose command and every error path, each a plain one-line
message and a non-zero exit."""

import os
import socket
import subprocess
import sys
import uuid

import pytest

from gati_testing import ROOT, free_port

sys.path.insert(0, str(ROOT / "sdk"))
from gati import cli  # noqa: E402


def gati(*args, **env):
    """Runs `gati ARGS` from sdk/ with `env` on top of this environment."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "sdk"), "GATI_PROJECT": f"gati-cli-{uuid.uuid4().hex[:8]}",
                **env}
    return subprocess.run([sys.executable, "-m", "gati.cli", *args], capture_output=True, text=True, env=full_env,
                          timeout=120)


def test_compose_v2_is_preferred_then_v1():
    assert cli.choose_compose(lambda cmd: True) == ["docker", "compose"]
    assert cli.choose_compose(lambda cmd: cmd == ["docker-compose"]) == ["docker-compose"]
    with pytest.raises(cli.GatiError, match="Docker Compose is not installed"):
        cli.choose_compose(lambda cmd: False)


def test_the_compose_command_found_here_answers():
    chosen = cli.choose_compose()
    assert chosen in (["docker", "compose"], ["docker-compose"])
    assert subprocess.run([*chosen, "version"], capture_output=True).returncode == 0


def test_images_follow_the_package_version_and_the_mirror_prefix(monkeypatch):
    from gati.version import __version__
    monkeypatch.delenv("GATI_IMAGE_PREFIX", raising=False)
    assert cli.images() == {s: f"docker.io/gatidev/gati-{s}:{__version__}" for s in ("backend", "dashboard", "mcp-server")}
    monkeypatch.setenv("GATI_IMAGE_PREFIX", "mirror.example:5000/team")
    assert cli.images()["backend"] == f"mirror.example:5000/team/gati-backend:{__version__}"


def one_line_error(result, expected):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert lines[0].startswith("gati: ")


def test_docker_missing(tmp_path):
    one_line_error(gati("start", "-d", PATH=str(tmp_path)), "Docker is not installed")


@pytest.mark.docker
def test_compose_missing(tmp_path):
    (tmp_path / "docker").symlink_to(subprocess.check_output(["which", "docker"], text=True).strip())
    one_line_error(gati("start", "-d", PATH=str(tmp_path)), "Docker Compose is not installed")


def test_daemon_not_running(tmp_path):
    one_line_error(gati("start", "-d", DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock"),
                   "the Docker daemon is not running")


@pytest.mark.docker
def test_port_taken_is_named():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_error(gati("start", "-d", GATI_BACKEND_PORT=str(port)),
                       f"port {port} (backend) is already in use on 127.0.0.1")


def test_every_published_port_is_checked_and_in_the_compose_file(monkeypatch):
    compose = cli.COMPOSE_FILE.read_text()
    for _, env_var, default in cli.PORTS:
        assert f"127.0.0.1:${{{env_var}:-{default}}}:" in compose, env_var
    assert ("backend", "GATI_OTLP_PORT", 4318) in cli.PORTS
    assert cli.SERVICES == ["backend", "dashboard", "mcp-server"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for _, env_var, _ in cli.PORTS:
            monkeypatch.setenv(env_var, str(free_port()))
        monkeypatch.setenv("GATI_OTLP_PORT", str(port))
        with pytest.raises(cli.GatiError, match=f"port {port} \\(backend\\) is already in use.*GATI_OTLP_PORT"):
            cli.check_ports_free()


@pytest.mark.docker
def test_pull_failure_names_image_and_registry():
    from gati.version import __version__
    result = gati("start", "-d", "--pull", "always", GATI_IMAGE_PREFIX="127.0.0.1:9/nobody")
    one_line_error(result, f"could not pull 127.0.0.1:9/nobody/gati-backend:{__version__} from 127.0.0.1:9")


def test_version_prints_the_pinned_images():
    from gati.version import __version__
    result = gati("version", GATI_IMAGE_PREFIX="gati-test")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == f"gati {__version__}"
    assert f"gati-test/gati-mcp-server:{__version__}" in result.stdout


def test_one_pull_for_every_image_and_one_at_a_time_only_to_name_a_failure(monkeypatch):
    """Each `docker compose` call costs a start-up: `gati start` pulls with one."""
    calls = []

    def stack(*args, capture=False):
        calls.append(args)
        failed = any(service in args for service in broken)
        return subprocess.CompletedProcess(args, int(failed), stdout="", stderr="manifest unknown" if failed else "")

    broken = []
    cli.pull(stack, "always")
    assert calls == [("pull", "backend", "dashboard", "mcp-server")]

    calls.clear()
    broken = ["dashboard"]
    with pytest.raises(cli.GatiError, match="could not pull .*/gati-dashboard:.*: manifest unknown"):
        cli.pull(stack, "always")
    assert calls == [("pull", "backend", "dashboard", "mcp-server"), ("pull", "backend"), ("pull", "dashboard")]

    # `missing`: only the images this machine lacks (here, all but the backend's).
    calls.clear()
    broken = []
    inspected = lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0 if "gati-backend" in cmd[-1] else 1)  # noqa: E731
    monkeypatch.setattr(cli, "run", inspected)
    cli.pull(stack, "missing")
    assert calls == [("pull", "dashboard", "mcp-server")]
    cli.pull(stack, "never")
    assert len(calls) == 1
