"""`cargo xtask release` against a real registry (docker-registry) that behaves like Docker Hub
(token auth with a bot login pushing to the `gatidev` namespace, blob downloads redirected to
another port, tag lists in pages) and a real index (pypiserver, a file name never uploaded
twice), from a clean copy of the repository whose origin is a bare repository. CI runs are
fresh clones of that origin with no journal. Faults are injected for real: the registry or the
index stopped, frozen (SIGSTOP) or refusing; the release interrupted with SIGINT; a packaging
error fixed by a new commit. After each, the invariants hold, and the same command finishes the
release with nothing duplicated."""

import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
import venv
import zipfile
from pathlib import Path

import pytest

from gati_testing import (COPY_TARGET_DIR, GIT_IDENTITY, Index, Registry, free_port, fresh_clone, git,
                          release_tree, repo, request, xtask)
from test_release_manifest import assert_release_described

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


def inconsistencies(registry, index, tree):
    """What must hold after any failure, and does not: no floating tag points at a mixed set,
    nothing is on the index unless every image is verified, and the tree is the old version or
    all the new one."""
    found = []
    digests = {s: registry.digest(repo(registry, s), NEW) for s in SERVICES}
    for tag in ("latest", "0.1"):
        moved = [digests[s] is not None and registry.digest(repo(registry, s), tag) == digests[s] for s in SERVICES]
        if any(moved) and not all(moved):
            found.append(f"{tag} points at a mixed set: {moved}")
    if index.files() and not all(digests.values()):
        found.append(f"the index has {index.files()} but not every image is on the registry")
    version = xtask(tree, "version", check=False)
    if version.returncode != 0 or not re.search(rf"version ({re.escape(OLD)}|{re.escape(NEW)}) ", version.stdout):
        found.append(f"the surfaces are neither {OLD} nor {NEW}: {version.stdout}")
    return found


def assert_consistent(registry, index, tree):
    assert inconsistencies(registry, index, tree) == []


def assert_released(registry, index, tree, tmp_path):
    head = git(tree, "rev-parse", "HEAD").strip()
    assert f"{head}\trefs/tags/v{NEW}^{{}}" in git(tree, "ls-remote", "--tags", "origin")
    for service in SERVICES:
        name = repo(registry, service)
        assert registry.tags(name) == {NEW, "0.1", "latest"}
        assert registry.digest(name, NEW) == registry.digest(name, "latest") == registry.digest(name, "0.1")
    assert index.files() == DISTS
    assert_release_described(tree, NEW)


def assert_no_secret_on_disk(secrets, tree, env):
    """No password or token is left in the tree, its ignored state, the target directory or the
    Docker client configuration: the release's own login is gone with it."""
    places = [tree, COPY_TARGET_DIR / "xtask", Path(env["DOCKER_CONFIG"])]
    for place in places:
        for path in (place.rglob("*") if place.exists() else []):
            if "venv" not in path.parts and path.is_file() and not path.is_symlink() and path.stat().st_size < 50_000_000:
                data = path.read_bytes()
                assert all(s.encode() not in data for s in secrets), f"a secret is left in {path}"
    config = Path(env["DOCKER_CONFIG"]) / "config.json"
    assert not config.exists() or env["GATI_REGISTRY"] not in config.read_text()
    assert not list((COPY_TARGET_DIR / "xtask").glob("docker-login-*"))


