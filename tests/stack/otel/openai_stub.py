"""A local OpenAI-compatible server for the OpenTelemetry tests: `POST /v1/chat/completions`.

A conversation without a tool result is answered with a call of the `get_weather` tool; one
that holds a tool result (a message of role `tool`) is answered with text. Both report usage,
so that each instrumentation has tokens to record. `python openai_stub.py PORT` serves on
127.0.0.1:PORT; `serve()` gives a running server to a test.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "gpt-4o-mini-2024-07-18"
# The tokens each answer reports: (prompt, completion).
TOOL_CALL_USAGE = (42, 17)
ANSWER_USAGE = (64, 9)


def completion(request: dict) -> dict:
    answered = any(m.get("role") == "tool" for m in request.get("messages", []))
    if answered:
        message = {"role": "assistant", "content": "It is sunny in Paris, 22 °C."}
        finish, (prompt, done) = "stop", ANSWER_USAGE
    else:
        message = {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_weather_1", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]}
        finish, (prompt, done) = "tool_calls", TOOL_CALL_USAGE
    return {
        "id": f"chatcmpl-{'answer' if answered else 'tool'}", "object": "chat.completion", "created": int(time.time()),
        "model": MODEL, "system_fingerprint": "fp_stub",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done},
    }


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return self.answer(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
        try:
            request = json.loads(body)
        except ValueError as e:
            return self.answer(400, {"error": {"message": f"body is not JSON: {e}", "type": "invalid_request_error"}})
        self.answer(200, completion(request))

    def answer(self, status: int, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve(port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
