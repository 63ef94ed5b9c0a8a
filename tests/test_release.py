"""`cargo xtask release` against a real registry (docker-registry) and a real index
(pypiserver), both with auth, from a clean copy of the repository whose origin is a bare
repository. Faults are injected for real: the registry or the index stopped, frozen (SIGSTOP) or
refusing; the release interrupted with SIGINT. After each, the invariants hold, and the same
command finishes the release with nothing duplicated."""

import http.server
import os
import re
import signal
import subprocess
import threading
import urllib.request
import venv
from pathlib import Path

import pytest

from gati_testing import (COPY_TARGET_DIR, GIT_IDENTITY, free_port, git, release_tree, repo, request,
                          xtask)

pytestmark = pytest.mark.docker

OLD, NEW = "0.1.0", "0.1.1"
SERVICES = ("backend", "dashboard", "mcp-server")
DISTS = [f"gati-{NEW}-py3-none-any.whl", f"gati-{NEW}.tar.gz"]


@pytest.fixture
def tree(tmp_path):
    return release_tree(tmp_path)


@pytest.fixture
def env(registry, index, tmp_path):
    return {**registry.env(tmp_path / "docker-config"), **index.env(), "GATI_RETRY_SECONDS": "3"}


def release(tree, env, *args, check=True):
    return xtask(tree, "release", NEW, "--yes", *args, env=env, check=check)


def release_until(tree, env, trigger, action):
    """Runs the release; `action(proc)` once an output line matches `trigger`. Returns
    (exit status, output, whether the action ran)."""
    proc = subprocess.Popen(["cargo", "xtask", "release", NEW, "--yes"], cwd=tree, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **GIT_IDENTITY, **env, "CI": "true", "RUST_BACKTRACE": "0",
                                 "CARGO_TARGET_DIR": str(COPY_TARGET_DIR)})
    lines, fired = [], False
    for line in proc.stdout:
        lines.append(line)
        if not fired and re.search(trigger, line):
            action(proc)
            fired = True
    return proc.wait(timeout=600), "".join(lines), fired


def assert_consistent(registry, index, tree):
    """What must hold after any failure: no floating tag points at a mixed set, nothing is on the
    index unless every image is verified, and the tree is the old version or all the new one."""
    digests = {s: registry.digest(repo(registry, s), NEW) for s in SERVICES}
    for tag in ("latest", "0.1"):
        moved = [digests[s] is not None and registry.digest(repo(registry, s), tag) == digests[s] for s in SERVICES]
        assert all(moved) or not any(moved), f"{tag} points at a mixed set: {moved}"
    if index.files():
        assert all(digests.values()), f"the index has {index.files()} but not every image is on the registry"
    version = xtask(tree, "version", check=False)
    assert version.returncode == 0, version.stdout
    assert re.search(rf"version ({re.escape(OLD)}|{re.escape(NEW)}) ", version.stdout), version.stdout


def assert_released(registry, index, tree, tmp_path):
    assert f"v{NEW}" in git(tree, "ls-remote", "--tags", "origin")
    for service in SERVICES:
        name = repo(registry, service)
        assert registry.tags(name) == {NEW, "0.1", "latest"}
        assert registry.digest(name, NEW) == registry.digest(name, "latest") == registry.digest(name, "0.1")
    assert index.files() == DISTS


class CmdlineWatch:
    """Samples every process's command line while a release runs."""

    def __init__(self, secrets):
        self.secrets = [s for s in secrets if s]
        self.leaks = []
        self.samples = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                self.leaks.extend(f"{cmdline}: {text}" for s in self.secrets if s in text)
            self.samples += 1

    def stop(self):
        self.running = False
        self.thread.join()


def test_a_release_reaches_registry_index_and_git_and_installs(registry, index, tree, env, tmp_path):
    secrets = [env["DOCKER_PASSWORD"], env["TWINE_PASSWORD"]]
    watch = CmdlineWatch(secrets)
    try:
        out = release(tree, env).stdout
    finally:
        watch.stop()
    assert f"v{NEW} is released" in out and "STEP" in out
    assert_released(registry, index, tree, tmp_path)

    # The secrets appear in no output, no command line, no commit, no image layer.
    assert watch.samples > 10 and watch.leaks == []
    for secret in secrets:
        assert secret not in out
        assert secret not in git(tree, "log", "--all", "-p")
    layers = subprocess.run(["docker", "save", *[f"{registry.address}/{repo(registry, s)}:{NEW}" for s in SERVICES]],
                            capture_output=True, check=True).stdout
    assert all(secret.encode() not in layers for secret in secrets)

    # A user installs it from the index and starts it from the registry.
    env_dir = tmp_path / "user-venv"
    venv.create(env_dir, with_pip=True)
    subprocess.run([env_dir / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", "--index-url",
                    index.url + "/simple/", f"gati=={NEW}"], check=True)
    ports = {k: str(free_port()) for k in ("GATI_BACKEND_PORT", "GATI_DASHBOARD_PORT", "GATI_MCP_PORT")}
    project = f"gati-release-{os.getpid()}"
    stack_env = {**os.environ, **ports, "DOCKER_CONFIG": env["DOCKER_CONFIG"], "GATI_PROJECT": project,
                 "GATI_IMAGE_PREFIX": f"{registry.address}/{registry.namespace}"}
    try:
        started = subprocess.run([env_dir / "bin" / "gati", "start", "-d", "--pull", "always"], env=stack_env,
                                 capture_output=True, text=True, timeout=300)
        assert started.returncode == 0, started.stderr
        health = request("GET", f"http://127.0.0.1:{ports['GATI_BACKEND_PORT']}/health")
        assert health == (200, {"status": "ok", "version": NEW})
    finally:
        subprocess.run([env_dir / "bin" / "gati", "stop"], env=stack_env, capture_output=True)
        subprocess.run(["docker", "volume", "rm", f"{project}_gati-data"], capture_output=True)

    again = release(tree, env).stdout
    assert f"v{NEW} is already released" in again
    assert index.files() == DISTS