def test_a_release_reaches_registry_index_and_git_and_installs(guided_release, tmp_path, images):
    registry, index, tree, env = guided_release.registry, guided_release.index, guided_release.tree, guided_release.env
    out = guided_release.output(f"cargo xtask release {NEW} --yes")
    assert f"v{NEW} is released" in out and "STEP" in out
    assert f"verified gati {NEW}" in out, out
    published = guided_release.published
    head = git(tree, "rev-parse", "HEAD").strip()
    assert published["head"].strip() == head
    assert f"{head}\trefs/tags/v{NEW}^{{}}" in git(tree, "ls-remote", "--tags", "origin")
    for service in SERVICES:
        tags = published["registry"][service]
        assert set(tags) == {NEW, "0.1", "latest"}, tags
        assert tags[NEW] == tags["latest"] == tags["0.1"]
    assert published["index"] == DISTS

    # The secrets appear in no output, no command line, no commit, no image layer, no file.
    secrets = guided_release.secrets
    assert guided_release.watch.samples > 10 and guided_release.watch.leaks == []
    for secret in secrets:
        assert all(secret not in result.stdout for _, result in guided_release.runs)
        assert secret not in git(tree, "log", "--all", "-p")
    layers = subprocess.run(["docker", "save", *[f"{registry.address}/{repo(registry, s)}:{NEW}" for s in SERVICES]],
                            capture_output=True, check=True).stdout
    assert all(secret.encode() not in layers for secret in secrets)
    assert_no_secret_on_disk(secrets, tree, env)

    # The login is the bot's; the images are the organisation's, and the package pins exactly the
    # digests the registry serves.
    assert registry.user != registry.namespace and repo(registry, "backend").startswith(f"{registry.namespace}/")
    (wheel,) = (tree / ".tools" / "state" / f"release-{NEW}-dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as w:
        compose = w.read("gati/docker-compose.yml").decode()
    pinned = {s: f"{registry.address}/{repo(registry, s)}:{NEW}@{published['registry'][s][NEW]}" for s in SERVICES}
    found = sorted(a + b for a, b in re.findall(r"image: \$\{GATI_IMAGE_PREFIX:-([^}]+)\}(/\S+)", compose))
    assert found == sorted(pinned.values())
    # The git copy keeps tags only; the release files hold the digests, sums and notes.
    assert "@sha256:" not in (tree / "sdk" / "gati" / "docker-compose.yml").read_text()
    files = tree / ".tools" / "state" / f"release-{NEW}-files"
    assert (files / "digests.txt").read_text().split() == list(pinned.values())
    assert f"gati-{NEW}-py3-none-any.whl" in (files / "SHA256SUMS").read_text()

    # What changed: the commits since the previous tag, in CHANGELOG.md of the release commit.
    changelog = git(tree, "show", f"v{NEW}:CHANGELOG.md")
    section = changelog.split(f"## {NEW} (", 1)[1]
    assert "### Features" in section and "**sdk**: something new" in section, changelog
    assert "copy of the gati repository" not in section, "a commit of the previous release is listed"
    assert f"pip install gati=={NEW}" in section
    assert pinned["backend"] in (files / "NOTES.md").read_text()

    again = guided_release.output(f"cargo xtask release {NEW} --yes", 1)
    assert f"v{NEW} is already released" in again
    assert index.files() == DISTS

    # Someone pushes other bytes over the immutable tag of the backend; verify names it. The
    # tag is put back afterwards: the session's other tests read this release too.
    moved = f"{registry.address}/{repo(registry, 'backend')}:{NEW}"
    docker_env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "intruder")}
    subprocess.run(["docker", "login", "--username", registry.user, "--password-stdin", registry.address],
                   input=registry.password, text=True, check=True, capture_output=True, env=docker_env)
    subprocess.run(["docker", "tag", images["backend"], moved], check=True)
    try:
        subprocess.run(["docker", "push", moved], check=True, capture_output=True, env=docker_env)
        assert registry.digest(repo(registry, "backend"), NEW) != pinned["backend"].split("@")[1]
        verify = xtask(tree, "verify", NEW, env=env, check=False)
        assert verify.returncode != 0
        assert f"the tag {moved} was moved" in verify.stdout, verify.stdout
    finally:
        registry.retag(repo(registry, "backend"), pinned["backend"].split("@")[1], NEW)
        subprocess.run(["docker", "rmi", moved], capture_output=True)
    assert registry.digest(repo(registry, "backend"), NEW) == pinned["backend"].split("@")[1]

    # A user installs gati from the index and starts it: the pinned bytes.
    env_dir = tmp_path / "user-venv"
    venv.create(env_dir, with_pip=True)
    subprocess.run([env_dir / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", "--index-url",
                    index.url + "/simple/", f"gati=={NEW}"], check=True)
    ports = {k: str(free_port()) for k in ("GATI_BACKEND_PORT", "GATI_DASHBOARD_PORT", "GATI_MCP_PORT", "GATI_OTLP_PORT")}
    project = f"gati-release-{os.getpid()}"
    # No GATI_IMAGE_PREFIX and no login: the package names the registry, the anonymous may pull.
    stack_env = {k: v for k, v in os.environ.items() if k != "GATI_IMAGE_PREFIX"}
    stack_env = {**stack_env, **ports, "DOCKER_CONFIG": str(tmp_path / "user-docker"), "GATI_PROJECT": project}
    try:
        started = subprocess.run([env_dir / "bin" / "gati", "start", "-d", "--pull", "always"], env=stack_env,
                                 capture_output=True, text=True, timeout=300)
        assert started.returncode == 0, started.stderr
        health = request("GET", f"http://127.0.0.1:{ports['GATI_BACKEND_PORT']}/health")
        assert (health[0], health[1]["status"], health[1]["version"]) == (200, "ok", NEW), health
        version = subprocess.run([env_dir / "bin" / "gati", "version"], env=stack_env, capture_output=True, text=True)
        assert pinned["backend"] in version.stdout, version.stdout
    finally:
        subprocess.run([env_dir / "bin" / "gati", "stop"], env=stack_env, capture_output=True)
        subprocess.run(["docker", "volume", "rm", f"{project}_gati-data"], capture_output=True)

    # A mirror must hold the released digests; one that does not is named, with what to do.
    mirror = subprocess.run([env_dir / "bin" / "gati", "start", "-d", "--pull", "always"],
                            env={**stack_env, "GATI_IMAGE_PREFIX": "127.0.0.1:9/mirror"},
                            capture_output=True, text=True, timeout=300)
    assert mirror.returncode != 0 and "a mirror without the released digest" in mirror.stderr, mirror.stderr


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
    # The other two indexes wait at the registry's door until it stops: the backend is pushed,
    # they are not (the pushes run in parallel; without the hold all three can finish first).
    registry.hold(rf"^PUT /v2/{registry.namespace}/gati-(dashboard|mcp-server)/manifests/{re.escape(NEW)}$")
    status, out, fired = release_until(tree, env, rf"^backend +pushed {NEW}", lambda proc: registry.stop())
    assert fired and status != 0, out
    assert f"cargo xtask release {NEW}" in out and "no floating tag was moved" in out, out
    registry.start()
    assert_consistent(registry, index, tree)
    assert index.files() == []
    assert registry.digest(repo(registry, "backend"), NEW) is not None
    assert [registry.digest(repo(registry, s), NEW) for s in ("dashboard", "mcp-server")] == [None, None]

    out = release(tree, env).stdout
    assert "build" in out and "done before" in out
    assert_released(registry, index, tree, None)


