"""What CI runs: `release --from-tag` (its refusals here; its completions in test_release.py), `doctor`,
and the linters, each able to say no."""

import json

import pytest

from gati_testing import ROOT, copy_repository, git, release_tree, xtask

pytestmark = pytest.mark.docker


@pytest.fixture
def env(registry, index, tmp_path):
    return {**registry.env(tmp_path / "docker-config"), **index.env(), "GATI_RETRY_SECONDS": "3"}


def tag_release(tree, version):
    """What a maintainer does before CI releases a tag: bump, commit, tag, push."""
    xtask(tree, "bump", version)
    git(tree, "commit", "--quiet", "--all", "--message", f"Release {version}")
    git(tree, "tag", "--annotate", f"v{version}", "--message", f"gati {version}")
    git(tree, "push", "--quiet", "origin", "main", f"v{version}")


def test_from_tag_refuses_a_tag_that_is_not_the_surfaces_or_not_head(tmp_path, env):
    tree = release_tree(tmp_path)
    git(tree, "tag", "v0.2.0")
    result = xtask(tree, "release", "--from-tag", "v0.2.0", "--yes", env=env, check=False)
    assert result.returncode != 0
    assert "tag v0.2.0 does not match the version surfaces, which say 0.1.0" in result.stdout, result.stdout

    tag_release(tree, "0.1.1")
    (tree / "later.txt").write_text("a commit after the tag\n")
    git(tree, "add", "later.txt")
    git(tree, "commit", "--quiet", "--message", "later")
    result = xtask(tree, "release", "--from-tag", "v0.1.1", "--yes", env=env, check=False)
    assert result.returncode != 0
    assert "tag v0.1.1 is not HEAD" in result.stdout, result.stdout


def doctor(tree, env, *args):
    return xtask(tree, "doctor", *args, env=env, check=False)


def test_doctor_passes_on_a_healthy_setup_and_names_each_problem(tmp_path, env):
    tree = release_tree(tmp_path)
    healthy = doctor(tree, env)
    assert healthy.returncode == 0, healthy.stdout
    assert "a release would pass its preflight checks" in healthy.stdout
    checks = {c["check"]: c["status"] for c in json.loads(doctor(tree, env, "--json").stdout.splitlines()[-1])}
    assert checks["docker daemon"] == checks["registry login"] == checks["index credentials"] == "ok"
    # Every check of the release's preflight, asked of the next patch release.
    for check in ("release tag", "origin", "clean tree", "index", "immutable tags", "python tools"):
        assert checks[check] == "ok", (check, checks)

    # What only a release's preflight used to see, doctor sees too: no origin to push the release to.
    no_origin = copy_repository(tmp_path / "no-origin")
    result = doctor(no_origin, env)
    assert result.returncode != 0 and "FAIL  origin" in result.stdout, result.stdout

    no_daemon = doctor(tree, {**env, "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"})
    assert no_daemon.returncode != 0 and "FAIL  docker daemon" in no_daemon.stdout

    no_credentials = {**env, **{k: "" for k in ("DOCKER_USERNAME", "DOCKER_PASSWORD", "TWINE_USERNAME", "TWINE_PASSWORD")}}
    result = doctor(tree, no_credentials)
    assert result.returncode != 0
    assert "FAIL  registry login" in result.stdout and "FAIL  index credentials" in result.stdout

    (tree / "backend" / ".env").write_text("SECRET=1\n")
    result = doctor(tree, env)
    assert result.returncode != 0
    assert "backend/.env looks like a secret inside a build context" in result.stdout


def test_lint_finds_an_unsafe_workflow_and_an_unpinned_base_image(tmp_path):
    tree = copy_repository(tmp_path / "repo", commit=False)
    # This tree's linters, as installed already (a fresh venv and npm install cost a minute).
    (tree / ".tools").mkdir()
    for tools in ("venv", "npm"):
        (tree / ".tools" / tools).symlink_to(ROOT / ".tools" / tools)
    assert xtask(tree, "lint").returncode == 0
    (tree / ".github" / "workflows" / "unsafe.yml").write_text(
        "name: unsafe\non: issues\npermissions: {}\njobs:\n  echo:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.event.issue.title }}\n")
    dockerfile = tree / "dashboard" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("FROM scratch", "FROM ubuntu"))
    result = xtask(tree, "lint", check=False)
    assert result.returncode != 0
    assert "actionlint, zizmor, hadolint reported findings" in result.stdout, result.stdout
    assert "unsafe.yml" in result.stdout and "DL3006" in result.stdout