def test_preflight_reports_every_problem_at_once_and_changes_nothing(registry, index, tree, env):
    (tree / "notes.txt").write_text("work in progress\n")
    git(tree, "tag", f"v{NEW}")
    (index.packages / f"gati-{NEW}.tar.gz").write_bytes(b"someone else's upload")
    no_credentials = {k: "" for k in ("TWINE_USERNAME", "TWINE_PASSWORD")}
    head = git(tree, "rev-parse", "HEAD")

    result = release(tree, {**env, **no_credentials}, check=False)
    assert result.returncode != 0
    for problem in ["the tree has uncommitted changes (notes.txt)", f"tag v{NEW} already exists",
                    f"the index already has {NEW} (gati-{NEW}.tar.gz)", "no index credentials"]:
        assert problem in result.stdout, result.stdout
    assert "nothing was changed" in result.stdout

    lower = xtask(tree, "release", "0.0.9", "--yes", env={**env, **no_credentials}, check=False)
    assert "0.0.9 is not greater than the current version 0.1.0" in lower.stdout

    assert git(tree, "rev-parse", "HEAD") == head
    assert git(tree, "status", "--porcelain") == "?? notes.txt\n"
    assert f"version {OLD} " in xtask(tree, "version").stdout
    assert all(not registry.tags(repo(registry, s)) for s in SERVICES)


def test_registry_stopped_after_the_first_image_push(registry, index, tree, env):
    status, out, fired = release_until(tree, env, rf"^\w[\w-]* +pushed {NEW}", lambda proc: registry.stop())
    assert fired and status != 0, out
    assert f"cargo xtask release {NEW}" in out and "no floating tag was moved" in out, out
    registry.start()
    assert_consistent(registry, index, tree)
    assert index.files() == []

    out = release(tree, env).stdout
    assert "build" in out and "done before" in out
    assert_released(registry, index, tree, None)


class RefusingIndex:
    """In front of the real index: reads pass through, uploads get 503 Service Unavailable."""

    def __init__(self, index):
        upstream = index.url

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                try:
                    with urllib.request.urlopen(upstream + self.path, timeout=5) as r:
                        status, body = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, body = e.code, e.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_index_refusing_the_upload(registry, index, tree, env):
    refusing = RefusingIndex(index)
    try:
        result = release(tree, {**env, "GATI_INDEX": refusing.url + "/", "GATI_INDEX_SIMPLE": refusing.url + "/simple/"},
                         check=False)
    finally:
        refusing.close()
    assert result.returncode != 0
    assert "step upload failed" in result.stdout and f"cargo xtask release {NEW}" in result.stdout, result.stdout
    assert_consistent(registry, index, tree)
    assert index.files() == []

    release(tree, env)
    assert_released(registry, index, tree, None)


def test_wrong_index_credentials(registry, index, tree, env):
    result = release(tree, {**env, "TWINE_PASSWORD": "wrong-" + env["TWINE_PASSWORD"][:4]}, check=False)
    assert result.returncode != 0 and "step upload failed" in result.stdout, result.stdout
    assert env["TWINE_PASSWORD"][:4] not in result.stdout.replace("wrong-", "")
    assert_consistent(registry, index, tree)
    assert index.files() == []

    release(tree, env)
    assert_released(registry, index, tree, None)


def interrupt_while_frozen(service_proc):
    """Freezes `service_proc` (so the step is surely running), interrupts the release."""
    def action(proc):
        os.kill(service_proc().pid, signal.SIGSTOP)
        proc.send_signal(signal.SIGINT)
    return action


def test_sigint_during_the_image_push(registry, index, tree, env):
    try:
        status, out, fired = release_until(tree, env, rf"pushing {NEW}", interrupt_while_frozen(lambda: registry.proc))
    finally:
        os.kill(registry.proc.pid, signal.SIGCONT)
    assert fired and status != 0
    assert "push-images interrupted" in out and f"    cargo xtask release {NEW}" in out, out
    assert_consistent(registry, index, tree)
    assert index.files() == []

    release(tree, env)
    assert_released(registry, index, tree, None)


def test_sigint_during_the_upload(registry, index, tree, env):
    try:
        status, out, fired = release_until(tree, env, r"^== upload", interrupt_while_frozen(lambda: index.proc))
    finally:
        os.kill(index.proc.pid, signal.SIGCONT)
    assert fired and status != 0
    assert "upload interrupted" in out and f"    cargo xtask release {NEW}" in out, out
    assert_consistent(registry, index, tree)

    out = release(tree, env).stdout
    assert_released(registry, index, tree, None)