class RefusingIndex:
    """In front of the real index: reads pass through, uploads get 503 Service Unavailable
    (with `only`, only uploads of files whose name ends so; the others pass through)."""

    def __init__(self, index, only=None):
        upstream = index.url

        class Handler(http.server.BaseHTTPRequestHandler):
            def relay(self, body=None):
                forward = urllib.request.Request(upstream + self.path, data=body, method=self.command,
                                                 headers=dict(self.headers.items()) if body is not None else {})
                try:
                    with urllib.request.urlopen(forward, timeout=30) as r:
                        self.answer(r.status, r.read())
                except urllib.error.HTTPError as e:
                    self.answer(e.code, e.read())

            def answer(self, status, body=b""):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self.relay()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if only is not None and f'{only}"'.encode() not in body:
                    return self.relay(body)
                self.answer(503)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class UploadRefusals:
    """One release whose upload is refused twice before it completes: first by an index
    answering 503 to every upload, then with a wrong TWINE_PASSWORD; then it completes with the
    index's ~/.pypirc section while the CI variables are empty (an absent CI secret arrives as
    one; twine would take "" as the password and look no further, so the release hides empty
    TWINE_* from twine and names the .pypirc section of the index, which twine ignores with
    --repository-url). Each attempt's output, and what held after it."""

    def __init__(self, dir):
        self.registry = Registry(dir / "registry", auth="token", redirect_blobs=True, page_size=2)
        self.index = Index(dir / "index")
        self.tree = release_tree(dir)
        env = {**self.registry.env(dir / "docker-config"), **self.index.env(), "GATI_RETRY_SECONDS": "3"}
        self.env = env
        refusing = RefusingIndex(self.index)
        try:
            self.unavailable = release(self.tree, {**env, "GATI_INDEX": refusing.url + "/",
                                                   "GATI_INDEX_SIMPLE": refusing.url + "/simple/"}, check=False)
        finally:
            refusing.close()
        self.after_unavailable = self.state()
        self.wrong_password = "wrong-" + env["TWINE_PASSWORD"][:4]
        self.wrong = release(self.tree, {**env, "TWINE_PASSWORD": self.wrong_password}, check=False)
        self.after_wrong = self.state()
        home = dir / "home"
        home.mkdir()
        (home / ".pypirc").write_text(f"[distutils]\nindex-servers =\n    sandbox\n\n[sandbox]\n"
                                      f"repository = {self.index.url}/\nusername = {self.index.user}\n"
                                      f"password = {self.index.password}\n")
        tools = {k: os.environ.get(k, str(Path.home() / d)) for k, d in (("CARGO_HOME", ".cargo"),
                                                                          ("RUSTUP_HOME", ".rustup"))}
        # A stand-in for `pypi-attestations sign` (Sigstore needs GitHub's OIDC identity): it
        # writes the attestation file twine takes beside each package file.
        signer = dir / "pep740-signer"
        self.signed = dir / "signed.txt"
        signer.write_text(f"#!/bin/sh\nfor f in \"$@\"; do echo \"$f\" >> {self.signed}; "
                          "printf '{\"version\": 1}' > \"$f.publish.attestation\"; done\n")
        signer.chmod(0o755)
        empty = {**env, **tools, "HOME": str(home), "TWINE_USERNAME": "", "TWINE_PASSWORD": "",
                 "GATI_PEP740_SIGNER": str(signer)}
        self.pypirc = release(self.tree, empty, check=False)

    def state(self):
        return {"problems": inconsistencies(self.registry, self.index, self.tree), "index": self.index.files()}

    def stop(self):
        self.registry.stop()
        self.index.stop()


