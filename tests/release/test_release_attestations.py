"""Every release says what is inside it and where it came from: each platform's image carries,
in its image index (as BuildKit and Docker Hub lay them out), an SBOM of the crates linked into
its binary and a SLSA provenance statement about that very image, naming the tag's commit; each
binary embeds its dependency list (cargo-auditable), which rust-audit-info reads back from the
image pulled from the registry; the release files hold them all. Read from the session's guided
release, anonymously, as a user's scanner would."""

import json
import os
import subprocess

import cyclonedx.schema
import cyclonedx.validation.json
import pytest

from gati_testing import COPY_TARGET_DIR, git, repo
from test_release_platforms import NEW, SERVICES, binary_in, blob, manifest

pytestmark = pytest.mark.docker

RUST_AUDIT_INFO = COPY_TARGET_DIR / "xtask" / "rust-tools" / "bin" / "rust-audit-info"
PROVENANCE, SBOM = "https://slsa.dev/provenance/v1", "https://cyclonedx.org/bom"
# What each service's own binary links, and what another service's would not.
STACK = {"backend": ("axum", "rusqlite"), "dashboard": ("axum", "reqwest"), "mcp-server": ("rmcp", "axum")}
NOT_IN = {"backend": "rmcp", "dashboard": "rusqlite", "mcp-server": "rusqlite"}


def attestations(registry, name):
    """{platform: {predicate type: statement}} of the index under NEW, and the index itself."""
    _, index = manifest(registry, name, NEW)
    images = {m["digest"]: f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]
              if m.get("annotations", {}).get("vnd.docker.reference.type") != "attestation-manifest"}
    found = {}
    for entry in index["manifests"]:
        annotations = entry.get("annotations", {})
        if annotations.get("vnd.docker.reference.type") != "attestation-manifest":
            continue
        assert entry["platform"] == {"architecture": "unknown", "os": "unknown"}, entry
        target = annotations["vnd.docker.reference.digest"]
        _, attestation = manifest(registry, name, entry["digest"])
        statements = {}
        for layer in attestation["layers"]:
            assert layer["mediaType"] == "application/vnd.in-toto+json"
            statement = json.loads(blob(registry, name, layer["digest"]))
            assert statement["predicateType"] == layer["annotations"]["in-toto.io/predicate-type"]
            statements[statement["predicateType"]] = statement
        found[images[target]] = (target, statements)
    return index, found


def test_each_platform_image_has_an_sbom_and_a_provenance_about_it(guided_release):
    registry, tree = guided_release.registry, guided_release.tree
    commit = git(tree, "rev-parse", f"v{NEW}^{{commit}}").strip()
    for service in SERVICES:
        name = repo(registry, service)
        _, found = attestations(registry, name)
        assert sorted(found) == ["linux/amd64", "linux/arm64"], (service, sorted(found))
        for platform, (target, statements) in found.items():
            assert set(statements) == {PROVENANCE, SBOM}, (service, platform, list(statements))
            for statement in statements.values():
                assert statement["subject"][0]["digest"]["sha256"] == target.removeprefix("sha256:"), statement
            provenance = statements[PROVENANCE]["predicate"]
            source = provenance["buildDefinition"]["resolvedDependencies"][0]
            assert source["uri"].endswith(f"@refs/tags/v{NEW}") and source["digest"]["gitCommit"] == commit, source
            assert provenance["buildDefinition"]["externalParameters"]["platform"] == platform
            crates = {c["name"] for c in statements[SBOM]["predicate"]["components"]}
            assert set(STACK[service]) <= crates, (service, platform)
            assert NOT_IN[service] not in crates, (service, platform, "another service's SBOM")


def test_the_binaries_pulled_from_the_registry_embed_their_dependency_list(guided_release, tmp_path):
    registry = guided_release.registry
    name = repo(registry, "mcp-server")
    _, index = manifest(registry, name, NEW)
    for entry in index["manifests"]:
        if entry["platform"]["os"] != "linux":
            continue
        _, image = manifest(registry, name, entry["digest"])
        binary = tmp_path / f"gati-mcp-server-{entry['platform']['architecture']}"
        binary.write_bytes(binary_in(blob(registry, name, image["layers"][0]["digest"]), "gati-mcp-server"))
        listed = json.loads(subprocess.run([RUST_AUDIT_INFO, binary], capture_output=True, text=True,
                                           check=True).stdout)
        names = {p["name"] for p in listed["packages"]}
        assert {"rmcp", "gati-mcp-server"} <= names, (entry["platform"], sorted(names)[:20])


def test_docker_pulls_the_index_with_its_attestations_by_digest(guided_release):
    registry = guided_release.registry
    name = repo(registry, "backend")
    digest, index = manifest(registry, name, NEW)
    assert len(index["manifests"]) == 4, "two images and their two attestation manifests"
    reference = f"{registry.address}/{name}@{digest}"
    env = {**os.environ, "DOCKER_CONFIG": str(guided_release.dir / "anonymous-docker")}
    subprocess.run(["docker", "pull", "--quiet", reference], check=True, capture_output=True, env=env)
    inspected = json.loads(subprocess.run(["docker", "image", "inspect", reference], check=True, capture_output=True,
                                          text=True).stdout)[0]
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")


def test_the_release_files_hold_the_sboms_and_the_provenance(guided_release):
    files = guided_release.tree / ".tools" / "state" / f"release-{NEW}-files"
    for service in SERVICES:
        for arch in ("amd64", "arm64"):
            sbom = json.loads((files / f"gati-{service}-{NEW}-{arch}.cdx.json").read_text())
            assert sbom["bomFormat"] == "CycloneDX" and STACK[service][0] in {c["name"] for c in sbom["components"]}
            provenance = json.loads((files / f"gati-{service}-{NEW}-{arch}.provenance.json").read_text())
            assert provenance["predicateType"] == PROVENANCE
    text = (files / f"gati-{NEW}.cdx.json").read_text()
    package = json.loads(text)
    assert package["bomFormat"] == "CycloneDX", package
    # The release writes it unvalidated (cyclonedx-py --no-validate): the schema is checked here.
    schema = cyclonedx.schema.SchemaVersion.from_version(package["specVersion"])
    assert cyclonedx.validation.json.JsonStrictValidator(schema).validate_str(text) is None
    assert any(c["name"] == "gati" and c["version"] == NEW for c in package["components"]), package["components"]
    # The release's verify step checked them all, against each binary's embedded list.
    out = guided_release.output(f"cargo xtask release {NEW} --yes")
    assert out.count("attested ") == 3 and "SBOM and provenance of" in out, out
