"""The dashboard's bundled npm files are kept in the tree (dashboard/vendor/), so that cargo
alone builds it; `npm ci` from the lockfile must give the very same bytes."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_npm_ci_gives_the_kept_files():
    result = subprocess.run([sys.executable, ROOT / "dashboard" / "vendor" / "refresh.py", "--check"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_build_needs_no_node_modules():
    # build.rs reads dashboard/vendor/ only: a fresh clone has no node_modules/.
    build = (ROOT / "dashboard" / "build.rs").read_text()
    assert "node_modules" not in build.replace("under node_modules/", "").split("fn main")[1]
