"""The release's children get only what they need: while the guided release runs (every command
of docs/RELEASING.md), the environment of every process xtask starts is sampled every 20 ms for
the registry's and the index's passwords. Only twine may hold its password; cargo, rustc, the
build scripts, setuptools, git, curl and docker hold neither."""

import pytest

pytestmark = pytest.mark.docker


def test_no_credential_reaches_a_process_that_does_not_use_it(guided_release):
    watch = guided_release.environ
    assert watch.samples > 50, watch.samples
    assert watch.leaks == [], "\n".join(sorted(set(watch.leaks))[:20])
    # The watch saw the release's children, and twine with its password. (cargo is watched when it
    # runs; it does not when an earlier test of the session compiled these very sources.)
    assert {"git", "curl", "docker"} <= watch.seen, sorted(watch.seen)
    assert {name for name, _ in watch.held} == {"TWINE_PASSWORD"}, watch.held
