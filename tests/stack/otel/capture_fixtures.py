"""Rewrites backend/src/otlp/fixtures/*.pb: one OTLP/protobuf body per library (and semconv mode),
as the real instrumentations export it, for the backend's unit tests. Run it with any Python 3
after an update of requirements.txt, and review the diff of the Rust tests it may break.

    python tests/stack/otel/capture_fixtures.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import openai_stub  # noqa: E402
import otlp_sink  # noqa: E402
from otel_helpers import FIXTURES, RUNS, run_agent  # noqa: E402

if __name__ == "__main__":
    stub, sink = openai_stub.serve(), otlp_sink.start()
    for name, library, env in RUNS:
        before = len(sink.requests)
        run_agent(library, f"http://127.0.0.1:{stub.server_address[1]}/v1", sink.endpoint, env)
        bodies = [body for _, _, body in sink.requests[before:]]
        assert len(bodies) == 1, f"{name}: {len(bodies)} requests; the fixture is one request's body"
        (FIXTURES / f"{name}.pb").write_bytes(bodies[0])
        print(f"{FIXTURES / name}.pb: {len(bodies[0])} bytes")
