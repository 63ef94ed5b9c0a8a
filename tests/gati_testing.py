"""Helpers shared by the system tests (tests/) and the SDK tests (sdk/tests/)."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sandbox import Index, Registry  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def required_env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through `cargo xtask test`", pytrace=False)
    return value


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def days_ago(n):
    """The UTC date `n` days before today, asked at each call: the suite may run across midnight."""
    return (datetime.now(timezone.utc).date() - timedelta(days=n)).isoformat()


class Daily:
    """What `seed()` (a context manager) makes relative to today, made again once the UTC date has
    changed: a module's seed of yesterday's "today" would answer yesterday's questions after midnight.
    A module-scoped fixture yields one; the function-scoped fixture the tests take returns `get()`."""

    def __init__(self, seed):
        self._seed, self._day, self._value, self._held = seed, None, None, contextlib.ExitStack()

    def get(self):
        while self._day != days_ago(0):
            self._held.close()
            self._day = days_ago(0)
            self._value = self._held.enter_context(self._seed())
        return self._value

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self._held.close()


def request(method, url, body=None, timeout=10):
    """(status, parsed JSON body) of one HTTP request; HTTP errors are returned, not raised."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, parsed(response.read())
    except urllib.error.HTTPError as e:
        return e.code, parsed(e.read())


def parsed(raw):
    """JSON as Python values; anything else as text."""
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def wait_for(url, timeout=30, proc=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode} before answering {url}")
        try:
            status, body = request("GET", url, timeout=2)
            if status == 200:
                return body
            last = status
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout}s (last: {last})")


class Service:
    """A service binary running on a free loopback port, stopped with SIGTERM at the end."""

    def __init__(self, binary, args=(), env=None, port=None, health="/health"):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "GATI_HOST": "127.0.0.1", "GATI_PORT": str(self.port), **(env or {})}
        self.proc = subprocess.Popen([str(binary), *args], env=full_env, stderr=subprocess.PIPE)
        wait_for(self.url + health, proc=self.proc)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def event(event_id, run_id="run-1", agent="support-bot", event_type="llm_call", ts="2026-01-31T12:00:00Z", **data):
    return {
        "event_id": event_id,
        "run_id": run_id,
        "agent_name": agent,
        "event_type": event_type,
        "timestamp": ts,
        "data": data,
    }


SAMPLE_EVENTS = [
    event("e1", event_type="run_start", ts="2026-01-31T12:00:00Z", input="where is my order?"),
    event("e2", event_type="llm_call", ts="2026-01-31T12:00:01Z", model="gpt-x", tokens=120, cost=0.002,
          prompt="Find order 42"),
    event("e3", event_type="tool_call", ts="2026-01-31T12:00:02Z", tool="lookup_order", order=42),
    event("e4", event_type="run_end", ts="2026-01-31T12:00:03Z", output="shipped"),
    event("e5", run_id="run-2", agent="triage-bot", event_type="llm_call", tokens=30, cost=0.001),
]


def copy_repository(dest, commit=True):
    """A copy of the repository's tracked files (as they are in the work tree) at `dest`; with
    `commit`, a git repository with them as one clean commit."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout
    archive = subprocess.run(["tar", "-c", "--null", "-T", "-", "-f", "-"], cwd=ROOT, input=files,
                             capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-f", "-"], cwd=dest, input=archive, check=True)
    if commit:
        git(dest, "init", "--quiet", "--initial-branch=main")
        git(dest, "add", "--all")
        git(dest, "commit", "--quiet", "--message", "copy of the gati repository for a test")
    return dest


GIT_IDENTITY = {"GIT_AUTHOR_NAME": "gati tests", "GIT_AUTHOR_EMAIL": "tests@gati.invalid",
                "GIT_COMMITTER_NAME": "gati tests", "GIT_COMMITTER_EMAIL": "tests@gati.invalid"}


def git(tree, *args):
    return subprocess.run(["git", *args], cwd=tree, env={**os.environ, **GIT_IDENTITY}, capture_output=True,
                          text=True, check=True).stdout


# The copies build in the repository's own target directory, so that what is compiled already
# (the dependencies, and for a copy of the same sources, everything: tar keeps the files' times)
# is not compiled again. The binaries under test are a copy of their own (`target/test-bin`,
# see `cargo xtask test`), which no copy's build replaces.
COPY_TARGET_DIR = Path(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target")
# What `cargo xtask` builds the host's binaries with (ops/cargo.rs): the release's toolchain
# (`cargo xtask test` names it in GATI_TOOLCHAIN) and its flags, so that a test's own cargo build
# shares what is compiled already.
CARGO_HOME = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
STATIC_RUSTFLAGS = {"CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS":
                    f"-C target-feature=+crt-static --remap-path-prefix={CARGO_HOME}=/cargo"}


def release_cargo():
    """`cargo +TOOLCHAIN`, as xtask calls it."""
    return ["cargo", f"+{required_env('GATI_TOOLCHAIN')}"]


def xtask(tree, *args, env=None, check=True, timeout=900):
    """`cargo xtask ARGS` in `tree`; output is stdout and stderr together."""
    full_env = {**os.environ, **GIT_IDENTITY, "CARGO_TARGET_DIR": str(COPY_TARGET_DIR), "CI": "true",
                "RUST_BACKTRACE": "0", **(env or {})}
    # A session of its own, so that a timeout stops everything it started: a cargo build left
    # running would link its version's binaries into the target directory the other tests share.
    command = ["cargo", "xtask", *args]
    with subprocess.Popen(command, cwd=tree, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_session(proc.pid)
            # A process that left the session may still hold the pipe: what it has said is enough.
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired as late:  # its output is bytes, even in text mode
                out = (late.output or b"").decode(errors="replace")
            raise subprocess.TimeoutExpired(command, timeout, output=out) from None
    result = subprocess.CompletedProcess(command, proc.returncode, stdout=out)
    if check:
        assert result.returncode == 0, f"cargo xtask {' '.join(args)} failed:\n{result.stdout[-5000:]}"
    return result


def kill_session(session):
    """SIGKILL to every process group of `session`, until none is left: xtask runs its cargo build
    in a group of its own (so that its Ctrl-C handling reaches rustc), which the session's first
    group does not hold."""
    for _ in range(50):
        groups = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                # After the command's ")": state, parent, process group, session.
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == session and fields[0] != "Z":
                    groups.add(int(fields[2]))
        if not groups:
            return
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        time.sleep(0.1)


def repo(registry, service):
    """The repository of a service's image on a test registry: `<namespace>/gati-<service>`."""
    return f"{registry.namespace}/gati-{service}"


