"""Releases into registries that refuse anonymous reads: a self-hosted registry with htpasswd
(Basic auth), and a token registry whose anonymous get no access at all (private packages, as
on GHCR). The release completes, its verify step included; `cargo xtask verify X` on its own
without the release's credentials says what is needed and, interrupted during `gati start`
(SIGINT, SIGTERM) with them, leaves no login behind; the tag's CI run
(`release --from-tag`) releases there too, or finds the release done."""

import os
import signal
import subprocess
import time

import pytest

from gati_testing import (COPY_TARGET_DIR, GIT_IDENTITY, fresh_clone, git, is_xtask, process_table, release_tree,
                          repo, xtask)
from sandbox import Registry

pytestmark = pytest.mark.docker

NEW = "0.1.1"
SERVICES = ("backend", "dashboard", "mcp-server")


@pytest.fixture(params=["htpasswd", "private-token"])
def private_registry(request, tmp_path):
    if request.param == "htpasswd":
        registry = Registry(tmp_path / "registry", auth="htpasswd", redirect_blobs=False, page_size=None)
    else:
        registry = Registry(tmp_path / "registry", auth="token", redirect_blobs=True, page_size=2, private=True)
    yield registry
    registry.stop()


def assert_refuses_the_anonymous(registry):
    status, _, _ = registry.api(f"/v2/{repo(registry, 'backend')}/tags/list", credentials=None)
    assert status == 401, status
    assert registry.api(f"/v2/{repo(registry, 'backend')}/tags/list")[0] in (200, 404)


def test_a_release_into_a_registry_that_refuses_anonymous_reads_completes(private_registry, index, tmp_path):
    registry = private_registry
    assert_refuses_the_anonymous(registry)
    tree = release_tree(tmp_path)
    env = {**registry.env(tmp_path / "docker-config"), **index.env(), "GATI_RETRY_SECONDS": "3"}

    if registry.auth == "htpasswd":
        # The maintainer tags; the tag's CI run, on a fresh runner, makes the whole release.
        xtask(tree, "bump", NEW)
        git(tree, "commit", "--quiet", "--all", "--message", f"Release {NEW}")
        git(tree, "tag", "--annotate", f"v{NEW}", "--message", f"gati {NEW}")
        git(tree, "push", "--quiet", "origin", "main", f"v{NEW}")
        ci = fresh_clone(tmp_path, tree, "ci", tag=f"v{NEW}")
        out = xtask(ci, "release", "--from-tag", f"v{NEW}", "--yes", env=env).stdout
        assert "== bump" not in out and "== push-git" not in out, out
    else:
        # A laptop release; the tag's CI run then finds it done.
        out = xtask(tree, "release", NEW, "--yes", env=env).stdout
        ci = fresh_clone(tmp_path, tree, "ci", tag=f"v{NEW}")
        again = xtask(ci, "release", "--from-tag", f"v{NEW}", "--yes", env=env).stdout
        assert f"v{NEW} is already released" in again, again
    assert f"v{NEW} is released" in out and f"verified gati {NEW}" in out, out
    # Users of such a registry must log in: the release says so, and verified as they would.
    assert f"{registry.address} refuses anonymous reads" in out and f"docker login {registry.address}" in out, out
    assert registry.password not in out
    for service in SERVICES:
        assert {NEW, "0.1", "latest"} <= registry.tags(repo(registry, service))
    assert index.files() == [f"gati-{NEW}-py3-none-any.whl", f"gati-{NEW}.tar.gz"]

    # verify on its own without the credentials cannot read the registry, and says what it needs
    # (with them it runs below, interrupted, and ran above as the release's last step).
    anonymous = {**env, "DOCKER_USERNAME": "", "DOCKER_PASSWORD": ""}
    refused = xtask(ci, "verify", NEW, env=anonymous, check=False)
    assert refused.returncode != 0, refused.stdout
    assert f"{registry.address} refuses anonymous reads" in refused.stdout, refused.stdout
    assert "set DOCKER_USERNAME and DOCKER_PASSWORD" in refused.stdout, refused.stdout

    # Interrupted while `gati start` pulls with its login, verify leaves no login file behind.
    interrupt_verify_during_gati_start(ci, env, registry,
                                       signal.SIGINT if registry.auth == "htpasswd" else signal.SIGTERM)


def ancestor(table, pid, of):
    """Whether the process `of` started `pid`, directly or not."""
    seen = set()
    while pid in table and pid not in seen:
        seen.add(pid)
        pid = table[pid][0]
        if pid == of:
            return True
    return False


def interrupt_verify_during_gati_start(tree, env, registry, signum):
    proc = subprocess.Popen(["cargo", "xtask", "verify", NEW], cwd=tree, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **GIT_IDENTITY, **env, "CI": "true", "RUST_BACKTRACE": "0",
                                 "CARGO_TARGET_DIR": str(COPY_TARGET_DIR)})
    try:
        xtask_pid, deadline = None, time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            table = process_table()
            # rustup's proxy and cargo exec(2) what they run: xtask may be `proc` itself.
            ours = {pid for pid in table if pid == proc.pid or ancestor(table, pid, proc.pid)}
            xtask_pid = next((pid for pid in ours if is_xtask(table[pid][1])), xtask_pid)
            starting = [pid for pid, (ppid, cmdline) in table.items() if ppid == xtask_pid and " start " in cmdline
                        and "/bin/gati" in cmdline]
            if starting:
                login = COPY_TARGET_DIR / "xtask" / f"docker-login-{xtask_pid}" / "config.json"
                assert login.exists(), "verify pulls from this registry with a login of its own"
                os.kill(xtask_pid, signum)
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"verify never ran `gati start`:\n{proc.communicate()[0]}")
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out
    assert not (COPY_TARGET_DIR / "xtask" / f"docker-login-{xtask_pid}").exists(), out
    for path in (COPY_TARGET_DIR / "xtask").rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 1_000_000:
            assert registry.password.encode() not in path.read_bytes(), f"a credential is left in {path}"
