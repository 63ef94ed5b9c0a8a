"""Fixtures for every pytest test of the repository, run by `cargo xtask test`.

The binaries and images under test come from xtask (GATI_BIN_DIR, GATI_TEST_IMAGE_PREFIX,
GATI_VERSION). A missing one is an error, never a skip: run the tests through `cargo xtask test`.
"""

import subprocess
import sys
from pathlib import Path

import pytest

# tests/ holds the shared helpers (gati_testing, sandbox); each room's folder holds its tests,
# some of which share fixtures across modules by import (their basenames are unique).
TESTS = Path(__file__).resolve().parent / "tests"
sys.path[:0] = [str(TESTS), *(str(TESTS / room) for room in ("release", "stack", "hostile"))]

from gati_testing import ROOT, SAMPLE_EVENTS, GuidedRelease, Service, request, required_env  # noqa: E402,F401
from sandbox import Index, Registry  # noqa: E402


@pytest.fixture(scope="session")
def bin_dir():
    path = Path(required_env("GATI_BIN_DIR"))
    for name in ("gati-backend", "gati-dashboard", "gati-mcp-server"):
        if not (path / name).is_file():
            pytest.fail(f"{path / name} is missing: run `cargo xtask test`", pytrace=False)
    return path


@pytest.fixture(scope="session")
def version():
    return required_env("GATI_VERSION")


@pytest.fixture(scope="session")
def images(version):
    """The test images `cargo xtask test` built, by service."""
    prefix = required_env("GATI_TEST_IMAGE_PREFIX")
    refs = {name: f"{prefix}/gati-{name}:{version}" for name in ("backend", "dashboard", "mcp-server")}
    for ref in refs.values():
        subprocess.run(["docker", "image", "inspect", ref], check=True, capture_output=True)
    return refs


@pytest.fixture(scope="session")
def artifacts():
    path = ROOT / "target" / "test-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def backend(bin_dir, tmp_path):
    service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(tmp_path / "data")})
    service.data_dir = tmp_path / "data"
    yield service
    service.stop()


@pytest.fixture
def seeded_backend(backend):
    status, body = request("POST", backend.url + "/api/events", {"events": SAMPLE_EVENTS})
    assert status == 200, body
    return backend


@pytest.fixture(scope="session")
def dist(tmp_path_factory):
    """The sdist and wheel of sdk/, built once per session with `python -m build`."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", str(ROOT / "sdk"), "--outdir", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture
def registry(tmp_path):
    """A registry that behaves like Docker Hub, on loopback, for this test alone: token auth
    (a bot login pushing to the `gatidev` namespace), blob downloads redirected to another
    port, tag lists paged by 2."""
    registry = Registry(tmp_path / "registry", auth="token", redirect_blobs=True, page_size=2)
    yield registry
    registry.stop()


@pytest.fixture
def basic_registry(tmp_path):
    """Plain docker-registry with htpasswd (Basic) auth, blobs served directly, tag lists
    unpaged: the other auth scheme registries use."""
    registry = Registry(tmp_path / "basic-registry", auth="htpasswd", redirect_blobs=False, page_size=None)
    yield registry
    registry.stop()


@pytest.fixture
def index(tmp_path):
    """pypiserver with an upload password on a loopback port, for this test alone."""
    index = Index(tmp_path / "index")
    yield index
    index.stop()


@pytest.fixture(scope="session")
def guided_release(tmp_path_factory):
    """docs/RELEASING.md followed once per session: a finished release that the tests which only
    read it share (see GuidedRelease)."""
    release = GuidedRelease(tmp_path_factory.mktemp("guided-release"))
    yield release
    release.stop()


@pytest.fixture(autouse=True, scope="module")
def chromium_ends_with_its_module():
    """Playwright's sync API keeps an asyncio event loop in the main thread while its browser is
    up, and no other test could run asyncio meanwhile (the MCP client, the SDK's async
    decorators): the Chromium a module started stops with that module."""
    yield
    dashboard = sys.modules.get("test_dashboard_pages")
    if dashboard is not None:
        dashboard._stop_browser()
