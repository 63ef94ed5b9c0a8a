"""Throwaway services on loopback that behave like the real targets: a registry like Docker Hub
and a package index like PyPI. One implementation, used by the tests (tests/gati_testing.py)
and by `cargo xtask rehearse`/`bench` (through `python tests/sandbox.py serve`).

Registry — Debian's docker-registry (distribution 2.8) behind what Docker Hub does differently:
  - token auth: a Bearer challenge naming a token realm; a token server of ours (below) signs
    JWTs. The login user may push (pull, push, delete) to its namespaces (the organisation's
    `namespace` and its own name); `reader` may only pull; the anonymous get pull-only tokens;
    a wrong password gets 401. (`auth="htpasswd"` keeps plain Basic auth instead.)
  - blob downloads answer 307 to another host (distribution's `redirect` storage middleware),
    a plain file server over the storage root, as Docker Hub sends them to its CDN;
  - tag lists paged: at most `page_size` tags a page, `n` capped, a `Link: <…>; rel="next"`.
    distribution 2.8 returns every tag at once and ignores `n` and `last`, so a small reverse
    proxy in front of it (the address clients see) pages them; everything else passes through.
Index — pypiserver with an upload password; like PyPI it refuses a file name it already has
(pypiserver's default: 409, or 400 for twine), and, unlike pypiserver, also one it had and
no longer has (a ledger of every name ever uploaded).

Passwords are random, reach htpasswd on stdin, and are never printed or put on a command line.

CLI: python tests/sandbox.py serve --dir D [--registry token|htpasswd|none] [--no-redirect]
     [--page-size N] [--namespace NS] [--index]
starts the services, writes D/sandbox.json (mode 0600, with the passwords), prints one line per
service (without them), and stops everything on SIGTERM or SIGINT.
"""

import argparse
import base64
import datetime
import hashlib
import http.client
import http.server
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

SERVICE = "gati-sandbox-registry"
ISSUER = "gati-sandbox-token-server"
TOKEN_SECONDS = 300
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade"}
TAGS_LIST = re.compile(r"^/v2/(.+)/tags/list$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_password():
    return secrets.token_hex(16)


def htpasswd_line(user, password, scheme):
    """One htpasswd line; the password goes to htpasswd on stdin. `scheme`: -B bcrypt (what
    docker-registry reads), -m APR1-MD5 (what pypiserver's passlib reads without extras)."""
    out = subprocess.run(["htpasswd", "-ni" + scheme.lstrip("-"), user], input=password, capture_output=True,
                         text=True, check=True).stdout
    return out.strip() + "\n"


def wait_until(what, ready, log, proc=None, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout}s; see {log}")


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def stop_process(proc, timeout=10):
    """SIGTERM (and SIGCONT, in case a test froze it), then wait; SIGKILL if it will not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        os.kill(proc.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Server(http.server.ThreadingHTTPServer):
    """A threaded HTTP server that, when stopped, also drops its open connections: a stopped
    service refuses and resets, it does not linger on keep-alive connections."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a client's sixth connection at once would wait for a
    # SYN retransmit (a second), which no real registry or index makes it do.
    request_queue_size = 128

    def __init__(self, port, handler):
        super().__init__(("127.0.0.1", port), handler)
        self.open_sockets = set()
        self.stopped = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def process_request(self, request, client_address):
        with self.lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def stop(self):
        self.stopped = True
        self.shutdown()
        self.server_close()
        with self.lock:
            for s in list(self.open_sockets):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        log = getattr(self.server, "log", None)
        if log is not None:
            log.write((f"{self.address_string()} - {format % args}\n").encode())
            log.flush()

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# --- Token auth -------------------------------------------------------------------------------


def libtrust_key_id(public_key):
    """The key ID distribution's token auth (libtrust) gives a public key: the first 240 bits of
    the SHA-256 of its DER SubjectPublicKeyInfo, base32, in groups of four joined by ':'."""
    from cryptography.hazmat.primitives import serialization
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def granted_access(scopes, push_namespaces, pull=True):
    """The `access` claim for the requested `scopes` ("repository:NAME:ACTIONS", as the registry's
    challenge and docker send them): pull on every repository, as every sandbox repository is
    public (unless not `pull`: a private registry's anonymous); push and delete only on
    repositories under `push_namespaces`. Other resource types (the catalog) get nothing, as on
    Docker Hub."""
    access = []
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) < 3:
            continue
        kind, name, actions = parts[0].split("(")[0], ":".join(parts[1:-1]), parts[-1].split(",")
        if kind != "repository":
            continue
        allowed = ({"pull"} if pull else set()) | ({"push", "delete", "*"} if name.split("/")[0] in push_namespaces else set())
        access.append({"type": "repository", "name": name, "actions": [a for a in actions if a in allowed]})
    return access


