"""gati 0.0.3's public API on top of ours: each name and signature, the decorators (plain and
async, errors recorded and re-raised unchanged), track_event, the LangChain handler with
langchain-core's fake chat models, LangGraph graphs, batch splitting, and never raising.

Most tests run in this process against a loopback server that records what the SDK posts; the
end-to-end ones run a script against the real backend binary."""

import asyncio
import http.server
import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
import traceback

import pytest

from gati_testing import ROOT, request

sys.path.insert(0, str(ROOT / "sdk"))
from gati import Observe, observe  # noqa: E402
from gati.core.context import get_current_run_id, set_run_name  # noqa: E402
from gati.core.event import AgentStartEvent, Event, LLMCallEvent, ToolCallEvent  # noqa: E402
from gati.decorators import track_agent, track_step, track_tool  # noqa: E402


class Recorder:
    """A loopback HTTP server that stores each POSTed batch; bodies above `limit` bytes get the
    backend's 413."""

    def __init__(self, limit=None):
        self.batches = []
        self.sizes = []
        self.headers = []
        self.limit = limit
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                recorder.headers.append(dict(self.headers))
                if recorder.limit is not None and len(body) > recorder.limit:
                    self._answer(413, {"error": "too large"})
                    return
                recorder.sizes.append(len(body))
                recorder.batches.append(json.loads(body)["events"])
                self._answer(200, {"stored": 1})

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def events(self):
        return [e for batch in self.batches for e in batch]

    def by_type(self, event_type):
        return [e for e in self.events if e["event_type"] == event_type]


@pytest.fixture
def recorder():
    server = Recorder()
    yield server
    observe.shutdown(1)
    server.server.shutdown()


def start(recorder, **options):
    observe.init(name="compat-agent", backend_url=recorder.url, flush_interval=0.05, **options)


# ---- names and signatures ---------------------------------------------------------------------

def test_init_takes_the_arguments_of_0_0_3():
    parameters = inspect.signature(observe.init).parameters
    assert list(parameters)[:2] == ["name", "auto_inject"]
    for option in ("backend_url", "batch_size", "flush_interval", "telemetry", "auto_inject"):
        assert option in parameters
    assert Observe() is Observe() and Observe().init is observe.init
    from gati.observe import observe as legacy
    assert legacy.init is observe.init and legacy.track_event is observe.track_event
    for name in ("track_event", "get_callbacks", "flush", "shutdown", "auto_instrument"):
        assert callable(getattr(observe, name))


def test_event_classes_keep_their_fields_in_order():
    fields = ["event_type", "run_id", "run_name", "timestamp", "agent_name", "event_id", "parent_event_id",
              "previous_event_id", "data"]
    assert list(inspect.signature(Event).parameters) == fields
    assert list(inspect.signature(LLMCallEvent).parameters) == fields + [
        "model", "prompt", "completion", "tokens_in", "tokens_out", "latency_ms", "cost", "system_prompt"]
    llm = LLMCallEvent(model="gpt-4o", tokens_in=3, tokens_out=4, cost=0.5)
    assert llm.event_type == "llm_call" and llm.data["tokens_in"] == 3 and llm.event_id and llm.timestamp
    assert json.loads(llm.to_json())["model"] == "gpt-4o"


def test_positional_name_and_environment_variables(recorder, monkeypatch, capsys):
    monkeypatch.setenv("GATI_BACKEND_URL", recorder.url)
    monkeypatch.setenv("GATI_BATCH_SIZE", "3")
    monkeypatch.setenv("GATI_FLUSH_INTERVAL", "0.05")
    observe.init("env-agent")
    client = observe._client
    assert (client.agent_name, client.batch_size, client.flush_interval) == ("env-agent", 3, 0.05)
    assert client.url == recorder.url + "/api/events"
    observe.event("custom", {"n": 1})
    assert observe.flush(5)
    assert recorder.events[0]["agent_name"] == "env-agent"
    assert recorder.headers[0]["Content-Type"] == "application/json"
    assert recorder.headers[0]["Host"] == recorder.url.removeprefix("http://")

    monkeypatch.setenv("GATI_BATCH_SIZE", "lots")
    observe.init(name="env-agent")
    assert observe._client.batch_size == 500
    assert "GATI_BATCH_SIZE='lots' is not a positive number" in capsys.readouterr().err


