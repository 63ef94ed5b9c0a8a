"""`cargo xtask rehearse`, the README's main command: a complete release into a throwaway
registry, index and origin, then `pip install` and `gati start` from them; the tree it runs in
keeps its commits, tags and files."""

import re

import pytest

from gati_testing import ROOT, git, xtask

pytestmark = pytest.mark.docker


def test_rehearsal_releases_installs_and_starts_the_next_patch():
    status, head, tags = git(ROOT, "status", "--porcelain"), git(ROOT, "rev-parse", "HEAD"), git(ROOT, "tag")
    version = re.search(r"^version (\S+) ", xtask(ROOT, "version").stdout, re.M).group(1)
    major, minor, patch = version.split("-")[0].split(".")
    nxt = f"{major}.{minor}.{int(patch) + 1}" if "-" not in version else version.split("-")[0]

    out = xtask(ROOT, "rehearse").stdout
    assert f"v{nxt} is released" in out
    assert f"is healthy at {nxt}: " + '{"status":"ok","version":"' + nxt + '"}' in out
    assert f"v{nxt} is already released" in out
    for phase in ("release", "pip install", "gati start", "release again"):
        assert re.search(rf"^{phase} +\d+\.\d$", out, re.M), phase

    assert (git(ROOT, "status", "--porcelain"), git(ROOT, "rev-parse", "HEAD"), git(ROOT, "tag")) == (status, head, tags)
