"""Images every gati user can run: each release pushes, per service, an OCI image index of
linux/amd64 and linux/arm64, each its own static binary, assembled by xtask and reproducible.
Read back from the Docker-Hub-like registry of the session's guided release as a user's tools
read it; the arm64 binary answers /health under qemu; a smoke test failing on arm64 leaves
nothing pushed; the images rebuilt from the tag in another clone have the very digests the
package pins, and a tag that no longer builds them is named."""

import gzip
import io
import json
import os
import subprocess
import tarfile
import zipfile

import pytest

from gati_testing import copy_repository, free_port, fresh_clone, git, repo, wait_for, xtask

pytestmark = pytest.mark.docker

NEW = "0.1.1"
SERVICES = ("backend", "dashboard", "mcp-server")
ARCHITECTURES = {"amd64": 62, "arm64": 183}  # ELF e_machine: EM_X86_64, EM_AARCH64


def manifest(registry, name, reference):
    status, headers, body = registry.api(f"/v2/{name}/manifests/{reference}", accept=registry.MANIFEST_TYPES,
                                         credentials=None)
    assert status == 200, (name, reference, status)
    return headers["Docker-Content-Digest"], json.loads(body)


def blob(registry, name, digest):
    status, _, body = registry.api(f"/v2/{name}/blobs/{digest}", follow=True, credentials=None)
    assert status == 200, (name, digest, status)
    return body


def binary_in(layer, name):
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        return tar.extractfile(name).read()


def test_each_index_lists_both_platforms_each_with_its_architecture(guided_release):
    registry = guided_release.registry
    for service in SERVICES:
        name = repo(registry, service)
        digest, index = manifest(registry, name, NEW)
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json", index
        images = [m for m in index["manifests"]
                  if m.get("annotations", {}).get("vnd.docker.reference.type") != "attestation-manifest"]
        platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in images]
        assert platforms == [("linux", "amd64"), ("linux", "arm64")], platforms
        assert index["annotations"]["org.opencontainers.image.version"] == NEW
        for entry in images:
            _, image = manifest(registry, name, entry["digest"])
            config = json.loads(blob(registry, name, image["config"]["digest"]))
            assert config["architecture"] == entry["platform"]["architecture"] and config["os"] == "linux"
            assert config["config"]["Labels"]["org.opencontainers.image.version"] == NEW
            binary = binary_in(blob(registry, name, image["layers"][0]["digest"]), f"gati-{service}")
            assert binary[:4] == b"\x7fELF"
            assert int.from_bytes(binary[18:20], "little") == ARCHITECTURES[config["architecture"]], service
    # The release said what it pushed.
    out = guided_release.output(f"cargo xtask release {NEW} --yes")
    assert "linux/amd64, linux/arm64" in out and "arm64 " in out, out


def test_the_arm64_binary_from_the_registry_is_static_and_answers_under_qemu(guided_release, tmp_path):
    registry = guided_release.registry
    name = repo(registry, "backend")
    _, index = manifest(registry, name, NEW)
    (arm64,) = [m for m in index["manifests"] if m["platform"]["architecture"] == "arm64"]
    _, image = manifest(registry, name, arm64["digest"])
    binary = tmp_path / "gati-backend"
    binary.write_bytes(binary_in(blob(registry, name, image["layers"][0]["digest"]), "gati-backend"))
    binary.chmod(0o755)
    described = subprocess.run(["file", "--brief", str(binary)], capture_output=True, text=True).stdout
    assert "ARM aarch64" in described and "statically linked" in described, described
    port = free_port()
    proc = subprocess.Popen(["qemu-aarch64-static", str(binary)], stderr=subprocess.PIPE,
                            env={**os.environ, "GATI_HOST": "127.0.0.1", "GATI_PORT": str(port),
                                 "GATI_DATA_DIR": str(tmp_path / "data")})
    try:
        health = wait_for(f"http://127.0.0.1:{port}/health", proc=proc)
        assert health["status"] == "ok" and health["version"] == NEW, health
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_smoke_test_failing_on_arm64_leaves_nothing_pushed(registry, tmp_path):
    tree = copy_repository(tmp_path / "repo")
    # A qemu that starts nothing: every arm64 binary "fails" its smoke test.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "qemu-aarch64-static").write_text(
        '#!/bin/sh\n[ "$1" = --version ] && { echo "qemu-aarch64 version 0 (a broken one)"; exit 0; }\n'
        'echo "Illegal instruction" >&2\nexit 132\n')
    (fake / "qemu-aarch64-static").chmod(0o755)
    env = {**registry.env(tmp_path / "docker-config"), "GATI_RETRY_SECONDS": "3",
           "PATH": f"{fake}:{os.environ['PATH']}"}
    result = xtask(tree, "images", "--push", env=env, check=False)
    assert result.returncode != 0, result.stdout
    assert "for linux/arm64 under qemu-aarch64-static exited" in result.stdout, result.stdout
    assert "nothing was pushed" in result.stdout, result.stdout
    assert "$ push " not in result.stdout
    for service in SERVICES:
        assert not registry.tags(repo(registry, service)), service


def test_images_rebuilt_from_the_tag_in_another_clone_have_the_pinned_digests(guided_release, tmp_path):
    """Two builds of one commit, in two clones at two paths, compiling afresh: the same digests,
    for every manifest and index (the rebuild is compared with what the release pushed)."""
    tree, env = guided_release.tree, guided_release.env
    (wheel,) = (tree / ".tools" / "state" / f"release-{NEW}-dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as w:
        compose = w.read("gati/docker-compose.yml").decode()
    out = xtask(tree, "verify", NEW, "--rebuild", env={**env, "GATI_BUILD_CACHE": "off"}).stdout
    assert f"verified gati {NEW}" in out, out
    for service in SERVICES:
        digest = guided_release.published["registry"][service][NEW]
        assert digest in compose
        assert f"gati-{service}:{NEW}: {digest}, the pinned digest" in out, out

    # The tag moved to another commit, whose backend image says another thing (its sources are
    # the same, so cargo compiles nothing again): what it builds is not what was pushed, verify
    # says so for each image, and says what differs, platform by platform.
    moved = fresh_clone(tmp_path, tree, "moved", tag="main")
    dockerfile = moved / "backend" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace('licenses="MIT"', 'licenses="MIT OR Apache-2.0"'))
    git(moved, "commit", "--quiet", "--all", "--message", "Not the release")
    git(moved, "tag", "--force", "--annotate", f"v{NEW}", "--message", "moved")
    failed = xtask(moved, "verify", NEW, "--rebuild", env={**env, "GATI_BUILD_CACHE": "off"}, check=False)
    assert failed.returncode != 0, failed.stdout
    lines = {
        service: next(line for line in failed.stdout.splitlines() if f"gati-{service}:{NEW}: rebuilt from v{NEW}" in line)
        for service in SERVICES
    }
    released, now = (git(t, "rev-parse", r).strip() for t, r in ((tree, f"v{NEW}^{{commit}}"), (moved, "HEAD")))
    for service, line in lines.items():
        assert "the pushed image is not what the tag builds" in line, line
        for platform in ("linux/amd64", "linux/arm64"):
            assert f"{platform}: " in line, line
        assert line.count(f'revision "{released}" pushed, "{now}" rebuilt') == 2, line
        assert "another binary" not in line, line
    assert 'licenses "MIT" pushed, "MIT OR Apache-2.0" rebuilt' in lines["backend"], lines["backend"]
    assert "licenses" not in lines["dashboard"], lines["dashboard"]
