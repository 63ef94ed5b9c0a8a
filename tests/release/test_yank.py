"""`cargo xtask yank`, against the Docker-Hub-like registry and the PyPI-like index, with two
releases (0.1.1, then 0.1.2) in a copy of the repository whose origin is a bare repository:
the yank of 0.1.2, interrupted (SIGKILL) after its first tag move and run again from a fresh
clone, sends `latest` and `0.1` back to 0.1.1 while 0.1.2's digests still pull; a fresh clone
refuses to release or push 0.1.2, naming the yank; the next release's plan moves the floating
tags forward past it; `--undo` restores."""

import os
import re
import signal
import subprocess

import pytest

from gati_testing import COPY_TARGET_DIR, GIT_IDENTITY, fresh_clone, git, release_tree, repo, xtask
from test_release_manifest import assert_release_described

pytestmark = pytest.mark.docker

SERVICES = ("backend", "dashboard", "mcp-server")
GOOD, BAD, NEXT = "0.1.1", "0.1.2", "0.1.3"
REASON = "the backend crashes on start when its data folder is empty"


def digests(registry, tag):
    return {s: registry.digest(repo(registry, s), tag) for s in SERVICES}


def yank_killed_after_first_move(tree, env, registry):
    """`cargo xtask yank BAD`, killed (SIGKILL, its whole process group) once it has moved the
    backend's first tag; the MCP server's `latest` is held at the registry's door meanwhile, so
    the yank cannot have finished. Returns its output."""
    registry.hold(rf"^PUT /v2/{registry.namespace}/gati-mcp-server/manifests/latest$")
    proc = subprocess.Popen(["cargo", "xtask", "yank", BAD, "--reason", REASON, "--yes"], cwd=tree,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, **GIT_IDENTITY, **env, "CI": "true",
                                 "CARGO_TARGET_DIR": str(COPY_TARGET_DIR)})
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if re.match(rf"moved {registry.namespace}/gati-backend:0\.1 to {GOOD}", line):
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    registry.stop()  # drops the held request; the registry comes back as it was
    registry.start()
    return "".join(lines)


def test_a_yank_takes_a_release_back_for_every_machine_and_undo_restores_it(registry, index, tmp_path):
    env = {**registry.env(tmp_path / "docker-config"), **index.env(), "GATI_RETRY_SECONDS": "3"}
    tree = release_tree(tmp_path)
    for version in (GOOD, BAD):
        xtask(tree, "release", version, "--yes", env=env)
        assert_release_described(tree, version)
    good, bad = digests(registry, GOOD), digests(registry, BAD)
    assert digests(registry, "latest") == digests(registry, "0.1") == bad

    # Without a terminal and without --yes: the plan, then a stop; nothing changed.
    planned = subprocess.run(["cargo", "xtask", "yank", BAD, "--reason", REASON], cwd=tree, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                             env={**os.environ, **GIT_IDENTITY, **env, "CARGO_TARGET_DIR": str(COPY_TARGET_DIR)})
    assert planned.returncode != 0 and "no terminal to confirm on" in planned.stdout, planned.stdout
    assert f"{registry.namespace}/gati-backend:latest -> {GOOD}" in planned.stdout
    assert "deliberate exception" in planned.stdout
    assert digests(registry, "latest") == bad and "refs/yanked" not in git(tree, "ls-remote", "origin")

    # Killed midway: recorded, the backend's 0.1 moved, the MCP server's latest not.
    out = yank_killed_after_first_move(tree, env, registry)
    assert f"refs/yanked/v{BAD}" in git(tree, "ls-remote", "origin"), out
    assert registry.digest(repo(registry, "backend"), "0.1") == good["backend"], out
    assert registry.digest(repo(registry, "mcp-server"), "latest") == bad["mcp-server"], out

    # A fresh clone (a CI runner: no journal) runs it again, and it completes.
    ci = fresh_clone(tmp_path, tree, "ci", tag=f"v{BAD}")
    again = xtask(ci, "yank", BAD, "--reason", REASON, "--yes", env=env).stdout
    assert "recorded on origin already" in again and f"{BAD} is yanked" in again, again
    assert f"{index.url}/manage/project/gati/release/{BAD}/" in again, again
    assert REASON in again
    assert "cannot tell whether the index has yanked" in again, again  # pypiserver speaks no PEP 691 JSON
    assert digests(registry, "latest") == digests(registry, "0.1") == good
    # Whoever pinned the yanked release keeps running: its tag and digests stay.
    assert digests(registry, BAD) == bad
    assert all(registry.digest(repo(registry, s), bad[s]) == bad[s] for s in SERVICES)

    # From then on, nowhere is it released or pushed again, and the refusal says why.
    for command in (["release", "--from-tag", f"v{BAD}", "--yes"], ["images", "--push"]):
        refused = xtask(ci, *command, env=env, check=False)
        assert refused.returncode != 0 and REASON in refused.stdout and f"{BAD} was yanked" in refused.stdout, \
            refused.stdout
    resumed = xtask(tree, "release", BAD, "--yes", env=env, check=False)
    assert resumed.returncode != 0 and REASON in resumed.stdout, resumed.stdout

    # The next release moves the floating tags forward past the yanked one, as usual.
    plan = xtask(tree, "release", NEXT, "--dry-run", env=env).stdout
    for tag in ("0.1", "latest"):
        moves = f"registry: {registry.namespace}/gati-backend:{tag} -> the digest of " \
                f"{registry.namespace}/gati-backend:{NEXT}"
        assert moves in plan, plan
    assert "stays where it is" not in plan

    # --undo: the dry run shows every move and changes nothing; then it restores.
    dry = xtask(tree, "yank", BAD, "--undo", "--dry-run", env=env).stdout
    assert f"{registry.namespace}/gati-dashboard:latest -> {BAD}" in dry and "nothing was changed" in dry, dry
    assert digests(registry, "latest") == good
    xtask(tree, "yank", BAD, "--undo", "--yes", env=env)
    assert digests(registry, "latest") == digests(registry, "0.1") == bad
    assert "refs/yanked" not in git(tree, "ls-remote", "origin")
    assert "already released" in xtask(ci, "release", "--from-tag", f"v{BAD}", "--yes", env=env).stdout
