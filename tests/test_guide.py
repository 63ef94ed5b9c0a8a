"""docs/RELEASING.md runs: every `$ ` line of its `console` blocks, in order, in a clean copy
of the repository, against a throwaway registry and index. A guide that drifts from the tool
fails here."""

import os
import re
import subprocess

import pytest

from gati_testing import COPY_TARGET_DIR, GIT_IDENTITY, ROOT, release_tree

pytestmark = pytest.mark.docker


def guide_commands():
    text = (ROOT / "docs" / "RELEASING.md").read_text()
    blocks = re.findall(r"^```console\n(.*?)^```", text, re.M | re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def test_the_guide_has_commands_to_run():
    commands = guide_commands()
    assert any(c.startswith("cargo xtask release 0.1.1 --yes") for c in commands)
    assert all(c.startswith("cargo xtask ") for c in commands), commands


def test_every_command_in_the_release_guide_runs(registry, index, tmp_path):
    tree = release_tree(tmp_path)
    env = {**os.environ, **GIT_IDENTITY, **registry.env(tmp_path / "docker-config"), **index.env(),
           "CARGO_TARGET_DIR": str(COPY_TARGET_DIR), "CI": "true", "RUST_BACKTRACE": "0"}
    outputs = []
    for command in guide_commands():
        result = subprocess.run(["bash", "-c", command], cwd=tree, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=900)
        assert result.returncode == 0, f"$ {command}\n{result.stdout[-4000:]}"
        outputs.append(result.stdout)
    released = [o for c, o in zip(guide_commands(), outputs) if c == "cargo xtask release 0.1.1 --yes"]
    assert "v0.1.1 is released" in released[0] and "v0.1.1 is already released" in released[1]
    assert "v0.1.1 is already released" in outputs[guide_commands().index("cargo xtask release --from-tag v0.1.1 --yes")]
