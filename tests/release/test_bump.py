"""`cargo xtask bump` on a copy of the repository: the bumped tree builds, the backend reports
the new version, and `python -m build sdk` names its files with the PEP 440 spelling."""

import os
import subprocess
import sys

from gati_testing import COPY_TARGET_DIR, STATIC_RUSTFLAGS, Service, copy_repository, release_cargo, request, xtask


def test_a_bumped_tree_builds_and_reports_the_new_version(tmp_path):
    tree = copy_repository(tmp_path / "repo", commit=False)
    assert "-> 0.2.0-rc.1 (Python: 0.2.0rc1)" in xtask(tree, "bump", "0.2.0rc1").stdout
    assert "version 0.2.0-rc.1 (Python: 0.2.0rc1)" in xtask(tree, "version").stdout

    env = {**os.environ, "CARGO_TARGET_DIR": str(COPY_TARGET_DIR), **STATIC_RUSTFLAGS}
    subprocess.run([*release_cargo(), "build", "--release", "--target", "x86_64-unknown-linux-gnu", "--package",
                    "gati-backend"], cwd=tree, env=env, check=True, capture_output=True)
    binary = COPY_TARGET_DIR / "x86_64-unknown-linux-gnu" / "release" / "gati-backend"
    backend = Service(binary, env={"GATI_DATA_DIR": str(tmp_path / "data")})
    try:
        status, health = request("GET", backend.url + "/health")
        assert (status, health["status"], health["version"]) == (200, "ok", "0.2.0-rc.1"), health
    finally:
        backend.stop()

    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", str(tree / "sdk"), "--outdir", str(dist)], check=True,
                   capture_output=True)
    assert sorted(p.name for p in dist.iterdir()) == ["gati-0.2.0rc1-py3-none-any.whl", "gati-0.2.0rc1.tar.gz"]
