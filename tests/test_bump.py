"""`cargo xtask bump` on a copy of the repository: the bumped tree builds, the backend reports
the new version, and `python -m build sdk` names its files with the PEP 440 spelling."""

import os
import subprocess
import sys

from gati_testing import ROOT, Service, request

STATIC = {"CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS": "-C target-feature=+crt-static"}


def test_a_bumped_tree_builds_and_reports_the_new_version(tmp_path):
    tree = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    tree.mkdir()
    archive = subprocess.run(["tar", "-c", "--null", "-T", "-", "-f", "-"], cwd=ROOT, input=files,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-f", "-"], cwd=tree, input=archive, check=True)

    # A target directory of its own, kept between runs: the copy's binaries must not replace
    # the ones the other tests use.
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target" / "bump-test")}
    bump = subprocess.run(["cargo", "xtask", "bump", "0.2.0rc1"], cwd=tree, env=env, capture_output=True, text=True)
    assert bump.returncode == 0, bump.stderr
    assert "-> 0.2.0-rc.1 (Python: 0.2.0rc1)" in bump.stdout

    version = subprocess.run(["cargo", "xtask", "version"], cwd=tree, env=env, capture_output=True, text=True)
    assert version.returncode == 0 and "version 0.2.0-rc.1 (Python: 0.2.0rc1)" in version.stdout

    subprocess.run(["cargo", "build", "--release", "--target", "x86_64-unknown-linux-gnu", "--package",
                    "gati-backend"], cwd=tree, env={**env, **STATIC}, check=True, capture_output=True)
    binary = ROOT / "target" / "bump-test" / "x86_64-unknown-linux-gnu" / "release" / "gati-backend"
    backend = Service(binary, env={"GATI_DATA_DIR": str(tmp_path / "data")})
    try:
        assert request("GET", backend.url + "/health") == (200, {"status": "ok", "version": "0.2.0-rc.1"})
    finally:
        backend.stop()

    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", str(tree / "sdk"), "--outdir", str(dist)], check=True,
                   capture_output=True)
    assert sorted(p.name for p in dist.iterdir()) == ["gati-0.2.0rc1-py3-none-any.whl", "gati-0.2.0rc1.tar.gz"]