@pytest.fixture(scope="module")
def upload_refusals(tmp_path_factory):
    scenario = UploadRefusals(tmp_path_factory.mktemp("upload-refusals"))
    yield scenario
    scenario.stop()


def test_index_refusing_the_upload(upload_refusals):
    result = upload_refusals.unavailable
    assert result.returncode != 0
    assert "step upload failed" in result.stdout and f"cargo xtask release {NEW}" in result.stdout, result.stdout
    assert upload_refusals.after_unavailable == {"problems": [], "index": []}
    # The same command, once the index answers, finishes the release.
    assert upload_refusals.pypirc.returncode == 0, upload_refusals.pypirc.stdout
    assert_released(upload_refusals.registry, upload_refusals.index, upload_refusals.tree, None)


def test_wrong_index_credentials(upload_refusals):
    result, env = upload_refusals.wrong, upload_refusals.env
    assert result.returncode != 0 and "step upload failed" in result.stdout, result.stdout
    assert env["TWINE_PASSWORD"][:4] not in result.stdout.replace(upload_refusals.wrong_password, "")
    assert upload_refusals.after_wrong == {"problems": [], "index": []}
    assert upload_refusals.pypirc.returncode == 0, upload_refusals.pypirc.stdout
    assert_released(upload_refusals.registry, upload_refusals.index, upload_refusals.tree, None)


