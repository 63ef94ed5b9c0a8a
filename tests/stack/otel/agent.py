"""A tiny agent, instrumented as a user of one OpenTelemetry library would instrument it.

    python agent.py LIBRARY OPENAI_BASE_URL OTLP_ENDPOINT [--gzip]
    python agent.py LIBRARY OPENAI_BASE_URL env


LIBRARY is `openai-v2` (opentelemetry-instrumentation-openai-v2), `openllmetry`
(opentelemetry-instrumentation-openai) or `openinference` (openinference-instrumentation-openai).
One run: a root span for the agent, a chat call that asks for the `get_weather` tool, the tool's
span, a chat call that answers; exported by opentelemetry-exporter-otlp-proto-http to
OTLP_ENDPOINT/v1/traces (gzip with --gzip); with `env`, the exporter is configured as a user
configures it, by OTEL_EXPORTER_OTLP_ENDPOINT (and OTEL_EXPORTER_OTLP_COMPRESSION) alone. The
root and tool spans follow the library's own
conventions, as that library's users write them; the chat spans are the instrumentation's.
`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental` switches openai-v2 to the current
GenAI names. Prints the trace id.
"""

import json
import os
import sys

AGENT = "weather-agent"
SESSION = "conversation-42"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def instrument(library: str, provider) -> dict:
    """Instruments the openai client; returns the attributes of the agent's and the tool's spans."""
    if library == "openai-v2":
        # Message content on the spans: only the current names put it there (the older ones
        # emit it as log events, which gati does not receive).
        if "gen_ai_latest_experimental" in os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", ""):
            os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return {
            "agent": ("invoke_agent " + AGENT, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": AGENT,
                                                "gen_ai.conversation.id": SESSION}),
            "tool": ("execute_tool get_weather", lambda args, result: {
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": "call_weather_1", "gen_ai.tool.call.arguments": args,
                "gen_ai.tool.call.result": result}),
        }
    if library == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return {
            "agent": (AGENT + ".workflow", {"traceloop.span.kind": "workflow", "traceloop.workflow.name": AGENT,
                                            "traceloop.entity.name": AGENT,
                                            "traceloop.association.properties.session_id": SESSION}),
            "tool": ("get_weather.tool", lambda args, result: {
                "traceloop.span.kind": "tool", "traceloop.entity.name": "get_weather",
                "traceloop.entity.input": args, "traceloop.entity.output": result}),
        }
    if library == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return {
            "agent": (AGENT, {"openinference.span.kind": "AGENT", "session.id": SESSION,
                              "input.value": "What is the weather in Paris?"}),
            "tool": ("get_weather", lambda args, result: {
                "openinference.span.kind": "TOOL", "tool.name": "get_weather", "input.value": args,
                "input.mime_type": "application/json", "output.value": result}),
        }
    raise SystemExit(f"unknown library {library!r}: openai-v2, openllmetry or openinference")


def main(library: str, base_url: str, endpoint: str, gzip: bool) -> str:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": AGENT}))
    if endpoint == "env":
        exporter = OTLPSpanExporter()
    else:
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces",
                                    compression=Compression.Gzip if gzip else Compression.NoCompression)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    spans = instrument(library, provider)
    tracer = provider.get_tracer("weather-agent", "1.0")

    import openai
    client = openai.OpenAI(base_url=base_url, api_key="not-a-key", max_retries=0)
    name, attributes = spans["agent"]
    with tracer.start_as_current_span(name, attributes=attributes) as root:
        messages = [{"role": "system", "content": "You are a weather agent."},
                    {"role": "user", "content": "What is the weather in Paris?"}]
        first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
        call = first.choices[0].message.tool_calls[0]
        result = json.dumps({"city": "Paris", "sky": "sunny", "celsius": 22})
        tool_name, tool_attributes = spans["tool"]
        with tracer.start_as_current_span(tool_name, attributes=tool_attributes(call.function.arguments, result)):
            pass
        messages += [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": result}]
        second = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
        if library == "openinference":
            root.set_attribute("output.value", second.choices[0].message.content)
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()  # flushes the batch
    return trace_id


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--gzip"]
    if len(args) != 3:
        raise SystemExit(__doc__)
    print(main(*args, gzip="--gzip" in sys.argv))