# The throwaway registry and index: one implementation (tests/sandbox.py), shared with
# `cargo xtask rehearse` and `bench`.
LocalRegistry = Registry
LocalIndex = Index


def release_tree(dest):
    """A clean copy of the repository on `main`, whose origin is a bare repository beside it,
    sharing this tree's Python tools."""
    tree = copy_repository(dest / "repo")
    git(dest, "init", "--quiet", "--bare", "origin.git")
    git(tree, "remote", "add", "origin", str(dest / "origin.git"))
    git(tree, "push", "--quiet", "origin", "main")
    (tree / ".tools").mkdir()
    (tree / ".tools" / "venv").symlink_to(ROOT / ".tools" / "venv")
    return tree


def fresh_clone(tmp_path, tree, name, tag=None):
    """What a CI runner has: a clone of origin (at `tag`, detached, as a tag push checks it
    out), no journal, no built images of its own making, the same pinned Python tools."""
    dest = tmp_path / name
    args = ["--branch", tag] if tag else []
    subprocess.run(["git", "clone", "--quiet", *args, str(tree.parent / "origin.git"), str(dest)], check=True,
                   capture_output=True)
    (dest / ".tools").mkdir()
    (dest / ".tools" / "venv").symlink_to(ROOT / ".tools" / "venv")
    return dest


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
            # Listed without a stat (a glob's would fail on a process that just ended).
            for pid in filter(str.isdigit, os.listdir("/proc")):
                cmdline = Path("/proc", pid, "cmdline")
                try:
                    text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                self.leaks.extend(f"{cmdline}: {text}" for s in self.secrets if s in text)
            self.samples += 1

    def stop(self):
        """Stops sampling; fails if the sampler itself died, rather than watching nothing."""
        alive = self.thread.is_alive()
        self.running = False
        self.thread.join()
        assert alive, "the command-line sampler stopped early"


