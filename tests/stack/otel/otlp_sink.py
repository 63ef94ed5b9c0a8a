"""A small OTLP/HTTP sink: stores every body posted to `/v1/traces` as it came (gzip and all),
with its headers, and answers an empty ExportTraceServiceResponse. It proves what each
instrumentation sends before the backend has a receiver (and captures the test fixtures)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests = []  # (path, headers, raw body)
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        # An empty protobuf message is zero bytes: a full success.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def start() -> Sink:
    sink = Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    return sink