class TokenServer:
    """Docker Hub's auth service in miniature: GET (docker's Basic-authenticated request, also
    for `docker login` with `offline_token=true`) or POST (OAuth2 password grant) on /token
    returns a JWT signed with a key whose certificate is the registry's `rootcertbundle`.
    `accounts`: user -> (password, namespaces it may push to)."""

    def __init__(self, dir, accounts, service=SERVICE, issuer=ISSUER, port=None, signed_by="kid", private=False):
        import datetime as dt

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.accounts = accounts
        self.service, self.issuer, self.signed_by, self.private = service, issuer, signed_by, private
        self.port = port or free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
                     .sign(self.key, hashes.SHA256()))
        self.rootcertbundle = Path(dir) / "token-root.crt"
        self.rootcertbundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.kid = libtrust_key_id(self.key.public_key())
        self.log = open(Path(dir) / "token-server.log", "ab")
        self.server = None

    def start(self):
        if self.server is None:
            self.server = _Server(self.port, _TokenHandler)
            self.server.tokens, self.server.log = self, self.log

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def account(self, authorization=None, form=None):
        """(user or None for the anonymous, error or None)."""
        if form is not None:
            user, password = form.get("username", [None])[0], form.get("password", [None])[0]
            if user is None:
                return None, None
        elif authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "basic":
                return None, "unsupported authorization scheme"
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None, "malformed credentials"
        else:
            return None, None
        known = self.accounts.get(user)
        if known is None or not secrets.compare_digest(known[0].encode(), (password or "").encode()):
            return None, "incorrect username or password"
        return user, None

    def token(self, user, scopes):
        import jwt
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "iat": now, "nbf": now - 10,
                  "exp": now + TOKEN_SECONDS, "jti": secrets.token_hex(16),
                  "access": granted_access(scopes, self.accounts[user][1] if user else (),
                                           pull=bool(user) or not self.private)}
        if self.signed_by == "x5c":
            from cryptography.hazmat.primitives import serialization
            headers = {"x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        else:
            headers = {"kid": self.kid}
        return jwt.encode(claims, self.key, algorithm="ES256", headers=headers)


class _TokenHandler(_Quiet):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        self.answer(url.path, urllib.parse.parse_qs(url.query), None)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if form.get("grant_type", [""])[0] != "password":
            # We never issue refresh tokens, so no client holds one.
            return self.json(400, {"error": "unsupported_grant_type"})
        self.answer(url.path, form, form)

    def answer(self, path, query, form):
        tokens = self.server.tokens
        if path != "/token":
            return self.json(404, {"details": "not found"})
        user, error = tokens.account(self.headers.get("Authorization"), form)
        if error:
            return self.json(401, {"details": error}, [("WWW-Authenticate", 'Basic realm="gati-sandbox"')])
        scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
        token = tokens.token(user, scopes)
        issued = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        self.json(200, {"token": token, "access_token": token, "expires_in": TOKEN_SECONDS, "issued_at": issued})

    def json(self, status, value, headers=()):
        self.reply(status, json.dumps(value).encode(), [("Content-Type", "application/json"), *headers])


# --- Blob downloads from another host ---------------------------------------------------------


class _BlobHandler(http.server.SimpleHTTPRequestHandler):
    """The "CDN": a plain file server over the registry's storage, blobs only, no auth."""

    protocol_version = "HTTP/1.1"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(args[2].root), **kwargs)

    def send_head(self):
        if not urllib.parse.urlsplit(self.path).path.startswith("/docker/registry/v2/blobs/"):
            self.send_error(404)
            return None
        return super().send_head()

    def guess_type(self, path):
        return "application/octet-stream"

    def list_directory(self, path):
        self.send_error(404)
        return None

    def log_message(self, format, *args):
        self.server.log.write((f"{self.address_string()} - {format % args}\n").encode())
        self.server.log.flush()