def test_telemetry_is_accepted_sends_nothing_and_warns_once(recorder, capsys):
    start(recorder, telemetry=True)
    start(recorder, telemetry=True)
    err = capsys.readouterr().err
    assert err.count("telemetry is not collected") == 1
    observe.event("x", {})
    assert observe.flush(5)
    assert {h["Host"] for h in recorder.headers} == {recorder.url.removeprefix("http://")}


def test_options_that_lost_their_meaning_warn_once_with_the_new_way(recorder, capsys):
    start(recorder, api_key="secret-key", environment="prod", colour="blue")
    start(recorder, api_key="secret-key", environment="prod", colour="blue")
    err = capsys.readouterr().err
    assert err.count("api_key / GATI_API_KEY is ignored") == 1
    assert err.count("environment= is ignored") == 1 and "observe.init(name='my_agent-staging')" in err
    assert err.count("ignores the unknown option colour=") == 1
    assert "secret-key" not in err
    observe.init(recorder.url)  # the draft 0.1 signature: a URL first
    assert observe._client.url == recorder.url + "/api/events"
    assert "first argument is the agent's name" in capsys.readouterr().err


# ---- decorators -------------------------------------------------------------------------------

def test_sync_decorators_record_a_run_with_its_tools_and_steps(recorder):
    start(recorder)

    @track_tool(name="web_search")
    def research(query, limit=3):
        return [f"{query} {i}" for i in range(limit)]

    @track_step
    def plan(query):
        return "plan for " + query

    @track_agent(name="ResearchAgent")
    def agent(query):
        plan(query)
        return research(query, limit=2)

    assert agent("gati") == ["gati 0", "gati 1"]
    assert agent.__name__ == "agent" and research.__name__ == "research"
    assert observe.flush(5)

    start_, step, tool, end = recorder.events
    assert [e["event_type"] for e in recorder.events] == ["agent_start", "step", "tool_call", "agent_end"]
    assert {e["run_id"] for e in recorder.events} == {start_["run_id"]}
    assert {e["agent_name"] for e in recorder.events} == {"ResearchAgent"}
    assert start_["data"]["input"] == {"query": "gati"} and start_["parent_event_id"] is None
    assert step["data"]["step_name"] == "plan" and step["parent_event_id"] == start_["event_id"]
    assert tool["data"]["tool_name"] == "web_search" and tool["data"]["input"] == {"query": "gati", "limit": 2}
    assert tool["data"]["output"] == ["gati 0", "gati 1"] and tool["data"]["status"] == "completed"
    assert tool["data"]["latency_ms"] >= 0 and tool["parent_event_id"] == start_["event_id"]
    assert end["data"]["output"] == ["gati 0", "gati 1"] and end["data"]["total_duration_ms"] >= 0


def test_async_decorators_record_the_same(recorder):
    start(recorder)

    @track_tool
    async def fetch(url):
        await asyncio.sleep(0.01)
        return len(url)

    @track_agent()
    async def crawler(urls):
        return sum(await asyncio.gather(*(fetch(u) for u in urls)))

    assert asyncio.run(crawler(["a", "bb"])) == 3
    assert inspect.iscoroutinefunction(crawler)
    assert observe.flush(5)
    types = sorted(e["event_type"] for e in recorder.events)
    assert types == ["agent_end", "agent_start", "tool_call", "tool_call"]
    start_ = recorder.by_type("agent_start")[0]
    assert start_["agent_name"] == "crawler"
    for tool in recorder.by_type("tool_call"):
        assert tool["run_id"] == start_["run_id"] and tool["parent_event_id"] == start_["event_id"]
        assert tool["data"]["duration_ms"] >= 10


@pytest.mark.parametrize("asynchronous", [False, True])
def test_errors_are_recorded_and_reraised_unchanged(recorder, asynchronous):
    start(recorder)
    failure = KeyError("no such order")

    if asynchronous:
        @track_tool(name="lookup")
        async def lookup(order):
            raise failure

        @track_agent(name="support")
        async def agent(order):
            return await lookup(order)

        call = lambda: asyncio.run(agent(42))  # noqa: E731
    else:
        @track_tool(name="lookup")
        def lookup(order):
            raise failure

        @track_agent(name="support")
        def agent(order):
            return lookup(order)

        call = lambda: agent(42)  # noqa: E731

    with pytest.raises(KeyError) as raised:
        call()
    assert raised.value is failure
    assert any(frame.name == "lookup" for frame in traceback.extract_tb(raised.tb))
    assert observe.flush(5)
    tool = recorder.by_type("tool_call")[0]
    assert tool["data"]["status"] == "error"
    assert tool["data"]["error"] == {"type": "KeyError", "message": "'no such order'"}
    end = recorder.by_type("agent_end")[0]
    assert end["data"]["status"] == "error" and end["data"]["error"]["type"] == "KeyError"