def process_table():
    """{pid: (parent pid, command line)} of every process now (one that ends meanwhile is left out)."""
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path("/proc", pid, "stat").read_text()
            cmdline = Path("/proc", pid, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # `pid (comm) state ppid …`: comm may hold spaces and parentheses.
        table[int(pid)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline.strip())
    return table


def is_xtask(cmdline):
    """The xtask binary itself (which takes the credentials out of its environment)."""
    return bool(cmdline) and Path(cmdline.split(" ", 1)[0]).name == "xtask"


class EnvironWatch:
    """Samples, every 20 ms while a release runs, the environment of every process an xtask
    process started (its descendants: cargo, rustc, build scripts, setuptools, twine, curl, git,
    docker, the signer, …) for the secrets' values. `secrets` maps a name to its value;
    `allowed(name, cmdline)` says which process may hold it (twine its password). What is found
    elsewhere is in `leaks`; `seen` holds the programs watched, to prove the watch saw them."""

    def __init__(self, secrets, allowed):
        self.secrets = {name: value.encode() for name, value in secrets.items() if value}
        self.allowed = allowed
        self.leaks, self.held, self.seen = [], set(), set()
        self.samples = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def below(table, root):
        """Every process `root` started, directly or not."""
        children = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        found, todo = set(), [root]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def descendants(self, table):
        children = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        # The xtask processes this test started (not another session's on the same machine).
        mine = self.below(table, os.getpid())
        found, todo = set(), [pid for pid in mine if is_xtask(table[pid][1])]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def run(self):
        while self.running:
            table = process_table()
            for pid in self.descendants(table):
                cmdline = table[pid][1]
                if is_xtask(cmdline):
                    continue
                try:
                    environ = Path("/proc", str(pid), "environ").read_bytes()
                except OSError:
                    continue
                self.seen.add(Path(cmdline.split(" ", 1)[0]).name if cmdline else "?")
                for name, value in self.secrets.items():
                    if b"=" + value + b"\0" in environ or environ.endswith(b"=" + value):
                        if self.allowed(name, cmdline):
                            self.held.add((name, cmdline[:200]))
                        else:
                            self.leaks.append(f"{name} in the environment of {pid}: {cmdline[:300]}")
            self.samples += 1
            time.sleep(0.02)

    def stop(self):
        """Stops sampling; fails if the sampler itself died, rather than watching nothing."""
        alive = self.thread.is_alive()
        self.running = False
        self.thread.join()
        assert alive, "the environment sampler stopped early"


def only_twine_holds_its_password(name, cmdline):
    """The one process a release hands a credential through its environment: twine."""
    return name == "TWINE_PASSWORD" and " -m twine upload " in f" {cmdline} "


def guide_commands():
    """Every `$ ` line of docs/RELEASING.md's `console` blocks, in order."""
    text = (ROOT / "docs" / "RELEASING.md").read_text()
    blocks = re.findall(r"^```console\n(.*?)^```", text, re.M | re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


class GuidedRelease:
    """The release guide followed once per session, as a maintainer would: every command of
    docs/RELEASING.md, in order, in a clean copy of the repository whose previous release is
    tagged v0.1.0 and which has one feature since, against a Docker-Hub-like registry and an
    index of its own, while every process's command line is watched for the secrets. The tests
    that only read a finished release (what it published, what its commands printed) share it;
    a test that changes the registry puts back what it changed."""

    OLD, NEW = "0.1.0", "0.1.1"

    def __init__(self, dir):
        self.registry = Registry(dir / "registry", auth="token", redirect_blobs=True, page_size=2)
        self.index = Index(dir / "index")
        self.dir = dir
        self.tree = release_tree(dir)
        git(self.tree, "tag", "--annotate", f"v{self.OLD}", "--message", f"gati {self.OLD}")
        (self.tree / "NEWS.txt").write_text("something new\n")
        git(self.tree, "add", "NEWS.txt")
        git(self.tree, "commit", "--quiet", "--message", "feat(sdk): something new")
        self.env = {**self.registry.env(dir / "docker-config"), **self.index.env(), "GATI_RETRY_SECONDS": "3"}
        self.secrets = [self.env["DOCKER_PASSWORD"], self.env["TWINE_PASSWORD"]]
        self.runs = []
        self.before = self.state()
        self.after_dry_run = None
        self.published = None
        watch = CmdlineWatch(self.secrets)
        environ = EnvironWatch({"DOCKER_PASSWORD": self.env["DOCKER_PASSWORD"],
                                "TWINE_PASSWORD": self.env["TWINE_PASSWORD"]}, only_twine_holds_its_password)
        try:
            for command in guide_commands():
                self.runs.append((command, self.run(command)))
                if command == f"cargo xtask release {self.NEW} --dry-run":
                    self.after_dry_run = self.state()
                if command == f"cargo xtask release {self.NEW} --yes" and self.published is None:
                    self.published = self.state()
        finally:
            watch.stop()
            environ.stop()
        self.watch = watch
        self.environ = environ

    def run(self, command):
        env = {**os.environ, **GIT_IDENTITY, **self.env, "CARGO_TARGET_DIR": str(COPY_TARGET_DIR), "CI": "true",
               "RUST_BACKTRACE": "0"}
        return subprocess.run(["bash", "-c", command], cwd=self.tree, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=900)

    def state(self):
        """What git, the registry and the index hold now."""
        services = ("backend", "dashboard", "mcp-server")
        return {
            "head": git(self.tree, "rev-parse", "HEAD"),
            "status": git(self.tree, "status", "--porcelain"),
            "tags": git(self.tree, "tag"),
            "index": self.index.files(),
            "registry": {s: {t: self.registry.digest(repo(self.registry, s), t)
                             for t in self.registry.tags(repo(self.registry, s))} for s in services},
        }

    def output(self, command, nth=0):
        """What the `nth` run of `command` printed; fails if it failed."""
        runs = [result for c, result in self.runs if c == command]
        assert len(runs) > nth, f"the guide does not run `{command}` {nth + 1} time(s)"
        result = runs[nth]
        assert result.returncode == 0, f"$ {command}\n{result.stdout[-4000:]}"
        return result.stdout

    def stop(self):
        self.registry.stop()
        self.index.stop()
