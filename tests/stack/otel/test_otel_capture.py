"""The capture side of OpenTelemetry ingest: the real libraries of requirements.txt, driving the
openai client against the local stub, export one trace per run over OTLP/HTTP, plain and gzip,
with the spans gati maps (the backend's unit tests map the captured fixtures)."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import openai_stub  # noqa: E402
import otlp_sink  # noqa: E402
from otel_helpers import RUNS, run_agent, venv_python  # noqa: E402

# Decoded in the OpenTelemetry venv, which has the protobuf types.
DECODE = """
import json, sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
r = ExportTraceServiceRequest(); r.ParseFromString(sys.stdin.buffer.read())
spans = [{"name": s.name, "trace": s.trace_id.hex(), "span": s.span_id.hex(), "parent": s.parent_span_id.hex(),
          "keys": sorted(a.key for a in s.attributes),
          "service": [a.value.string_value for a in rs.resource.attributes if a.key == "service.name"]}
         for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
print(json.dumps(spans))
"""


@pytest.fixture(scope="module")
def services():
    stub, sink = openai_stub.serve(), otlp_sink.start()
    yield f"http://127.0.0.1:{stub.server_address[1]}/v1", sink
    stub.shutdown()
    sink.shutdown()


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name,library,env", RUNS, ids=[r[0] for r in RUNS])
def test_each_library_exports_the_run_over_otlp_http(services, name, library, env, compressed):
    base_url, sink = services
    before = len(sink.requests)
    trace_id = run_agent(library, base_url, sink.endpoint, env, gzip=compressed)
    (path, headers, body), = sink.requests[before:]
    assert path == "/v1/traces" and headers["content-type"] == "application/x-protobuf"
    assert headers.get("content-encoding") == ("gzip" if compressed else None)
    raw = gzip.decompress(body) if compressed else body
    decoded = subprocess.run([venv_python(), "-c", DECODE], input=raw, capture_output=True, check=True)
    spans = json.loads(decoded.stdout)
    assert {s["trace"] for s in spans} == {trace_id}
    assert all(s["service"] == ["weather-agent"] for s in spans)
    (root,) = [s for s in spans if not s["parent"]]
    assert all(s["parent"] == root["span"] for s in spans if s is not root)
    llm = [s for s in spans if s["parent"] and "get_weather" not in s["name"]]
    assert len(llm) == 2 and len(spans) == 4
    tokens = {"gen_ai.usage.input_tokens", "llm.token_count.prompt"}
    assert all(tokens & set(s["keys"]) for s in llm), llm
