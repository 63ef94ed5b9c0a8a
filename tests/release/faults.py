"""A network that fails: loopback HTTP proxies in front of the sandbox's services (the registry,
its token realm, its blob host, the index) that fail about one request in five, from one seeded
random sequence shared by all of them, in four ways:

- `503`: answered 503 Service Unavailable, never forwarded;
- `429`: answered 429 Too Many Requests with `Retry-After: 1`, never forwarded;
- `dropped`: the connection closed before the request reaches the server;
- `lost`: forwarded, the server does the work, and its answer is lost (the connection closed).
  The first request that completes a blob upload and the first package upload are always lost,
  so that each release through these proxies meets both.

The Docker daemon (`gati start`'s pull) asks for manifests without retrying any, and a pull is
a dozen requests: at one in five, it would be a lottery. Its requests (User-Agent `docker/…`)
meet faults only at first: the first three each get one (503, dropped, 429), enough for a pull
to fail and be retried, then none.

Each proxy rewrites the addresses of the others' servers in the answers' headers (the registry's
`WWW-Authenticate` realm, the blob redirects' `Location`) to their proxies, so that a client
meets the faults wherever it goes. What reached each server and what it answered is kept in
`Faults.forwarded`, to prove afterwards that nothing was done twice."""

import random
import re
import threading
import urllib.parse

from sandbox import HOP_BY_HOP, _ProxyHandler, _Server, free_port

KINDS = ("503", "429", "dropped", "lost")
# The PUT that completes a blob upload (`…/blobs/uploads/<id>?…digest=`), and a package upload.
BLOB_UPLOAD_DONE = re.compile(r"^PUT /v2/.+/blobs/uploads/[^?]+\?(.*&)?digest=")
PACKAGE_UPLOAD = re.compile(r"^POST /")


class Faults:
    """The one seeded sequence of faults, shared by every proxy, and what each injected."""

    def __init__(self, seed=27, rate=0.2):
        self.random, self.rate = random.Random(seed), rate
        self.lock = threading.Lock()
        self.injected = {kind: 0 for kind in KINDS}
        self.lost_on = []
        # (service, "METHOD path", status) of every request that reached a server.
        self.forwarded = []
        self.forced = {"blob upload": BLOB_UPLOAD_DONE, "package upload": PACKAGE_UPLOAD}
        self.proxies = []
        self.enabled = True
        self.daemon_faults = ["503", "dropped", "429"]
        self.daemon_injected = 0

    def decide(self, service, request, user_agent=""):
        """The fault for one request, or None."""
        with self.lock:
            if not self.enabled:
                return None
            if user_agent.startswith("docker/"):
                if not self.daemon_faults:
                    return None
                self.daemon_injected += 1
                return self.count(self.daemon_faults.pop(0), request)
            for what, pattern in list(self.forced.items()):
                if (what == "package upload") == (service == "index") and pattern.search(request):
                    del self.forced[what]
                    return self.count("lost", request)
            if self.random.random() >= self.rate:
                return None
            return self.count(self.random.choice(KINDS), request)

    def count(self, kind, request):
        self.injected[kind] += 1
        if kind == "lost":
            self.lost_on.append(request)
        return kind

    def record(self, service, request, status):
        with self.lock:
            self.forwarded.append((service, request, status))

    def proxy(self, service, upstream_port):
        """A proxy of `service` (listening on a port of its own) in front of `upstream_port`."""
        proxy = FaultyProxy(self, service, upstream_port)
        self.proxies.append(proxy)
        return proxy

    def rewrite(self, value):
        """`value` with every proxied server's address replaced by its proxy's."""
        for proxy in self.proxies:
            value = value.replace(f"127.0.0.1:{proxy.upstream_port}", f"127.0.0.1:{proxy.port}")
        return value

    def stop(self):
        for proxy in self.proxies:
            proxy.stop()


class FaultyProxy:
    def __init__(self, faults, service, upstream_port):
        self.faults, self.service, self.upstream_port = faults, service, upstream_port
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.server = _Server(self.port, _FaultyHandler)
        self.server.proxy, self.server.upstream_port, self.server.log = self, upstream_port, None

    def stop(self):
        self.server.stop()


class _FaultyHandler(_ProxyHandler):
    def handle_any(self):
        proxy = self.server.proxy
        request = f"{self.command} {self.path}"
        fault = proxy.faults.decide(proxy.service, request, self.headers.get("User-Agent", ""))
        try:
            body = b"".join(self.request_body() or ())
        except (OSError, ValueError):
            self.close_connection = True
            return
        if fault in ("503", "429"):
            headers = [("Retry-After", "1")] if fault == "429" else []
            return self.reply(int(fault), b'{"errors": [{"code": "INJECTED", "message": "an injected fault"}]}',
                              [("Content-Type", "application/json"), *headers])
        if fault == "dropped":
            self.close_connection = True
            return
        try:
            response = self.forward(self.command, self.path, [body] if body else None)
            proxy.faults.record(proxy.service, request, response.status)
        except OSError:
            self.close_connection = True
            return
        if fault == "lost":
            response.read()
            self._upstream = None
            self.close_connection = True
            return
        self.relay(response)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any

    def forward(self, method, path, body):
        # A body read whole is sent with its length, however it came (chunked or not).
        if body is not None:
            del self.headers["Transfer-Encoding"]
            del self.headers["Content-Length"]
            self.headers["Content-Length"] = str(sum(len(piece) for piece in body))
        return super().forward(method, path, body)

    def send_header(self, keyword, value):
        # Every answer names the proxies, never the servers behind them.
        if keyword.lower() in ("location", "www-authenticate", "link"):
            value = self.server.proxy.faults.rewrite(value)
        super().send_header(keyword, value)


def proxied_sandbox(faults, registry, index):
    """Proxies in front of the registry (and its token realm and blob host, when it has them)
    and the index; the environment a release needs to go through them."""
    registry_proxy = faults.proxy("registry", registry.port)
    if registry.realm:
        faults.proxy("realm", urllib.parse.urlsplit(registry.realm).port)
    if registry.blob_port:
        faults.proxy("blobs", registry.blob_port)
    index_proxy = faults.proxy("index", index.port)
    env = {"GATI_REGISTRY": registry_proxy.address, "GATI_INDEX": index_proxy.url + "/",
           "GATI_INDEX_SIMPLE": index_proxy.url + "/simple/"}
    return registry_proxy, index_proxy, env


__all__ = ["Faults", "FaultyProxy", "HOP_BY_HOP", "KINDS", "proxied_sandbox"]