def interrupt_while_frozen(service_proc):
    """Freezes `service_proc` (so the step is surely running), interrupts the release."""
    def action(proc):
        os.kill(service_proc().pid, signal.SIGSTOP)
        proc.send_signal(signal.SIGINT)
    return action


def test_sigint_during_the_compile_then_during_the_image_push(registry, index, tree, env):
    # The backend's image is built and smoke-tested while the other services still compile: the
    # MCP server's source is changed (and committed), so that it compiles again even where these
    # sources were built before.
    main = tree / "mcp-server" / "src" / "main.rs"
    main.write_text(main.read_text() + f"\n// compiled again by the interrupt test of {uuid.uuid4()}\n")
    git(tree, "commit", "--quiet", "--all", "--message", "A change the release compiles")
    status, out, fired = release_until(tree, env, r"^smoke test: ", lambda proc: proc.send_signal(signal.SIGINT))
    assert fired and status != 0
    assert "build interrupted" in out and f"    cargo xtask release {NEW}" in out, out
    # cargo stopped with its rustc processes, not cargo alone.
    deadline = time.monotonic() + 10
    compiling = ["pgrep", "-f", f"{COPY_TARGET_DIR.resolve()}/x86_64"]  # rustc is given cargo's real path
    while subprocess.run(compiling, capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "a compile of the interrupted release is still running"
        time.sleep(0.2)
    assert_consistent(registry, index, tree)
    assert all(not registry.tags(repo(registry, s)) for s in SERVICES)

    try:
        status, out, fired = release_until(tree, env, rf"pushing {NEW}", interrupt_while_frozen(lambda: registry.proc))
    finally:
        os.kill(registry.proc.pid, signal.SIGCONT)
    assert fired and status != 0
    assert "push-images interrupted" in out and f"    cargo xtask release {NEW}" in out, out
    assert_consistent(registry, index, tree)
    assert_no_secret_on_disk([env["DOCKER_PASSWORD"], env["TWINE_PASSWORD"]], tree, env)
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


def revision(registry, name, tag):
    """The revision label of an image on the registry: the first platform's image of its index
    (its config blob, behind a redirect)."""
    status, _, index = registry.api(f"/v2/{name}/manifests/{tag}", accept=registry.MANIFEST_TYPES)
    assert status == 200, status
    first = json.loads(index)["manifests"][0]["digest"]
    status, _, manifest = registry.api(f"/v2/{name}/manifests/{first}", accept=registry.MANIFEST_TYPES)
    assert status == 200, status
    config = json.loads(manifest)["config"]["digest"]
    status, _, blob = registry.api(f"/v2/{name}/blobs/{config}", follow=True)
    assert status == 200, status
    return json.loads(blob)["config"]["Labels"]["org.opencontainers.image.revision"]


def index_bytes(index):
    return {name: (index.packages / name).read_bytes() for name in index.files()}


def everything_published(registry):
    return {(s, t): registry.digest(repo(registry, s), t) for s in SERVICES for t in (NEW, "0.1", "latest")}


def test_ci_on_the_tag_of_a_laptop_release_changes_nothing_and_a_later_push_keeps_the_release(
        guided_release, tmp_path):
    registry, index, tree, env = guided_release.registry, guided_release.index, guided_release.tree, guided_release.env
    published, files = everything_published(registry), index_bytes(index)
    assert all(published.values()), published

    # The tag push starts the release workflow on a fresh runner: it finds the release done.
    ci = fresh_clone(tmp_path, tree, "ci", tag=f"v{NEW}")
    out = xtask(ci, "release", "--from-tag", f"v{NEW}", "--yes", env=env).stdout
    assert f"v{NEW} is already released" in out, out
    assert everything_published(registry) == published and index_bytes(index) == files

    # Later, main moves on (in a clone of origin's main: the release's own tree stays as it is)
    # and CI pushes its images: the release's tags are immutable.
    later = fresh_clone(tmp_path, tree, "later", tag="main")
    (later / "README.md").write_text((later / "README.md").read_text() + "\nA later change.\n")
    git(later, "commit", "--quiet", "--all", "--message", "A later change")
    refused = xtask(later, "images", "--push", env=env, check=False)
    assert refused.returncode != 0, refused.stdout
    assert f"gati-backend:{NEW} is on the registry already" in refused.stdout, refused.stdout
    assert "an immutable tag never changes" in refused.stdout and "--edge" in refused.stdout
    assert everything_published(registry) == published

    # What such a build of main should do: edge and sha-<commit>, never the release's tags.
    xtask(later, "images", "--push", "--edge", env=env)
    assert everything_published(registry) == published
    short = git(later, "rev-parse", "HEAD").strip()[:12]
    assert {"edge", f"sha-{short}", NEW, "0.1", "latest"} <= registry.tags(repo(registry, "backend"))


def test_ci_rerun_on_a_fresh_runner_finishes_a_partial_upload(registry, index, tree, env, tmp_path):
    # A maintainer bumps and tags; the tag push's CI release runs.
    xtask(tree, "bump", NEW)
    git(tree, "commit", "--quiet", "--all", "--message", f"Release {NEW}")
    git(tree, "tag", "--annotate", f"v{NEW}", "--message", f"gati {NEW}")
    git(tree, "push", "--quiet", "origin", "main", f"v{NEW}")

    # The first run uploads the wheel; the index refuses the sdist.
    refusing = RefusingIndex(index, only=".tar.gz")
    try:
        first = xtask(fresh_clone(tmp_path, tree, "ci-1", tag=f"v{NEW}"), "release", "--from-tag", f"v{NEW}", "--yes",
                      env={**env, "GATI_INDEX": refusing.url + "/", "GATI_INDEX_SIMPLE": refusing.url + "/simple/"},
                      check=False)
    finally:
        refusing.close()
    assert first.returncode != 0 and "step upload failed" in first.stdout, first.stdout
    assert index.files() == [f"gati-{NEW}-py3-none-any.whl"]
    # Floating tags move only after the upload: `latest` never names a version users can't install.
    for service in SERVICES:
        assert registry.digest(repo(registry, service), NEW)
        assert registry.digest(repo(registry, service), "latest") is None
    wheel = index_bytes(index)

    # The re-run lands on another fresh runner, without the first one's journal or images.
    second = xtask(fresh_clone(tmp_path, tree, "ci-2", tag=f"v{NEW}"), "release", "--from-tag", f"v{NEW}", "--yes",
                   env=env).stdout
    assert f"gati-{NEW}-py3-none-any.whl is already on the index" in second, second
    # The images are proven pushed by their revision label: nothing to push, nothing rebuilt over them.
    assert "== push-images: done" in second and "\n$ push " not in second, second
    # A release of a tag neither bumps, tags nor pushes git: the maintainer did.
    assert "== bump" not in second and "== tag" not in second and "== push-git" not in second, second
    assert index.files() == DISTS and {k: index_bytes(index)[k] for k in wheel} == wheel
    for service in SERVICES:
        name = repo(registry, service)
        assert registry.digest(name, NEW) == registry.digest(name, "latest") == registry.digest(name, "0.1")


def test_a_fix_committed_after_a_failed_step_is_what_gets_released(registry, index, tree, env):
    # A packaging error that only the build finds.
    pyproject = tree / "sdk" / "pyproject.toml"
    good = pyproject.read_text()
    pyproject.write_text(good.replace("[project]", "[project", 1))
    git(tree, "commit", "--quiet", "--all", "--message", "Break the packaging")

    failed = release(tree, env, check=False)
    assert failed.returncode != 0 and "step build failed" in failed.stdout, failed.stdout
    assert git(tree, "log", "-1", "--format=%s").strip() == f"Release {NEW}"

    pyproject.write_text(good)
    git(tree, "commit", "--quiet", "--all", "--message", "Fix the packaging")
    out = release(tree, env).stdout
    assert f"v{NEW} is released" in out, out
    fix = git(tree, "rev-parse", "HEAD").strip()
    assert git(tree, "rev-parse", f"v{NEW}^{{commit}}").strip() == fix
    assert_released(registry, index, tree, None)
    assert revision(registry, repo(registry, "backend"), NEW) == fix


def test_preflight_refuses_an_account_that_may_only_pull(registry, index, tree, env):
    reader = {**env, "DOCKER_USERNAME": registry.reader, "DOCKER_PASSWORD": registry.reader_password}
    result = release(tree, reader, check=False)
    assert result.returncode != 0
    assert f'refused user "{registry.reader}" the right to push to {registry.namespace}/gati-' in result.stdout, \
        result.stdout
    assert "nothing was changed" in result.stdout
    assert git(tree, "log", "-1", "--format=%s").strip() != f"Release {NEW}"


def commands(output):
    """The `$ ` lines: every effect, as the executor printed it (a dry run prints the same)."""
    return [line[2:] for line in output.splitlines() if line.startswith("$ ")]


def test_the_dry_run_prints_the_commands_a_real_run_executes(guided_release):
    registry, env = guided_release.registry, guided_release.env
    planned = guided_release.output(f"cargo xtask release {NEW} --dry-run")
    assert "dry run: nothing was changed" in planned, planned
    assert env["DOCKER_PASSWORD"] not in planned and env["TWINE_PASSWORD"] not in planned
    # Nothing changed: no commit, no tag, no image, no file on the index.
    after = guided_release.after_dry_run
    assert after["head"] == guided_release.before["head"] and after["status"] == ""
    assert f"v{NEW}" not in after["tags"] and after["index"] == []
    assert all(not tags for tags in after["registry"].values()), after["registry"]
    assert f"+## {NEW} (" in planned and f'+__version__ = "{NEW}"' in planned

    ran = guided_release.output(f"cargo xtask release {NEW} --yes")
    assert f"v{NEW} is released" in ran
    assert commands(planned) == commands(ran), "\n".join(
        ["planned:", *commands(planned), "", "ran:", *commands(ran)])
    expected = [f"push {registry.address}/{repo(registry, s)}:{NEW} (linux/amd64, linux/arm64)" for s in SERVICES]
    assert all(any(c.startswith(e) for c in commands(ran)) for e in expected), commands(ran)
    assert any(c.startswith("twine upload") for c in commands(ran))
    assert any(c.startswith(f"git push --atomic origin HEAD:refs/heads/main refs/tags/v{NEW}") for c in commands(ran))


def test_the_upload_carries_pep740_attestations_from_the_signer(upload_refusals):
    out = upload_refusals.pypirc.stdout
    assert upload_refusals.pypirc.returncode == 0, out
    assert "with PEP 740 attestations signed by" in out, out
    signed = [Path(line).name for line in upload_refusals.signed.read_text().split()]
    assert sorted(signed) == sorted(DISTS), signed
    # The package files on the index are the release's, not the signer's.
    assert upload_refusals.index.files() == DISTS


def test_index_credentials_from_pypirc_when_the_ci_variables_are_empty(upload_refusals):
    out = upload_refusals.pypirc.stdout
    assert upload_refusals.pypirc.returncode == 0, out
    assert "credentials: ~/.pypirc [sandbox] (****)" in out, out
    assert upload_refusals.index.password not in out
    assert_released(upload_refusals.registry, upload_refusals.index, upload_refusals.tree, None)