# --- The client-facing proxy that pages tag lists ---------------------------------------------


class _ProxyHandler(_Quiet):
    """Passes every request through to docker-registry unchanged (streamed bodies, chunked
    uploads, Host kept so that its Location headers name this address); answers GET tag lists
    a page at a time, as Docker Hub does. When the registry is down, connections are dropped,
    not answered: a client sees what it would see from a dead registry. A request matching one
    of `holds` (see `Registry.hold`) waits until the registry stops, and is then dropped."""

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        match = TAGS_LIST.match(url.path)
        if self.command == "GET" and match:
            return self.page_tags(match.group(1), urllib.parse.parse_qs(url.query))
        for pattern, released in list(self.server.holds):
            if re.search(pattern, f"{self.command} {url.path}"):
                released.wait(timeout=120)
        if self.server.stopped:
            self.close_connection = True
            return
        try:
            response = self.forward(self.command, self.path, self.request_body())
        except OSError:
            self.close_connection = True
            return
        self.relay(response)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any

    def upstream(self):
        if getattr(self, "_upstream", None) is None:
            self._upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=600)
        return self._upstream

    def forward(self, method, path, body):
        conn = self.upstream()
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP or (name.lower() == "transfer-encoding" and body is not None):
                    conn.putheader(name, value)
            conn.endheaders()
            for piece in body or ():
                conn.send(piece)
            return conn.getresponse()
        except OSError:
            conn.close()
            self._upstream = None
            raise

    def request_body(self):
        """The request's body as raw pieces, passed through as they come (chunked stays chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.raw_chunks()
        length = int(self.headers.get("Content-Length") or 0)
        return self.exactly(length) if length else None

    def exactly(self, length):
        while length > 0:
            piece = self.rfile.read(min(length, 1 << 16))
            if not piece:
                raise ConnectionError("client closed mid-body")
            length -= len(piece)
            yield piece

    def raw_chunks(self):
        while True:
            line = self.rfile.readline(1 << 16)
            if not line:
                raise ConnectionError("client closed mid-body")
            yield line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = self.rfile.readline(1 << 16)
                    yield line
                    if line in (b"\r\n", b"\n", b""):
                        return
            yield from self.exactly(size + 2)  # data and its CRLF

    def relay(self, response):
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        try:
            if self.command == "HEAD" or response.status in (204, 304) or response.status < 200:
                response.read()
                self.end_headers()
            elif response.length is not None or response.getheader("Content-Length") is not None:
                self.end_headers()
                while piece := response.read(1 << 16):
                    self.wfile.write(piece)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while piece := response.read1(1 << 16):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True
        if response.will_close:
            self._upstream = None

    def page_tags(self, name, query):
        try:
            response = self.forward("GET", f"/v2/{name}/tags/list", None)
            body = response.read()
        except OSError:
            self.close_connection = True
            return
        if response.will_close:
            self._upstream = None
        if response.status != 200:
            own = HOP_BY_HOP | {"content-length", "date", "server"}  # reply() sets these
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in own]
            return self.reply(response.status, body, headers)
        page_size = self.server.page_size
        try:
            n = int(query.get("n", [page_size])[0])
        except ValueError:
            n = page_size
        n = page_size if n <= 0 else min(n, page_size)  # Docker Hub caps `n`
        last = query.get("last", [None])[0]
        tags = sorted(json.loads(body).get("tags") or [])
        rest = [t for t in tags if last is None or t > last]
        page = rest[:n]
        headers = [("Content-Type", "application/json"),
                   ("Docker-Distribution-Api-Version", "registry/2.0")]
        if len(rest) > n:
            next_query = urllib.parse.urlencode({"last": page[-1], "n": n})
            headers.append(("Link", f'</v2/{name}/tags/list?{next_query}>; rel="next"'))
        self.reply(200, json.dumps({"name": name, "tags": page}).encode(), headers)


# --- The registry -----------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_NO_REDIRECT = urllib.request.build_opener(_NoRedirect)


def http_request(url, method="GET", headers=None, timeout=10, follow=False, data=None):
    """(status, headers, body), headers case-insensitive (an email.message.Message); HTTP errors
    are returned; (0, {}, b"") if unreachable."""
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    opener = urllib.request.build_opener() if follow else _NO_REDIRECT
    try:
        with opener.open(req, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except OSError:
        return 0, {}, b""


def parse_challenge(header):
    """`Bearer realm="…",service="…",scope="…"` as (scheme, {param: value})."""
    scheme, _, rest = (header or "").partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


class Registry:
    """Debian's docker-registry on loopback, made to behave like Docker Hub (see the module's
    docstring). Started when created; `stop()` makes the address refuse connections, `start()`
    brings it back on the same ports with the same storage. `proc` is docker-registry itself
    (SIGSTOP freezes the registry)."""

    def __init__(self, dir, auth="token", redirect_blobs=True, page_size=None, user="gatibot", namespace="gatidev",
                 start=True, private=False):
        if auth not in ("token", "htpasswd"):
            raise ValueError(f"auth must be token or htpasswd, not {auth!r}")
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.storage = self.dir / "storage"
        self.storage.mkdir(exist_ok=True)
        self.auth, self.redirect_blobs, self.page_size = auth, redirect_blobs, page_size
        self.user, self.password, self.namespace = user, random_password(), namespace
        self.reader, self.reader_password = "reader", random_password()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Behind the paging proxy, docker-registry listens on a port of its own.
        self.registry_port = free_port() if page_size else self.port
        self.blob_port = free_port() if redirect_blobs else None
        self.redirect = f"http://127.0.0.1:{self.blob_port}" if redirect_blobs else None
        self.tokens = None
        self.realm = None
        if auth == "token":
            accounts = {user: (self.password, {namespace, user}), self.reader: (self.reader_password, set())}
            # private: the anonymous may read nothing, as on GHCR's private packages.
            self.tokens = TokenServer(self.dir, accounts, private=private)
            self.realm = self.tokens.realm
            auth_config = {"token": {"realm": self.realm, "service": SERVICE, "issuer": ISSUER,
                                     "rootcertbundle": str(self.tokens.rootcertbundle)}}
        else:
            (self.dir / "htpasswd").write_text(htpasswd_line(user, self.password, "-B")
                                               + htpasswd_line(self.reader, self.reader_password, "-B"))
            auth_config = {"htpasswd": {"realm": "gati-sandbox", "path": str(self.dir / "htpasswd")}}
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{self.registry_port}", "secret": random_password()},
            "auth": auth_config,
        }
        if redirect_blobs:
            config["middleware"] = {"storage": [{"name": "redirect", "options": {"baseurl": self.redirect}}]}
        # JSON is YAML: no hand-written YAML.
        (self.dir / "config.yml").write_text(json.dumps(config, indent=2) + "\n")
        self.proc = None
        self._proxy = self._blobs = None
        self._holds = []
        self._log = open(self.dir / "registry.log", "ab")
        if start:
            self.start()

    def start(self):
        if self.tokens:
            self.tokens.start()
        if self.redirect_blobs and self._blobs is None:
            self._blobs = _Server(self.blob_port, _BlobHandler)
            self._blobs.root, self._blobs.log = self.storage, self._log
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(self.dir / "config.yml")],
                                         stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                         preexec_fn=_die_with_parent if _ORPHANS_DIE else None)
            log = self.dir / "registry.log"
            wait_until("docker-registry", lambda: listening(self.registry_port), log, self.proc)
        if self.page_size and self._proxy is None:
            self._proxy = _Server(self.port, _ProxyHandler)
            self._proxy.upstream_port, self._proxy.page_size, self._proxy.log = self.registry_port, self.page_size, None
            self._proxy.holds = self._holds
        wait_until(f"the registry on {self.address}", lambda: self.api("/v2/")[0] == 200,
                   self.dir / "registry.log", self.proc)

    def stop(self):
        for server in (self._proxy, self._blobs):
            if server is not None:
                server.stop()
        self._proxy = self._blobs = None
        stop_process(self.proc)
        if self.tokens:
            self.tokens.stop()
        for _, released in self._holds:
            released.set()
        self._holds.clear()

    def hold(self, pattern):
        """Requests whose "METHOD path" matches the regular expression `pattern` wait at the
        registry's door until `stop()`, and are then dropped as a dead registry drops them: a push
        stopped part way through, at a point a test chooses rather than a race. Needs the proxy
        (`page_size`)."""
        if not self.page_size:
            raise ValueError("hold needs the proxy in front of docker-registry: give the Registry a page_size")
        self._holds.append((pattern, threading.Event()))

    def credentials(self, user=None):
        """(user, password) of the login user, or of `reader`; None for the anonymous."""
        if user is None or user == self.user:
            return self.user, self.password
        if user == self.reader:
            return self.reader, self.reader_password
        raise KeyError(user)

    def token(self, scopes=(), credentials=None):
        """(status, body) of a token request, as docker makes it: GET on the realm, Basic auth
        when `credentials` (user, password) are given."""
        query = urllib.parse.urlencode([("service", SERVICE), *[("scope", s) for s in scopes]])
        headers = {}
        if credentials:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        status, _, body = http_request(f"{self.realm}?{query}", headers=headers)
        return status, (json.loads(body) if status == 200 else body)

    def api(self, path, method="GET", accept=None, credentials=..., follow=False, data=None, content_type=None):
        """(status, headers, body) of one request authenticated as a client would: Bearer token
        from the realm the challenge names (token auth), or Basic (htpasswd). `credentials`:
        (user, password), default the login user's; None: anonymous. (0, {}, b"") if unreachable."""
        credentials = (self.user, self.password) if credentials is ... else credentials
        headers = {"Accept": accept} if accept else {}
        if content_type:
            headers["Content-Type"] = content_type
        url = f"http://{self.address}{path}"
        if self.auth == "htpasswd":
            if credentials:
                headers["Authorization"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
            return http_request(url, method, headers, follow=follow, data=data)
        status, answer, body = http_request(url, method, headers, follow=follow, data=data)
        scheme, params = parse_challenge(answer.get("WWW-Authenticate"))
        if status != 401 or scheme != "bearer":
            return status, answer, body
        query = [("service", params.get("service", ""))] + ([("scope", params["scope"])] if "scope" in params else [])
        token_headers = {}
        if credentials:
            token_headers["Authorization"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        t_status, t_headers, t_body = http_request(f"{params['realm']}?{urllib.parse.urlencode(query)}",
                                                   headers=token_headers)
        if t_status != 200:
            return t_status, t_headers, t_body
        headers["Authorization"] = "Bearer " + json.loads(t_body)["token"]
        return http_request(url, method, headers, follow=follow, data=data)

    def tag_pages(self, repo, n=None):
        """Each page of the tag list, following `Link: <…>; rel="next"`; None if unreadable."""
        path, pages = f"/v2/{repo}/tags/list" + (f"?n={n}" if n else ""), []
        while path:
            status, headers, body = self.api(path)
            if status != 200:
                return None
            pages.append(json.loads(body).get("tags") or [])
            link = re.match(r'\s*<([^>]+)>\s*;\s*rel="next"', headers.get("Link", ""))
            path = link.group(1) if link else None
        return pages

    def tags(self, repo):
        """Every tag of `repo` (all pages), as a set; empty when the repository is unknown."""
        return {tag for page in self.tag_pages(repo) or [] for tag in page}

    def digest(self, repo, tag):
        accept = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                            "application/vnd.docker.distribution.manifest.list.v2+json",
                            "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"])
        status, headers, _ = self.api(f"/v2/{repo}/manifests/{tag}", method="HEAD", accept=accept)
        return headers.get("Docker-Content-Digest") if status == 200 else None

    MANIFEST_TYPES = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                                "application/vnd.docker.distribution.manifest.list.v2+json",
                                "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"])

    def retag(self, repo, digest, tag):
        """Points `tag` at the manifest `digest` again (as the login user), e.g. after a test
        pushed other bytes over it."""
        status, headers, manifest = self.api(f"/v2/{repo}/manifests/{digest}", accept=self.MANIFEST_TYPES)
        assert status == 200, f"reading {repo}@{digest}: HTTP {status}"
        status, _, body = self.api(f"/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
                                   content_type=headers["Content-Type"])
        assert status in (200, 201), f"tagging {repo}:{tag}: HTTP {status} {body[:200]}"

    def env(self, docker_config):
        """What `cargo xtask images --push` needs to push here: the organisation's namespace,
        the bot account's login."""
        return {"GATI_REGISTRY": self.address, "GATI_NAMESPACE": self.namespace, "DOCKER_USERNAME": self.user,
                "DOCKER_PASSWORD": self.password, "DOCKER_CONFIG": str(docker_config)}

    def describe(self):
        """One line, no password."""
        if self.auth == "token":
            parts = [f"token auth (realm {self.realm})"]
        else:
            parts = ["htpasswd (Basic) auth"]
        parts.append(f"blobs redirected to {self.redirect}" if self.redirect else "blobs served directly")
        parts.append(f"tag lists paged by {self.page_size}" if self.page_size else "tag lists unpaged")
        return f"registry {self.address}: {', '.join(parts)}; login {self.user}, namespace {self.namespace}"

    def summary(self):
        return {"address": self.address, "auth": self.auth, "realm": self.realm,
                "service": SERVICE if self.auth == "token" else None,
                "redirect": self.redirect, "page_size": self.page_size, "namespace": self.namespace,
                "user": self.user, "password": self.password, "reader": self.reader,
                "reader_password": self.reader_password, "storage": str(self.storage),
                "pid": self.proc.pid if self.proc else None}