def test_our_run_and_step_decorate_async_functions(recorder):
    start(recorder)

    @observe.run
    async def handle():
        with observe.step("inner"):
            await asyncio.sleep(0)
        return "done"

    assert asyncio.run(handle()) == "done"
    assert observe.flush(5)
    assert [e["event_type"] for e in recorder.events] == ["run_start", "step_start", "step_end", "run_end"]
    assert recorder.events[0]["run_name"] == "test_our_run_and_step_decorate_async_functions.<locals>.handle"


# ---- track_event and the run context ------------------------------------------------------------

def test_track_event_sends_every_given_field_in_the_backends_shape(recorder):
    start(recorder)
    observe.track_event(Event(event_type="custom_metric", data={"metric_name": "cache_hit_rate", "value": 0.85}))
    observe.track_event(LLMCallEvent(model="gpt-4o", tokens_in=100, tokens_out=20, cost=0.00045,
                                     data={"note": "given data and fields"}))
    observe.track_event(ToolCallEvent(tool_name="search", run_id="my-run", run_name="nightly", timestamp="soon"))
    observe.track_event({"event_type": "from_dict", "data": {"x": 1}, "extra": "kept"})
    observe.track_event("not an event")  # ignored, never raised
    assert observe.flush(5)
    metric, llm, tool, from_dict = recorder.events
    session = metric["run_id"]
    assert metric["data"] == {"metric_name": "cache_hit_rate", "value": 0.85}
    assert metric["agent_name"] == "compat-agent" and llm["run_id"] == session
    assert llm["data"] == {"note": "given data and fields", "model": "gpt-4o", "tokens_in": 100, "tokens_out": 20,
                           "cost": 0.00045}
    assert (tool["run_id"], tool["run_name"]) == ("my-run", "nightly")
    assert tool["timestamp"].endswith("+00:00")  # an unreadable timestamp becomes now
    assert from_dict["data"] == {"x": 1, "extra": "kept"}
    for event in recorder.events:
        assert set(event) >= {"event_id", "run_id", "agent_name", "event_type", "timestamp", "parent_event_id",
                              "data"}


def test_run_context_names_and_nests_later_events(recorder):
    start(recorder)
    with observe.run("nightly-eval"):
        run_id = get_current_run_id()
        set_run_name("nightly #7")
        observe.track_event(AgentStartEvent(input={"q": 1}))
    assert observe.flush(5)
    start_, agent, end = recorder.events
    assert start_["run_name"] == "nightly-eval"
    assert agent["run_id"] == run_id and agent["run_name"] == "nightly #7"
    assert agent["parent_event_id"] == start_["event_id"] and agent["data"]["input"] == {"q": 1}
    assert end["run_name"] == "nightly #7"


# ---- batches ------------------------------------------------------------------------------------

def test_batches_are_split_to_fit_and_an_oversized_event_is_counted(recorder, capsys):
    start(recorder, batch_size=1000)
    observe._client.max_batch_bytes = 20_000
    for i in range(30):
        observe.event("chunk", {"i": i, "text": "x" * 2000})
    observe.event("huge", {"text": "y" * 30_000})
    observe.event("after", {})
    assert observe.flush(10)
    assert len(recorder.batches) >= 3 and max(recorder.sizes) <= 20_000
    assert [e["data"].get("i") for e in recorder.by_type("chunk")] == list(range(30))
    assert recorder.by_type("huge") == [] and len(recorder.by_type("after")) == 1
    assert observe.dropped() == 1
    observe.shutdown(1)
    assert "dropped 1 events" in capsys.readouterr().err


def test_a_backend_with_a_smaller_limit_gets_halves(recorder):
    recorder.limit = 10_000
    start(recorder, batch_size=1000)
    for i in range(20):
        observe.event("chunk", {"i": i, "text": "x" * 1500})
    observe.event("too-big-for-it", {"text": "z" * 12_000})
    assert observe.flush(10)
    assert sorted(e["data"]["i"] for e in recorder.by_type("chunk")) == list(range(20))
    assert max(recorder.sizes) <= 10_000
    assert observe.dropped() == 1


