"""The throwaway services (tests/sandbox.py) behave like the real targets: Docker Hub's token
auth, blob downloads redirected to another host, paged tag lists; PyPI's refusal of a file
name it already has. Against the real docker-registry, pypiserver and Docker daemon."""

import base64
import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import jwt
import pytest

from sandbox import SERVICE, Registry, granted_access

SANDBOX = Path(__file__).resolve().parent.parent / "sandbox.py"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def refuses(address):
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return False
    except OSError:
        return True


def docker(*args, config=None, input=None, check=True):
    env = {**os.environ, **({"DOCKER_CONFIG": str(config)} if config else {})}
    result = subprocess.run(["docker", *args], env=env, input=input, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result


@pytest.fixture
def tiny_image(tmp_path):
    """A FROM scratch image of one unique file (nothing is pulled from anywhere); removed after."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "f").write_text(f"sandbox test {uuid.uuid4()}\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    ref = f"gati-sandbox-test:{uuid.uuid4().hex[:12]}"
    subprocess.run(["docker", "build", "--quiet", "--tag", ref, str(context)], env={**os.environ, "DOCKER_BUILDKIT": "0"},
                   check=True, capture_output=True)
    image_id = docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    yield ref
    docker("image", "rm", "--force", image_id, check=False)


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def access_of(registry, scope, credentials):
    status, body = registry.token([scope], credentials)
    assert status == 200, body
    return claims(body["token"])["access"]


# --- token auth -------------------------------------------------------------------------------


def test_who_gets_which_actions():
    # Pure rules: pull on anything; push and delete under the account's namespaces only.
    mine = {"gatidev", "gatibot"}
    assert granted_access(["repository:gatidev/gati-backend:pull,push,delete"], mine) == [
        {"type": "repository", "name": "gatidev/gati-backend", "actions": ["pull", "push", "delete"]}]
    assert granted_access(["repository:someone/else:pull,push"], mine)[0]["actions"] == ["pull"]
    assert granted_access(["repository:gatidev/x:push"], set())[0]["actions"] == []
    assert granted_access(["registry:catalog:*"], mine) == []


def test_token_auth_rules(registry):
    user = (registry.user, registry.password)
    reader = registry.credentials("reader")
    assert registry.user != registry.namespace  # a bot account pushing to the organisation's namespace

    scope = f"repository:{registry.namespace}/gati-backend:pull,push,delete"
    assert access_of(registry, scope, user)[0]["actions"] == ["pull", "push", "delete"]
    assert access_of(registry, f"repository:{registry.user}/own:pull,push", user)[0]["actions"] == ["pull", "push"]
    assert access_of(registry, "repository:elsewhere/thing:pull,push", user)[0]["actions"] == ["pull"]
    assert access_of(registry, scope, reader)[0]["actions"] == ["pull"]
    assert access_of(registry, scope, None)[0]["actions"] == ["pull"]
    status, _ = registry.token([scope], (registry.user, "not-" + registry.password))
    assert status == 401
    status, _ = registry.token([scope], ("nobody", registry.password))
    assert status == 401

    # The registry challenges like Docker Hub and accepts our tokens.
    req = urllib.request.Request(f"http://{registry.address}/v2/")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("/v2/ answered without a token")
    except urllib.error.HTTPError as e:
        assert e.code == 401
        challenge = e.headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="{registry.realm}",service="{SERVICE}"'
    _, body = registry.token([], user)
    token = body["token"]
    assert jwt.get_unverified_header(token)["kid"]
    assert claims(token)["sub"] == registry.user and claims(token)["aud"] == SERVICE
    req = urllib.request.Request(f"http://{registry.address}/v2/", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as response:
        assert response.status == 200
    forged = jwt.encode(claims(token), "not-the-signing-key-" + "x" * 32, algorithm="HS256", headers={"kid": "x"})
    req = urllib.request.Request(f"http://{registry.address}/v2/", headers={"Authorization": f"Bearer {forged}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=5)
    assert refused.value.code == 401

    # What a pull-only token may not do: start an upload.
    path = f"/v2/{registry.namespace}/gati-backend/blobs/uploads/"
    assert registry.api(path, method="POST", credentials=reader)[0] == 401
    assert registry.api(path, method="POST", credentials=None)[0] == 401
    assert registry.api(path, method="POST")[0] == 202


@pytest.mark.docker
def test_docker_login(registry, tmp_path):
    config = tmp_path / "docker-config"
    out = docker("login", "--username", registry.user, "--password-stdin", registry.address, config=config,
                 input=registry.password)
    assert "Login Succeeded" in out.stdout
    wrong = docker("login", "--username", registry.user, "--password-stdin", registry.address, config=config,
                   input="not-" + registry.password, check=False)
    assert wrong.returncode != 0
    assert registry.password not in wrong.stdout + wrong.stderr


# --- push and pull through token auth, redirects and paging -----------------------------------


@pytest.mark.docker
def test_docker_push_then_pull_through_the_docker_hub_like_registry(registry, tiny_image, tmp_path):
    config = tmp_path / "docker-config"
    docker("login", "--username", registry.user, "--password-stdin", registry.address, config=config,
           input=registry.password)
    repo = f"{registry.namespace}/sandbox-test"
    ref = f"{registry.address}/{repo}"
    tags = ["1.0.0", "1.0", "latest", "edge", "sha-abc1234"]
    for tag in tags:
        docker("tag", tiny_image, f"{ref}:{tag}")
        docker("push", f"{ref}:{tag}", config=config)
    digest = registry.digest(repo, "1.0.0")
    assert digest and all(registry.digest(repo, tag) == digest for tag in tags)

    # Five tags, at most two a page: three pages linked by `Link: <…>; rel="next"`.
    assert registry.tag_pages(repo) == [["1.0", "1.0.0"], ["edge", "latest"], ["sha-abc1234"]]
    status, headers, body = registry.api(f"/v2/{repo}/tags/list")
    assert json.loads(body) == {"name": repo, "tags": ["1.0", "1.0.0"]}
    assert headers["Link"] == f'</v2/{repo}/tags/list?last=1.0.0&n=2>; rel="next"'
    assert registry.tag_pages(repo, n=100) == [["1.0", "1.0.0"], ["edge", "latest"], ["sha-abc1234"]]  # capped
    assert registry.tag_pages(repo, n=4) == [["1.0", "1.0.0"], ["edge", "latest"], ["sha-abc1234"]]
    assert len(registry.tag_pages(repo, n=1)) == 5
    assert registry.tags(repo) == set(tags)

    # A blob download answers 307 to the other host; following it gives the blob's bytes.
    status, _, manifest = registry.api(f"/v2/{repo}/manifests/1.0.0", accept=MANIFEST)
    assert status == 200
    layer = json.loads(manifest)["layers"][0]["digest"]
    status, headers, _ = registry.api(f"/v2/{repo}/blobs/{layer}")
    assert status == 307, status
    location = headers["Location"]
    assert location.startswith(registry.redirect + "/") and registry.redirect != f"http://{registry.address}"
    _, body = registry.token([f"repository:{repo}:pull"], None)
    curl = subprocess.run(["curl", "--silent", "--show-error", "--fail", "--location", "--header", "@-",
                           f"http://{registry.address}/v2/{repo}/blobs/{layer}"],
                          input=f"Authorization: Bearer {body['token']}\n".encode(), capture_output=True)
    assert curl.returncode == 0, curl.stderr
    assert "sha256:" + hashlib.sha256(curl.stdout).hexdigest() == layer

    # Nothing of the image left locally, then a pull (anonymous: logged out) brings it back.
    docker("image", "rm", "--force", tiny_image, *[f"{ref}:{tag}" for tag in tags])
    docker("logout", registry.address, config=config)
    blob_log_before = (registry.dir / "registry.log").read_text().count("GET /docker/registry/v2/blobs/")
    docker("pull", f"{ref}:1.0.0", config=config)
    pulled = docker("image", "inspect", "--format", "{{index .RepoDigests 0}}", f"{ref}:1.0.0").stdout.strip()
    assert pulled == f"{ref}@{digest}"
    assert (registry.dir / "registry.log").read_text().count("GET /docker/registry/v2/blobs/") > blob_log_before

    # Logged out, docker pulls anonymously but may not push.
    docker("tag", f"{ref}:1.0.0", f"{ref}:anonymous")
    refused = docker("push", f"{ref}:anonymous", config=config, check=False)
    assert refused.returncode != 0 and "anonymous" not in registry.tags(repo)
    docker("image", "rm", "--force", f"{ref}:1.0.0", f"{ref}:anonymous")


@pytest.mark.docker
def test_stop_refuses_and_start_brings_it_back(registry, tiny_image, tmp_path):
    config = tmp_path / "docker-config"
    docker("login", "--username", registry.user, "--password-stdin", registry.address, config=config,
           input=registry.password)
    ref = f"{registry.address}/{registry.namespace}/kept:1"
    docker("tag", tiny_image, ref)
    docker("push", ref, config=config)
    docker("image", "rm", ref)
    registry.stop()
    assert refuses(registry.address)
    assert registry.api("/v2/") == (0, {}, b"")
    registry.start()
    assert registry.tags(f"{registry.namespace}/kept") == {"1"}


def test_a_frozen_registry_does_not_answer(registry):
    os.kill(registry.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        req = urllib.request.Request(f"http://{registry.address}/v2/")
        with pytest.raises(OSError):
            urllib.request.urlopen(req, timeout=2)
        assert time.monotonic() - started >= 1.5
    finally:
        os.kill(registry.proc.pid, signal.SIGCONT)
    assert registry.api("/v2/")[0] == 200


# --- the htpasswd registry --------------------------------------------------------------------


@pytest.mark.docker
def test_the_htpasswd_registry_still_works(basic_registry, tiny_image, tmp_path):
    registry = basic_registry
    assert registry.api("/v2/")[0] == 200
    assert registry.api("/v2/", credentials=None)[0] == 401
    assert registry.api("/v2/", credentials=(registry.user, "wrong"))[0] == 401
    _, headers, _ = registry.api("/v2/", credentials=None)
    assert headers["WWW-Authenticate"].startswith("Basic ")
    config = tmp_path / "docker-config"
    docker("login", "--username", registry.user, "--password-stdin", registry.address, config=config,
           input=registry.password)
    repo = f"{registry.namespace}/basic"
    for tag in ("a", "b", "c"):
        docker("tag", tiny_image, f"{registry.address}/{repo}:{tag}")
        docker("push", f"{registry.address}/{repo}:{tag}", config=config)
    pages = registry.tag_pages(repo)  # one page, in no particular order: distribution 2.8 neither pages nor sorts
    assert len(pages) == 1 and set(pages[0]) == registry.tags(repo) == {"a", "b", "c"}
    status, _, manifest = registry.api(f"/v2/{repo}/manifests/a", accept=MANIFEST)
    layer = json.loads(manifest)["layers"][0]["digest"]
    assert registry.api(f"/v2/{repo}/blobs/{layer}")[0] == 200  # served directly, no redirect
    docker("image", "rm", "--force", tiny_image, *[f"{registry.address}/{repo}:{t}" for t in "abc"])
    docker("pull", f"{registry.address}/{repo}:b", config=config)
    docker("image", "rm", "--force", f"{registry.address}/{repo}:b")


# --- the index --------------------------------------------------------------------------------


def upload(index, filename, content, password=None):
    boundary = uuid.uuid4().hex
    fields = [(":action", "file_upload"), ("name", "gati"), ("version", "0.0.1"), ("protocol_version", "1")]
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    auth = base64.b64encode(f"{index.user}:{password or index.password}".encode()).decode()
    req = urllib.request.Request(index.upload_url, data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                          "Authorization": f"Basic {auth}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_the_index_refuses_a_file_name_twice_even_after_deletion(index):
    name = "gati-0.0.1.tar.gz"
    assert upload(index, name, b"first", password="wrong") in (401, 403)
    assert upload(index, name, b"first") == 200
    assert upload(index, name, b"other bytes") in (400, 409)
    assert (index.packages / name).read_bytes() == b"first"
    assert index.files() == [name]
    # Not even after deletion, as on PyPI (pypiserver alone would take it again).
    (index.packages / name).unlink()
    assert upload(index, name, b"again") in (400, 409)
    assert index.files() == []
    assert upload(index, "gati-0.0.2.tar.gz", b"another version") == 200


# --- the CLI that cargo xtask uses ------------------------------------------------------------


def test_serve_writes_its_addresses_privately_and_stops_everything(tmp_path):
    proc = subprocess.Popen([sys.executable, str(SANDBOX), "serve", "--dir", str(tmp_path), "--page-size", "3",
                             "--index"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        summary_path = tmp_path / "sandbox.json"
        deadline = time.monotonic() + 60
        while not summary_path.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.1)
        assert stat.S_IMODE(summary_path.stat().st_mode) == 0o600
        summary = json.loads(summary_path.read_text())
        reg, index = summary["registry"], summary["index"]
        assert {"address", "auth", "realm", "service", "redirect", "page_size", "namespace", "user", "password",
                "reader", "reader_password", "pid"} <= reg.keys()
        assert {"url", "upload_url", "simple_url", "user", "password", "pid"} <= index.keys()
        assert (reg["auth"], reg["page_size"], reg["namespace"], reg["user"]) == ("token", 3, "gatidev", "gatibot")
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith(f"registry {reg['address']}: token auth (realm {reg['realm']})")
        assert "tag lists paged by 3" in lines[0] and f"blobs redirected to {reg['redirect']}" in lines[0]
        assert lines[1].startswith(f"index {index['url']}")
        for line in lines:
            assert reg["password"] not in line and index["password"] not in line
        assert not refuses(reg["address"]) and not refuses(index["url"].removeprefix("http://"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        output = proc.stdout.read()
        assert reg["password"] not in output and index["password"] not in output
        for address in (reg["address"], reg["realm"].split("/")[2], reg["redirect"].split("/")[2],
                        index["url"].removeprefix("http://")):
            assert refuses(address), address
        for pid in (reg["pid"], index["pid"]):
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