# --- The index --------------------------------------------------------------------------------


class Index:
    """pypiserver (from the tools' environment) on a loopback port; uploads need the password.
    Like PyPI, it refuses a file name it already has (pypiserver's default without
    `--overwrite`: 409, or 400 for twine), and one it once had: pypiserver would take a
    deleted name again, so it runs with a ledger of every name uploaded (`pypiserver_once`)."""

    def __init__(self, dir, user="uploader", start=True):
        self.dir = Path(dir)
        self.packages = self.dir / "packages"
        self.packages.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user, self.password = user, random_password()
        (self.dir / "htpasswd").write_text(htpasswd_line(user, self.password, "-m"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.ledger = self.dir / "uploaded-names"
        self.upload_url = self.url + "/"
        self.simple_url = self.url + "/simple/"
        self.proc = None
        self._log = open(self.dir / "index.log", "ab")
        if start:
            self.start()

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "pypiserver", str(self.ledger), "run", "--port", str(self.port), "--interface", "127.0.0.1",
             "--passwords", str(self.dir / "htpasswd"), "--authenticate", "update", str(self.packages)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=_die_with_parent if _ORPHANS_DIE else None)
        wait_until(f"pypiserver on {self.url}", lambda: http_request(self.simple_url, timeout=2)[0] == 200,
                   self.dir / "index.log", self.proc)

    def stop(self):
        stop_process(self.proc)

    def files(self):
        return sorted(p.name for p in self.packages.iterdir())

    def env(self):
        return {"GATI_INDEX": self.upload_url, "GATI_INDEX_SIMPLE": self.simple_url,
                "TWINE_USERNAME": self.user, "TWINE_PASSWORD": self.password}

    def describe(self):
        return f"index {self.url}: pypiserver, uploads as {self.user}, a file name is refused twice"

    def summary(self):
        return {"url": self.url, "upload_url": self.upload_url, "simple_url": self.simple_url, "user": self.user,
                "password": self.password, "packages": str(self.packages),
                "pid": self.proc.pid if self.proc else None}


def pypiserver_once(ledger, argv):
    """pypiserver's own `main(argv)`, refusing a file name uploaded once before even after it
    was deleted, as PyPI does: `ledger` lists every name ever uploaded."""
    from pypiserver import backend
    from pypiserver.__main__ import main

    ledger = Path(ledger)
    exists, add_package = backend.BackendProxy.exists, backend.BackendProxy.add_package

    def ever_uploaded(self, filename):
        return exists(self, filename) or (ledger.exists() and filename in ledger.read_text().split("\n"))

    def add_and_record(self, filename, stream):
        add_package(self, filename, stream)
        with ledger.open("a") as f:
            f.write(filename + "\n")

    backend.BackendProxy.exists, backend.BackendProxy.add_package = ever_uploaded, add_and_record
    main(argv)


# --- serve ------------------------------------------------------------------------------------

_ORPHANS_DIE = False


def _die_with_parent():
    """In `serve`: the services die with it, even if it is killed with SIGKILL."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def serve(args):
    global _ORPHANS_DIE
    _ORPHANS_DIE = True
    dir = Path(args.dir).resolve()
    dir.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    services = []
    try:
        summary = {}
        if args.registry != "none":
            registry = Registry(dir / "registry", auth=args.registry, redirect_blobs=not args.no_redirect,
                                page_size=args.page_size or None, user=args.user, namespace=args.namespace)
            services.append(registry)
            summary["registry"] = registry.summary()
        if args.index:
            index = Index(dir / "index")
            services.append(index)
            summary["index"] = index.summary()
        path = dir / "sandbox.json"
        temporary = dir / "sandbox.json.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(summary, f, indent=2)
        os.replace(temporary, path)  # complete when it appears
        for service in services:
            print(service.describe(), flush=True)
        print(f"details (with passwords): {path}", flush=True)
        while not stopping.wait(1):
            pass
    finally:
        for service in reversed(services):
            service.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sandbox.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="start the services until SIGTERM or SIGINT")
    run.add_argument("--dir", required=True, help="where the services keep their state; sandbox.json goes here")
    run.add_argument("--registry", choices=["token", "htpasswd", "none"], default="token")
    run.add_argument("--no-redirect", action="store_true", help="serve blobs directly, no 307 to another host")
    run.add_argument("--page-size", type=int, default=None, help="tags per page of a tag list (default: unpaged)")
    run.add_argument("--namespace", default="gatidev", help="the organisation's namespace the login may push to")
    run.add_argument("--user", default="gatibot", help="the login (a bot account, not the namespace)")
    run.add_argument("--index", action="store_true", help="also start the package index")
    once = commands.add_parser("pypiserver", help="pypiserver ARGS, refusing a name uploaded before (internal)")
    once.add_argument("ledger")
    once.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "pypiserver":
        pypiserver_once(args.ledger, args.args)
    else:
        serve(args)


if __name__ == "__main__":
    main()
