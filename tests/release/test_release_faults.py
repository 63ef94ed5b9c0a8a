"""A release through a network that fails about one request in five (tests/release/faults.py):
the registry, its token realm, its blob host and the index each answer 503, 429 with
Retry-After, drop connections before the request arrives, and lose answers after the server
did the work (a blob upload finished, a package file stored). The release completes, and
nothing was done twice: each package file reached the index once, each blob's upload was
completed once, and the registry holds exactly the digests the release's tags name."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from faults import BLOB_UPLOAD_DONE, KINDS, Faults, proxied_sandbox
from gati_testing import git, release_tree, repo, xtask

pytestmark = pytest.mark.docker

NEW = "0.1.1"
SERVICES = ("backend", "dashboard", "mcp-server")
DISTS = [f"gati-{NEW}-py3-none-any.whl", f"gati-{NEW}.tar.gz"]
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])


def reachable(registry, name, reference, found):
    """Every digest that `reference` names in `name`, itself included: the indexes, the
    manifests, their configs and layers (attestations too: they are manifests of the index)."""
    status, headers, body = registry.api(f"/v2/{name}/manifests/{reference}", accept=MANIFEST_TYPES)
    assert status == 200, f"{name}:{reference}: HTTP {status}"
    found["manifests"].add(headers["Docker-Content-Digest"])
    manifest = json.loads(body)
    for entry in manifest.get("manifests", []):
        reachable(registry, name, entry["digest"], found)
    for blob in [manifest.get("config"), *manifest.get("layers", [])]:
        if blob:
            found["blobs"].add(blob["digest"])
    return found


def stored(registry, name):
    """The manifests and the blobs docker-registry keeps for the repository `name`."""
    root = Path(registry.storage, "docker/registry/v2/repositories", name)
    digests = lambda sub: {f"sha256:{p.parent.name}" for p in (root / sub).glob("sha256/*/link")}  # noqa: E731
    return {"manifests": digests("_manifests/revisions"), "blobs": digests("_layers")}


def test_a_release_through_failing_proxies_completes_with_nothing_done_twice(registry, index, tmp_path):
    tree = release_tree(tmp_path)
    faults = Faults(seed=27)
    try:
        _, _, proxied = proxied_sandbox(faults, registry, index)
        env = {**registry.env(tmp_path / "docker-config"), **index.env(), **proxied, "GATI_RETRY_SECONDS": "20"}
        result = xtask(tree, "release", NEW, "--yes", env=env, check=False)
        faults.enabled = False
    finally:
        faults.stop()
    out = result.stdout
    assert result.returncode == 0, f"the release failed after {faults.injected} faults:\n{out[-6000:]}"
    assert f"v{NEW} is released" in out and f"verified gati {NEW}" in out, out[-4000:]

    # Faults of every kind were injected, and answers were lost after a blob upload finished and
    # after a package file was stored.
    assert all(faults.injected[kind] > 0 for kind in KINDS), faults.injected
    assert any(BLOB_UPLOAD_DONE.search(r) for r in faults.lost_on), faults.lost_on
    assert any(r.startswith("POST") for r in faults.lost_on), faults.lost_on
    assert "retrying" in out
    assert faults.daemon_injected == 3, "gati start's pull met no fault"
    served = {service for service, _, _ in faults.forwarded}
    assert served == {"registry", "realm", "blobs", "index"}, served

    # Each package file reached the index once: a second send of a name would have been refused.
    uploads = [status for service, request, status in faults.forwarded if service == "index" and request.startswith("POST")]
    assert uploads == [200, 200], uploads
    assert index.files() == DISTS

    # Each blob's upload was completed once per repository.
    completed = Counter(re.sub(r"/blobs/uploads/.*digest=", " ", request).split("&")[0]
                        for service, request, status in faults.forwarded
                        if service == "registry" and BLOB_UPLOAD_DONE.search(request) and status == 201)
    assert completed and max(completed.values()) == 1, [r for r, n in completed.items() if n > 1]

    # The registry holds exactly what the release's tags name, and they name one index each.
    head = git(tree, "rev-parse", "HEAD").strip()
    assert f"{head}\trefs/tags/v{NEW}^{{}}" in git(tree, "ls-remote", "--tags", "origin")
    for service in SERVICES:
        name = repo(registry, service)
        assert registry.tags(name) == {NEW, "0.1", "latest"}
        assert registry.digest(name, NEW) == registry.digest(name, "latest") == registry.digest(name, "0.1")
        assert stored(registry, name) == reachable(registry, name, NEW, {"manifests": set(), "blobs": set()})
