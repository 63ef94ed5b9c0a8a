"""`cargo xtask rehearse`, the README's main command: a complete release into a throwaway
Docker-Hub-like registry, index and origin, verified by `pip install` and `gati start` from them,
then the tag's CI run on a fresh clone; the tree it runs in keeps its commits, tags and files."""

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
    # Every image an index of both platforms, each smoke-tested before anything was pushed.
    for service in ("backend", "dashboard", "mcp-server"):
        assert re.search(rf"^push 127\.0\.0\.1:\d+/gatidev/gati-{service}:{re.escape(nxt)} \(linux/amd64, linux/arm64\)",
                         "\n".join(line[2:] for line in out.splitlines() if line.startswith("$ ")), re.M), service
        assert f"gati-{service} for linux/arm64 under qemu-aarch64-static answers" in out, service
    assert "token auth (realm http://127.0.0.1:" in out and "blobs redirected to http://127.0.0.1:" in out
    # The release verified itself from outside: pip install from the index, gati start by digest.
    assert f"started  gati {nxt} from http://127.0.0.1:" in out and f"verified gati {nxt}" in out
    # The tag's CI run on a fresh clone, then the same command again: both find it released.
    assert out.count(f"v{nxt} is already released") == 2, out
    assert f"the release notes of {nxt}" in out and f"pip install gati=={nxt}" in out
    assert re.search(rf"- `127\.0\.0\.1:\d+/gatidev/gati-backend:{re.escape(nxt)}@sha256:[0-9a-f]{{64}}`", out), out
    for phase in ("release", "CI on the tag", "release again"):
        assert re.search(rf"^{phase} +\d+\.\d$", out, re.M), phase

    assert (git(ROOT, "status", "--porcelain"), git(ROOT, "rev-parse", "HEAD"), git(ROOT, "tag")) == (status, head, tags)
