"""`gati`: start, stop and inspect the local gati stack with Docker Compose.

The stack is the docker-compose.yml shipped inside this package. A released package pins every
image by its version tag and by the digest its release verified on the registry
(`…/gati-backend:X@sha256:…`): `gati start` always runs exactly the images of the gati you
installed, even if someone moves a tag later. `gati version` prints those references.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .version import __version__

COMPOSE_FILE = Path(__file__).with_name("docker-compose.yml")
# (service, environment variable for its host port, default port); the backend is also published
# on OTLP/HTTP's standard port, for OpenTelemetry exporters.
PORTS = [("backend", "GATI_BACKEND_PORT", 8000), ("backend", "GATI_OTLP_PORT", 4318),
         ("dashboard", "GATI_DASHBOARD_PORT", 3000), ("mcp-server", "GATI_MCP_PORT", 8080)]
SERVICES = list(dict.fromkeys(service for service, _, _ in PORTS))
HEALTH_TIMEOUT = 90


class GatiError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


def port(env_var, default):
    value = os.environ.get(env_var, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise GatiError(f"{env_var}={value!r} is not a port number")
    return int(value)


def project():
    return os.environ.get("GATI_PROJECT", "gati")


def run(cmd, **kwargs):
    return subprocess.run(cmd, **kwargs)


def choose_compose(works=None):
    """`docker compose` (v2) when it answers, else `docker-compose` (v1) when installed (asking
    v1 for its version would cost half a second of Python start-up on every command)."""
    if works is None:
        def works(cmd):
            if shutil.which(cmd[0]) is None:
                return False
            return cmd == ["docker-compose"] or run([*cmd, "version"], capture_output=True).returncode == 0
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if works(candidate):
            return candidate
    raise GatiError("Docker Compose is not installed: install the `docker compose` plugin "
                    "(https://docs.docker.com/compose/install/) or `docker-compose`")


def check_docker():
    if shutil.which("docker") is None:
        raise GatiError("Docker is not installed: get it from https://docs.docker.com/get-docker/")
    result = run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if result.returncode != 0:
        raise GatiError("the Docker daemon is not running: start Docker Desktop, or `sudo systemctl start docker`")


def images():
    """{service: image reference} as the compose file resolves them with this environment."""
    prefix = os.environ.get("GATI_IMAGE_PREFIX")
    found = {}
    service = None
    for line in COMPOSE_FILE.read_text().splitlines():
        header = re.match(r"^  ([a-z0-9-]+):\s*$", line)
        if header:
            service = header.group(1)
        image = re.match(r"^\s+image:\s*\$\{GATI_IMAGE_PREFIX:-([^}]+)\}(/\S+)\s*$", line)
        if image and service:
            found[service] = (prefix or image.group(1)) + image.group(2)
    return found


class Stack:
    def __init__(self):
        self.compose = [*choose_compose(), "--project-name", project(), "--file", str(COMPOSE_FILE)]

    def __call__(self, *args, capture=False):
        return run([*self.compose, *args], capture_output=capture, text=True)

    def running(self):
        # The label both compose versions put on their containers (the project name as they
        # normalise it): asked of docker directly, it answers at once.
        name = re.sub(r"[^-_a-z0-9]", "", project().lower()).lstrip("-_")
        result = run(["docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={name}"],
                     capture_output=True, text=True)
        return result.returncode == 0 and bool(result.stdout.strip())


def check_ports_free():
    for service, env_var, default in PORTS:
        number = port(env_var, default)
        with socket.socket() as s:
            # SO_REUSEADDR: connections of a stack that just stopped (TIME_WAIT) are not "in use";
            # a listening socket still is.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", number))
            except OSError:
                raise GatiError(f"port {number} ({service}) is already in use on 127.0.0.1: stop what uses it, "
                                f"or choose another with {env_var}=<port>") from None


def pull(stack, policy):
    wanted = images()
    if policy == "never":
        return
    if policy == "missing":
        wanted = {service: image for service, image in wanted.items()
                  if run(["docker", "image", "inspect", image], capture_output=True).returncode != 0}
    if not wanted or stack("pull", *wanted, capture=True).returncode == 0:
        return
    # One pull for all (each `docker compose` call costs a start-up); one at a time after a
    # failure, to name the image that failed (or to get past a passing one).
    for service, image in wanted.items():
        result = stack("pull", service, capture=True)
        if result.returncode != 0:
            registry = image.split("/", 1)[0]
            detail = (result.stderr or result.stdout).strip().splitlines()
            message = f"could not pull {image} from {registry}: {detail[-1] if detail else 'no detail'}"
            if "@sha256:" in image and os.environ.get("GATI_IMAGE_PREFIX"):
                # This gati runs exactly the released bytes: a mirror must hold the same digest.
                message += (f". GATI_IMAGE_PREFIX points at a mirror without the released digest: copy the image "
                            f"there by digest (a pull-through cache, or `docker pull` then `docker push` of "
                            f"{image.split('@')[0]} keeps it only if the bytes are the same), or unset "
                            f"GATI_IMAGE_PREFIX to pull from the release's registry")
            raise GatiError(message)


def wait_for_backend(backend_port):
    url = f"http://127.0.0.1:{backend_port}/health"
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            time.sleep(0.5)
    raise GatiError(f"the backend did not answer {url} within {HEALTH_TIMEOUT}s: see `gati logs backend`")


def start(args):
    check_docker()
    stack = Stack()
    if not stack.running():
        check_ports_free()
    pull(stack, args.pull)
    result = stack("up", "--detach", capture=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise GatiError(f"could not start the stack: {detail[-1] if detail else 'docker compose failed'}")
    backend_port = port("GATI_BACKEND_PORT", 8000)
    health = wait_for_backend(backend_port)
    if health.get("version") != __version__:
        raise GatiError(f"the backend reports version {health.get('version')!r} but this gati is {__version__}: "
                        "run `gati stop` then `gati start --pull always`")
    print(f"gati {__version__} is running")
    print(f"  dashboard  http://127.0.0.1:{port('GATI_DASHBOARD_PORT', 3000)}")
    print(f"  backend    http://127.0.0.1:{backend_port}")
    print(f"  MCP        http://127.0.0.1:{port('GATI_MCP_PORT', 8080)}/mcp")
    print(f"  OTLP/HTTP  http://127.0.0.1:{port('GATI_OTLP_PORT', 4318)} (OTEL_EXPORTER_OTLP_ENDPOINT)")
    if not args.detach:
        print("following the logs; Ctrl-C stops the stack")
        try:
            stack("logs", "--follow")
        except KeyboardInterrupt:
            pass
        return stack("stop").returncode
    return 0


def stop(args):
    check_docker()
    # `down` without `--volumes`: the data volume, and so the recorded runs, stay.
    return Stack()("down").returncode


def status(args):
    check_docker()
    return Stack()("ps").returncode


def logs(args):
    check_docker()
    return Stack()("logs", *(["--follow"] if args.follow else []), *([args.service] if args.service else [])).returncode


def version(args):
    print(f"gati {__version__}")
    for service, image in images().items():
        print(f"  {service:<11} {image}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="gati", description="Run the local gati stack.")
    parser.add_argument("--version", action="version", version=f"gati {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("start", help="start the stack at this package's version")
    p.add_argument("-d", "--detach", action="store_true", help="return once the backend answers")
    p.add_argument("--pull", choices=["always", "missing", "never"], default="missing",
                   help="when to pull the images (default: missing)")
    p.set_defaults(func=start)
    commands.add_parser("stop", help="stop the stack; the data is kept").set_defaults(func=stop)
    commands.add_parser("status", help="show the services and their health").set_defaults(func=status)
    p = commands.add_parser("logs", help="show the services' logs")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("service", nargs="?", choices=SERVICES)
    p.set_defaults(func=logs)
    commands.add_parser("version", help="print the version and the images it runs").set_defaults(func=version)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except GatiError as e:
        print(f"gati: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
