"""docs/RELEASING.md runs: every `$ ` line of its `console` blocks, in order, in a clean copy
of the repository, against a throwaway registry and index (the session's guided release). A
guide that drifts from the tool fails here."""

import pytest

from gati_testing import guide_commands

pytestmark = pytest.mark.docker


def test_the_guide_has_commands_to_run():
    commands = guide_commands()
    assert any(c.startswith("cargo xtask release 0.1.1 --yes") for c in commands)
    assert all(c.startswith("cargo xtask ") for c in commands), commands


def test_every_command_in_the_release_guide_runs(guided_release):
    for command, result in guided_release.runs:
        assert result.returncode == 0, f"$ {command}\n{result.stdout[-4000:]}"
    assert [c for c, _ in guided_release.runs] == guide_commands()
    release = "cargo xtask release 0.1.1 --yes"
    assert "v0.1.1 is released" in guided_release.output(release, 0)
    assert "v0.1.1 is already released" in guided_release.output(release, 1)
    assert "v0.1.1 is already released" in guided_release.output("cargo xtask release --from-tag v0.1.1 --yes")