# ---- never raises -------------------------------------------------------------------------------

def test_nothing_raises_without_init_or_with_a_broken_client(recorder):
    observe.shutdown()

    @track_agent
    def agent():
        observe.track_event(Event(event_type="x"))
        return "ok"

    assert agent() == "ok" and observe.flush() is True and observe.dropped() == 0
    start(recorder)

    def broken(event):
        raise RuntimeError("buffer exploded")

    observe._client.add = broken
    assert agent() == "ok"
    observe.track_event(LLMCallEvent(data={"unserializable": object()}))
    with observe.run("r"):
        observe.event("e", {"value": {1, 2}})


# ---- LangChain and LangGraph --------------------------------------------------------------------

def fake_chat_model(*replies, tokens=(12, 7)):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    usage = {"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)}
    return GenericFakeChatModel(messages=iter([AIMessage(content=r, usage_metadata=usage,
                                                         response_metadata={"model_name": "gpt-4o-mini"})
                                               for r in replies]))


def test_langchain_chain_is_recorded_without_callbacks(recorder):
    from langchain_core.prompts import ChatPromptTemplate
    start(recorder)
    chain = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "About {topic}")]) \
        | fake_chat_model("short answer", "again", tokens=(1200, 700))

    @track_agent(name="ChainAgent")
    def agent(topic):
        return chain.invoke({"topic": topic}).content

    assert agent("gati") == "short answer"
    chain.invoke({"topic": "outside"})  # outside any run: the session's run
    assert observe.flush(5)
    inside, outside = recorder.by_type("llm_call")
    run = recorder.by_type("agent_start")[0]
    assert inside["run_id"] == run["run_id"] and inside["parent_event_id"] == run["event_id"]
    assert inside["agent_name"] == "ChainAgent" and outside["agent_name"] == "compat-agent"
    data = inside["data"]
    assert (data["model"], data["tokens_in"], data["tokens_out"], data["tokens"]) == ("gpt-4o-mini", 1200, 700, 1900)
    assert data["cost"] == pytest.approx(1200 * 0.15e-6 + 700 * 0.6e-6)
    assert data["system_prompt"] == "Be brief." and data["prompt"] == "Human: About gati"
    assert data["completion"] == "short answer" and data["status"] == "completed"
    assert outside["run_id"] not in {run["run_id"]}


def test_get_callbacks_records_once_and_tools_errors_are_recorded(recorder):
    from langchain_core.tools import tool
    start(recorder, auto_inject=False)
    (handler,) = observe.get_callbacks()
    assert observe.get_callbacks() == [handler]

    @tool
    def divide(a: int, b: int) -> float:
        """Divides a by b."""
        return a / b

    llm = fake_chat_model("hi", "again")
    llm.invoke("hello", config={"callbacks": observe.get_callbacks()})
    assert divide.invoke({"a": 6, "b": 3}, config={"callbacks": [handler]}) == 2
    with pytest.raises(ZeroDivisionError):
        divide.invoke({"a": 1, "b": 0}, config={"callbacks": [handler]})
    fake_chat_model("unrecorded").invoke("no callbacks")  # auto_inject=False
    observe.auto_instrument(["langchain"])
    llm.invoke("x", config={"callbacks": observe.get_callbacks()})  # hook and explicit: one event
    assert observe.flush(5)
    assert len(recorder.by_type("llm_call")) == 2
    ok, failed = recorder.by_type("tool_call")
    assert ok["data"]["tool_name"] == "divide" and ok["data"]["input"] == {"a": 6, "b": 3}
    assert ok["data"]["output"] == 2.0
    assert failed["data"]["status"] == "error"
    assert failed["data"]["error"]["type"] == "ZeroDivisionError"


