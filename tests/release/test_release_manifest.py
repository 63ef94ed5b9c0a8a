"""The release as data: `gati-X.manifest.json` valid against docs/release-manifest.schema.json,
and equal, in its world-facing fields, to `cargo xtask verify X --json` (what the registry and
the index serve) until a tag moves; the MCP Registry's `server.json` valid against the
registry's own schema (a copy, tests/release/mcp-server.schema.json), naming the MCP server's
image by tag and digest, whose config carries the label the registry checks.

`assert_release_described` is the check every release test makes of its release files."""

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest

from gati_testing import COPY_TARGET_DIR, GIT_IDENTITY, ROOT, repo

pytestmark = pytest.mark.docker

MANIFEST_SCHEMA = json.loads((ROOT / "docs" / "release-manifest.schema.json").read_text())
MCP_SCHEMA = json.loads((Path(__file__).parent / "mcp-server.schema.json").read_text())
MCP_NAME_LABEL = "io.modelcontextprotocol.server.name"
RELEASE_ONLY = ("time", "changelog", "timings")


def release_files(tree, version):
    return tree / ".tools" / "state" / f"release-{version}-files"


def assert_release_described(tree, version):
    """The manifest among the release files validates against its schema and says `version`;
    server.json validates against the MCP Registry's schema and names the manifest's MCP server
    index by tag and digest. Returns (manifest, server.json)."""
    files = release_files(tree, version)
    (path,) = files.glob("gati-*.manifest.json")
    manifest = json.loads(path.read_text())
    jsonschema.Draft202012Validator(MANIFEST_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(manifest)
    assert manifest["version"]["semver"] == version and manifest["tag"] == f"v{version}", manifest["version"]
    assert manifest["timings"], "the steps' timings"
    server = json.loads((files / "server.json").read_text())
    jsonschema.Draft7Validator(MCP_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(server)
    (mcp,) = [s for s in manifest["services"] if s["service"] == "mcp-server"]
    identifiers = {p["identifier"] for p in server["packages"]}
    assert identifiers == {f"{mcp['registry']}/{mcp['repository']}:{version}@{mcp['index_digest']}"}, identifiers
    assert {p["transport"]["type"] for p in server["packages"]} == {"stdio", "streamable-http"}
    assert server["version"] == version
    return manifest, server


def world_facing(manifest):
    return {k: v for k, v in manifest.items() if k not in RELEASE_ONLY}


def verify_json(tree, env, version):
    """`cargo xtask verify VERSION --json`, its stdout alone (cargo talks on stderr)."""
    result = subprocess.run(["cargo", "xtask", "verify", version, "--json"], cwd=tree, capture_output=True, text=True,
                            env={**os.environ, **GIT_IDENTITY, "CARGO_TARGET_DIR": str(COPY_TARGET_DIR), "CI": "true",
                                 **env}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def image_labels(registry, service, platform_digest):
    """The config labels of one platform image on the registry."""
    name = repo(registry, service)
    status, _, body = registry.api(f"/v2/{name}/manifests/{platform_digest}", accept=registry.MANIFEST_TYPES)
    assert status == 200, status
    config = json.loads(body)["config"]["digest"]
    status, _, body = registry.api(f"/v2/{name}/blobs/{config}", follow=True)
    assert status == 200, status
    return json.loads(body)["config"]["Labels"]


def test_the_manifest_is_what_the_world_serves_until_a_tag_moves(guided_release):
    registry, tree, env = guided_release.registry, guided_release.tree, guided_release.env
    version = guided_release.NEW
    manifest, server = assert_release_described(tree, version)
    for service in manifest["services"]:
        assert service["tags"] == [version, "0.1", "latest"], service
        assert service["index_digest"] == guided_release.published["registry"][service["service"]][version]
        assert {p["platform"] for p in service["platforms"]} == {"linux/amd64", "linux/arm64"}
        assert all(len(p["attestations"]) == 1 for p in service["platforms"]), service["platforms"]
    dist = tree / ".tools" / "state" / f"release-{version}-dist"
    assert {(f["name"], f["size"]) for f in manifest["package"]["files"]} == \
        {(p.name, p.stat().st_size) for p in dist.iterdir() if p.name.endswith((".whl", ".tar.gz"))}
    assert all(f["url"].startswith(guided_release.index.url) for f in manifest["package"]["files"])
    assert "something new" in manifest["changelog"]

    # The MCP Registry checks the image's label against the entry's name.
    (mcp,) = [s for s in manifest["services"] if s["service"] == "mcp-server"]
    for platform in mcp["platforms"]:
        assert image_labels(registry, "mcp-server", platform["manifest_digest"])[MCP_NAME_LABEL] == server["name"]

    assert verify_json(tree, env, version) == world_facing(manifest)

    # Someone points the backend's `latest` elsewhere: the world differs from the manifest
    # there, and only there. Put back afterwards: the session's other tests read this release.
    (backend,) = [s for s in manifest["services"] if s["service"] == "backend"]
    elsewhere = backend["platforms"][0]["manifest_digest"]
    registry.retag(repo(registry, "backend"), elsewhere, "latest")
    try:
        world = verify_json(tree, env, version)
    finally:
        registry.retag(repo(registry, "backend"), backend["index_digest"], "latest")
    (moved,) = [s for s in world["services"] if s["service"] == "backend"]
    assert moved["tags"] == [version, "0.1"], moved
    assert {**world, "services": manifest["services"]} == world_facing(manifest)
    assert verify_json(tree, env, version) == world_facing(manifest)


def test_the_workflow_reads_the_manifest_with_jq_never_by_cutting_strings():
    workflow = (ROOT / ".github" / "workflows" / "docker-build.yml").read_text()
    assert "digests.txt" not in workflow
    assert "jq " in workflow and ".manifest.json" in workflow
