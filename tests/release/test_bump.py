"""`cargo xtask bump` on a copy of the repository: every surface says the new version, and
`python -m build sdk` names its files with the PEP 440 spelling. (That a bumped tree compiles
and its services report the new version is the prerelease test's smoke test, in
test_images_push.py: a compile costs minutes, and that test pays one anyway.)"""

import subprocess
import sys
import tomllib

from gati_testing import copy_repository, xtask


def test_a_bumped_tree_says_the_new_version_everywhere_and_builds_its_package(tmp_path):
    tree = copy_repository(tmp_path / "repo", commit=False)
    assert "-> 0.2.0-rc.1 (Python: 0.2.0rc1)" in xtask(tree, "bump", "0.2.0rc1").stdout
    assert "version 0.2.0-rc.1 (Python: 0.2.0rc1)" in xtask(tree, "version").stdout
    # What cargo compiles into the binaries (CARGO_PKG_VERSION) is the workspace's version, and
    # the lock file agrees, so the next build needs no network to update it.
    workspace = tomllib.loads((tree / "Cargo.toml").read_text())
    assert workspace["workspace"]["package"]["version"] == "0.2.0-rc.1"
    lock = tomllib.loads((tree / "Cargo.lock").read_text())
    ours = {p["name"]: p["version"] for p in lock["package"] if p["name"].startswith("gati-")}
    assert ours and set(ours.values()) == {"0.2.0-rc.1"}, ours
    subprocess.run(["cargo", "metadata", "--locked", "--offline", "--format-version", "1", "--no-deps"], cwd=tree,
                   check=True, capture_output=True)

    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", str(tree / "sdk"), "--outdir", str(dist)], check=True,
                   capture_output=True)
    assert sorted(p.name for p in dist.iterdir()) == ["gati-0.2.0rc1-py3-none-any.whl", "gati-0.2.0rc1.tar.gz"]