def test_langgraph_graph_is_a_run_with_its_nodes(recorder):
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph
    start(recorder)
    llm = fake_chat_model("draft", tokens=(10, 5))

    class State(TypedDict):
        question: str
        answer: str

    def write(state):
        return {"answer": llm.invoke(state["question"]).content}

    def review(state):
        if state["question"] == "fail":
            raise ValueError("review failed")
        return {"answer": state["answer"] + " (reviewed)"}

    graph = StateGraph(State)
    graph.add_node("write", write)
    graph.add_node("review", review)
    graph.add_edge(START, "write")
    graph.add_edge("write", "review")
    graph.add_edge("review", END)
    app = graph.compile()

    assert app.invoke({"question": "why?"})["answer"] == "draft (reviewed)"
    llm = fake_chat_model("draft 2")
    with pytest.raises(ValueError, match="review failed"):
        app.invoke({"question": "fail"})
    assert observe.flush(5)

    starts = recorder.by_type("agent_start")
    assert len(starts) == 2 and starts[0]["run_id"] != starts[1]["run_id"]
    first = [e for e in recorder.events if e["run_id"] == starts[0]["run_id"]]
    assert [e["event_type"] for e in first] == ["agent_start", "llm_call", "node_execution", "node_execution",
                                               "agent_end"]
    write_node, review_node = [e for e in first if e["event_type"] == "node_execution"]
    assert (write_node["data"]["node_name"], review_node["data"]["node_name"]) == ("write", "review")
    assert write_node["parent_event_id"] == starts[0]["event_id"]
    assert first[1]["parent_event_id"] == write_node["event_id"] and first[1]["data"]["tokens"] == 15
    assert review_node["data"]["state_after"] == {"answer": "draft (reviewed)"}
    assert first[-1]["data"]["status"] == "completed"
    second = [e for e in recorder.events if e["run_id"] == starts[1]["run_id"]]
    failed_node = [e for e in second if e["event_type"] == "node_execution"][-1]
    assert failed_node["data"]["status"] == "error" and failed_node["data"]["error"]["message"] == "review failed"
    assert second[-1]["event_type"] == "agent_end" and second[-1]["data"]["status"] == "error"


# ---- end to end, as processes -------------------------------------------------------------------

def script(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "sdk"), **env})


def test_without_langchain_installed_everything_else_works(recorder):
    result = script("""
        import sys
        sys.modules["langchain_core"] = None  # as if the extra were not installed
        from gati import observe
        from gati.decorators import track_tool
        observe.init(name="plain")
        assert observe.get_callbacks() == []
        assert observe.auto_instrument() == {"langchain": False, "langgraph": False}
        track_tool(lambda: 1)()
        assert observe.flush(5)
        print("ok")
    """, GATI_BACKEND_URL=recorder.url)
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
    assert recorder.by_type("tool_call")[0]["agent_name"] == "plain"


def test_the_0_0_3_readme_against_the_backend(backend):
    result = script("""
        from gati import observe
        from gati.core.event import Event
        from gati.decorators import track_agent, track_tool

        observe.init(name="my_agent", batch_size=20, flush_interval=2.0, telemetry=False)

        @track_tool(name="web_search")
        def research(query):
            return ["result"]

        @track_tool(name="broken")
        def broken(query):
            raise RuntimeError("tool exploded")

        @track_agent(name="ResearchAgent")
        def my_agent(query):
            research(query)
            try:
                broken(query)
            except RuntimeError:
                pass
            return "answer"

        assert my_agent("gati") == "answer"
        observe.track_event(Event(event_type="custom_metric", data={"metric_name": "cache_hit_rate", "value": 0.85}))
        observe.flush()
    """, GATI_BACKEND_URL=backend.url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (run,) = request("GET", backend.url + "/api/agents/ResearchAgent/runs")[1]  # 0.0.3's bare array
    assert run["run_name"] == "run 1"  # numbered by the backend, as 0.0.3's runs were
    events = request("GET", backend.url + f"/api/runs/{run['run_id']}")[1]["events"]
    assert [e["event_type"] for e in events] == ["agent_start", "tool_call", "tool_call", "agent_end"]
    assert events[2]["data"]["error"] == {"type": "RuntimeError", "message": "tool exploded"}
    (metric,) = request("GET", backend.url + "/api/events?type=custom_metric")[1]["events"]
    assert metric["agent_name"] == "my_agent" and metric["data"]["value"] == 0.85


def test_batches_above_16_mib_reach_the_backend_and_a_larger_event_is_counted(backend):
    result = script("""
        from gati import observe
        observe.init(name="bulk", timeout=30)
        for i in range(7):
            observe.event("blob", {"i": i, "text": "x" * (3 * 1024 * 1024)})
        observe.event("oversized", {"text": "y" * (17 * 1024 * 1024)})
        assert observe.flush(60)
        print(observe.dropped())
    """, GATI_BACKEND_URL=backend.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"
    assert "dropped 1 events" in result.stderr and "16777216 bytes per batch" in result.stderr
    events = request("GET", backend.url + "/api/events?agent=bulk&limit=500")[1]
    assert sorted(e["data"]["i"] for e in events["events"]) == list(range(7))
