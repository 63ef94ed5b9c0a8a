"""`cargo xtask images --push` against Debian's docker-registry on loopback with htpasswd auth,
from a clean copy of the repository (a release is only pushed from a clean commit)."""

import json
import os
import subprocess

import pytest

from gati_testing import COPY_TARGET_DIR, copy_repository, git, repo, xtask

pytestmark = pytest.mark.docker

SERVICES = ("backend", "dashboard", "mcp-server")


@pytest.fixture
def tree(tmp_path):
    return copy_repository(tmp_path / "repo")


@pytest.fixture
def env(registry, tmp_path):
    return {**registry.env(tmp_path / "docker-config"), "GATI_RETRY_SECONDS": "3"}


def test_push_publishes_verified_tags_and_a_rerun_pushes_nothing(registry, tree, env, version):
    out = xtask(tree, "images", "--push", env=env).stdout
    commit = git(tree, "rev-parse", "HEAD").strip()
    for service in SERVICES:
        name = repo(registry, service)
        assert registry.tags(name) == {version, version.rsplit(".", 1)[0], "latest"}
        digest = registry.digest(name, version)
        assert digest and registry.digest(name, "latest") == digest == registry.digest(name, version.rsplit(".", 1)[0])
        assert digest[:19] in out
        labels = json.loads(subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", f"{registry.address}/{name}:{version}"],
            capture_output=True, text=True, check=True).stdout)
        assert labels["org.opencontainers.image.version"] == version
        assert labels["org.opencontainers.image.revision"] == commit
        assert labels["org.opencontainers.image.title"] == f"gati-{service}"
    assert "IMAGE" in out and "SECONDS" in out

    before = {s: registry.digest(repo(registry, s), version) for s in SERVICES}
    again = xtask(tree, "images", "--push", env=env).stdout
    assert again.count(f"{version} up to date") == 3, again
    assert "pushing" not in again
    assert {s: registry.digest(repo(registry, s), version) for s in SERVICES} == before


def test_a_hotfix_below_the_registrys_highest_release_keeps_latest(registry, tree, env, version, images):
    # The registry already holds a higher stable release, 9.0.0, as `latest`: another build.
    docker_env = {**os.environ, "DOCKER_CONFIG": env["DOCKER_CONFIG"]}
    subprocess.run(["docker", "login", "--username", registry.user, "--password-stdin", registry.address],
                   input=registry.password, text=True, check=True, capture_output=True, env=docker_env)
    for service in SERVICES:
        newer = f"{registry.address}/{repo(registry, service)}"
        for tag in ("9.0.0", "latest"):
            subprocess.run(["docker", "tag", images[service], f"{newer}:{tag}"], check=True)
            subprocess.run(["docker", "push", f"{newer}:{tag}"], check=True, capture_output=True, env=docker_env)
    latest_before = {s: registry.digest(repo(registry, s), "latest") for s in SERVICES}

    out = xtask(tree, "images", "--push", env=env).stdout
    line = version.rsplit(".", 1)[0]
    assert f"latest stays where it is: 9.0.0 on the registry is higher than {version}" in out
    for service in SERVICES:
        name = repo(registry, service)
        assert registry.digest(name, "latest") == latest_before[service]
        assert registry.digest(name, version) != latest_before[service]
        assert registry.digest(name, line) == registry.digest(name, version)


def test_a_prerelease_moves_neither_latest_nor_its_line(registry, tree, env):
    xtask(tree, "images", "--push", env=env)
    latest = {s: registry.digest(repo(registry, s), "latest") for s in SERVICES}
    xtask(tree, "bump", "0.1.1-rc.1")
    git(tree, "commit", "--quiet", "--all", "--message", "0.1.1-rc.1")
    out = xtask(tree, "images", "--push", env=env).stdout
    # The bumped tree compiled, and each service, in Docker and under qemu, says its new version.
    smoked = [line for line in out.splitlines() if line.startswith("smoke test: ")]
    for service in SERVICES:
        assert any(f"gati-{service}:0.1.1-rc.1 answers" in line for line in smoked), out
        assert any(f"gati-{service} for linux/arm64 under " in line for line in smoked), out
    assert len(smoked) == 6 and all('"version":"0.1.1-rc.1"' in line for line in smoked), smoked
    for service in SERVICES:
        name = repo(registry, service)
        assert "0.1.1-rc.1" in registry.tags(name)
        assert registry.digest(name, "0.1.1-rc.1") != latest[service]
        assert registry.digest(name, "latest") == latest[service]
        assert registry.digest(name, "0.1") == latest[service]
    assert "moved" not in out


def test_registry_stopped_between_pushes_then_a_rerun_completes(registry, tree, env, version):
    xtask(tree, "images", "--push", "--only", "backend", env=env)
    assert "latest" in registry.tags(repo(registry, "backend"))

    # Stop the registry once the build has started: after preflight, before any push.
    proc = subprocess.Popen(["cargo", "xtask", "images", "--push"], cwd=tree, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **env, "CI": "true", "CARGO_TARGET_DIR": str(COPY_TARGET_DIR)})
    output = []
    for line in proc.stdout:
        output.append(line)
        if line.startswith("backend") and "assembling" in line:
            registry.stop()
    assert proc.wait() != 0
    out = "".join(output)
    assert "no floating tag was moved. Run the same command again" in out, out

    registry.start()
    for service in ("dashboard", "mcp-server"):
        assert "latest" not in registry.tags(repo(registry, service))

    out = xtask(tree, "images", "--push", env=env).stdout
    assert f"backend      {version} up to date" in out, out
    for service in SERVICES:
        assert {"latest", version} <= registry.tags(repo(registry, service))


def test_a_wrong_password_fails_before_building_and_is_never_printed(registry, tree, env):
    wrong = "not-the-password-" + registry.password[:6]
    result = xtask(tree, "images", "--push", env={**env, "DOCKER_PASSWORD": wrong}, check=False)
    assert result.returncode != 0
    assert f'{registry.address} refused user "{registry.user}"' in result.stdout, result.stdout
    assert "assembling" not in result.stdout and "cargo +" not in result.stdout
    assert wrong not in result.stdout and registry.password not in result.stdout


def test_a_likely_secret_in_a_build_context_is_refused(registry, tree, env):
    (tree / "backend" / ".env").write_text("OPENAI_API_KEY=sk-test\n")
    result = xtask(tree, "images", env=env, check=False)
    assert result.returncode != 0
    assert "backend/.env looks like a secret inside a build context" in result.stdout, result.stdout
    assert "assembling" not in result.stdout
