"""Users of gati 0.0.3 upgrade to ours and their code keeps working (GitHub issue 13).

The REAL gati 0.0.3 from the package index runs a script written as its README says (init with
a name, decorators, a LangChain chain with a fake chat model, a failing tool, a failing agent)
against our backend binary; then the SAME script runs unchanged with our SDK first on the path.
Both runs' run names, tokens, cost and errors must be readable through our backend's API, our
MCP server's tools (streamable HTTP, the `mcp` client) and our dashboard (headless Chromium).

The wheels are downloaded once into target/compat/wheels and the two virtual environments are
kept in target/compat/, so reruns work offline and take seconds. `recorded_runs(url)` returns
what a backend holds; the MCP and dashboard checks read the same runs, one server of each per SDK.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from gati_testing import ROOT, Service, request
from test_dashboard_pages import chromium, dashboard_for, render  # noqa: F401 (chromium: a fixture)

COMPAT_DIR = ROOT / "target" / "compat"
WHEELS = COMPAT_DIR / "wheels"
# What users of 0.0.3 have: the package, and the LangChain and LangGraph it instruments.
FRAMEWORKS = ["langchain-core==1.8.3", "langgraph==1.2.24"]
UPSTREAM = "gati==0.0.3"

# Written as gati 0.0.3's README says; not one line may depend on which SDK runs it.
README_SCRIPT = '''
from gati import observe
from gati.decorators import track_agent, track_tool
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate

observe.init(name="my_agent")

USAGE = {"prompt_tokens": 1200, "completion_tokens": 700, "total_tokens": 1900}


class FakeOpenAI(GenericFakeChatModel):
    """A fake chat model that reports its model and usage the way ChatOpenAI does."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        result = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        result.llm_output = {"token_usage": USAGE, "model_name": "gpt-4o"}
        return result


llm = FakeOpenAI(messages=iter([AIMessage(
    content="Why did the agent cross the road?",
    usage_metadata={"input_tokens": 1200, "output_tokens": 700, "total_tokens": 1900},
    response_metadata={"model_name": "gpt-4o", "token_usage": USAGE})]))
prompt = ChatPromptTemplate.from_template("Tell me a joke about {topic}")
chain = prompt | llm


@track_tool(name="web_search")
def research(query: str):
    return [f"result about {query}"]


@track_tool(name="flaky_tool")
def flaky(query: str):
    raise RuntimeError("tool exploded")


@track_agent(name="ResearchAgent")
def my_agent(query: str):
    research(query)
    answer = chain.invoke({"topic": query})
    try:
        flaky(query)
    except RuntimeError:
        pass
    return answer.content


@track_agent(name="FailingAgent")
def failing_agent(query: str):
    raise ValueError("agent gave up")


print(my_agent("programming"))
try:
    failing_agent("anything")
except ValueError as e:
    print("caught:", e)
observe.flush()
'''

SDKS = ["gati 0.0.3", "ours"]
JOKE = "Why did the agent cross the road?"
COST = 1200 * 2.5e-6 + 700 * 10e-6  # gpt-4o's price per token, in and out


# ---- environments --------------------------------------------------------------------------------

def pip(python, *args):
    result = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, f"pip {' '.join(args)}:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"


def wheels():
    """The wheels of gati 0.0.3 and the frameworks with their dependencies, fetched once."""
    stamp = WHEELS / "complete.json"
    wanted = [UPSTREAM, *FRAMEWORKS]
    if not stamp.is_file() or json.loads(stamp.read_text()) != wanted:
        WHEELS.mkdir(parents=True, exist_ok=True)
        pip(sys.executable, "download", "--only-binary", ":all:", "--dest", str(WHEELS), *wanted)
        stamp.write_text(json.dumps(wanted))
    return WHEELS


def environment(name, requirements):
    """A virtual environment with exactly `requirements`, installed offline from `wheels()`."""
    home = COMPAT_DIR / name
    stamp = home / "requirements.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == requirements:
        return home / "bin" / "python"
    shutil.rmtree(home, ignore_errors=True)
    venv.create(home, with_pip=True)
    pip(home / "bin" / "python", "install", "--quiet", "--no-index", "--find-links", str(wheels()), *requirements)
    stamp.write_text(json.dumps(requirements))
    return home / "bin" / "python"


@pytest.fixture(scope="session")
def pythons():
    """{sdk: (python, extra environment)}: 0.0.3 installed, or our sdk/ first on the path."""
    return {
        "gati 0.0.3": (environment("venv-gati-0.0.3", [UPSTREAM, *FRAMEWORKS]), {}),
        "ours": (environment("venv-frameworks", FRAMEWORKS), {"PYTHONPATH": str(ROOT / "sdk")}),
    }


def run_script(python, extra_env, backend_url, tmp_path, code=README_SCRIPT):
    path = tmp_path / "agent.py"
    path.write_text(code)
    env = {**os.environ, **extra_env, "GATI_BACKEND_URL": backend_url, "HOME": str(tmp_path),
           # 0.0.3 sends anonymous telemetry off the machine unless told not to; tests never reach out.
           "GATI_TELEMETRY": "false"}
    if "PYTHONPATH" not in extra_env:
        env.pop("PYTHONPATH", None)  # 0.0.3 alone, never sdk/
    return subprocess.run([str(python), str(path)], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)


@pytest.fixture(scope="session")
def recorded(pythons, bin_dir, tmp_path_factory):
    """{sdk: (backend url, script output)}: the README script run once by each SDK, each against a
    backend of its own that stays up for the session."""
    services, results = [], {}
    try:
        for sdk, (python, extra_env) in pythons.items():
            work = tmp_path_factory.mktemp(sdk.replace(" ", "-"))
            service = Service(bin_dir / "gati-backend", env={"GATI_DATA_DIR": str(work / "data")})
            services.append(service)
            result = run_script(python, extra_env, service.url, work)
            assert result.returncode == 0, f"{sdk}:\n{result.stdout}\n{result.stderr[-5000:]}"
            assert result.stdout.splitlines() == [JOKE, "caught: agent gave up"], result.stdout
            results[sdk] = (service.url, result)
        yield results
    finally:
        for service in services:
            service.stop()


# ---- reading the backend -------------------------------------------------------------------------

def recorded_runs(backend_url):
    """Every run the backend at `backend_url` holds, as its API describes it, each with its
    `events` (from /api/runs/<id>) in time order. Reusable by the MCP and dashboard checks."""
    status, body = request("GET", backend_url + "/api/runs?limit=500")
    if status == 200 and isinstance(body, dict) and "runs" in body:
        runs = body["runs"]
    else:  # a backend without /api/runs: every agent's runs
        runs = []
        agents = request("GET", backend_url + "/api/agents?limit=500")[1]["agents"]
        for agent in agents:
            runs += request("GET", backend_url + f"/api/agents/{agent['name']}/runs?limit=500")[1]["runs"]
    detailed = []
    for run in runs:
        status, body = request("GET", backend_url + f"/api/runs/{run['run_id']}")
        assert status == 200, body
        detailed.append({**run, **body})
    return detailed


def runs_of(backend_url, agent):
    return [run for run in recorded_runs(backend_url) if run["agent_name"] == agent]


def events_of(run, event_type):
    return [e for e in run["events"] if e["event_type"] == event_type]


# ---- what users of 0.0.3 see after upgrading ------------------------------------------------------

@pytest.mark.parametrize("sdk", SDKS)
def test_the_agent_run_with_its_llm_call_and_tools_is_recorded(recorded, sdk):
    url, _ = recorded[sdk]
    (run,) = runs_of(url, "ResearchAgent")
    types = [e["event_type"] for e in run["events"]]
    assert types[0] == "agent_start" and types[-1] == "agent_end", types
    assert sorted(types[1:-1]) == ["llm_call", "tool_call", "tool_call"], types
    start = run["events"][0]
    for event in run["events"][1:-1]:
        assert event["parent_event_id"] == start["event_id"], event
    (search,) = [e for e in events_of(run, "tool_call") if e["data"]["tool_name"] == "web_search"]
    assert search["data"]["input"] == {"query": "programming"}
    assert search["data"]["output"] == ["result about programming"]
    assert run["events"][-1]["data"]["output"] == JOKE


@pytest.mark.parametrize("sdk", SDKS)
def test_tokens_and_cost_of_the_llm_call_are_recorded(recorded, sdk):
    url, _ = recorded[sdk]
    (run,) = runs_of(url, "ResearchAgent")
    (llm,) = events_of(run, "llm_call")
    assert llm["data"]["tokens_in"] == 1200 and llm["data"]["tokens_out"] == 700
    assert llm["data"]["model"] == "gpt-4o"
    assert llm["data"]["cost"] == pytest.approx(COST)
    assert llm["data"]["completion"] == JOKE
    assert "Tell me a joke about programming" in llm["data"]["prompt"]


@pytest.mark.parametrize("sdk", SDKS)
def test_errors_of_the_tool_and_the_agent_are_recorded(recorded, sdk):
    url, _ = recorded[sdk]
    (run,) = runs_of(url, "ResearchAgent")
    (flaky,) = [e for e in events_of(run, "tool_call") if e["data"]["tool_name"] == "flaky_tool"]
    assert flaky["data"]["error"] == {"type": "RuntimeError", "message": "tool exploded"}
    (failed,) = runs_of(url, "FailingAgent")
    (end,) = events_of(failed, "agent_end")
    assert end["data"]["error"] == {"type": "ValueError", "message": "agent gave up"}


@pytest.mark.parametrize("sdk", SDKS)
def test_totals_count_the_tokens_and_cost(recorded, sdk):
    """The backend reads both SDKs' token and cost fields (tokens_in/tokens_out, cost)."""
    url, _ = recorded[sdk]
    summary = request("GET", url + "/api/summary")[1]
    assert summary["total_tokens"] == 1900, summary
    assert summary["total_cost"] == pytest.approx(COST), summary


@pytest.mark.parametrize("sdk", SDKS)
def test_every_run_has_a_readable_name(recorded, sdk):
    """0.0.3 sends a placeholder `temp_<uuid>` for the backend to number; ours sends none unless
    the user named the run: either way the backend's run has a name a person can read."""
    url, _ = recorded[sdk]
    runs = recorded_runs(url)
    assert {run["agent_name"] for run in runs} >= {"ResearchAgent", "FailingAgent"}
    for run in runs:
        name = run.get("run_name")
        assert isinstance(name, str) and name.strip() and not name.startswith("temp_"), run


def test_both_sdks_record_the_same_shape(recorded):
    """The same script gives the same runs, event types, tokens, cost and errors with either SDK."""
    def shape(url):
        result = []
        for run in sorted(recorded_runs(url), key=lambda r: r["agent_name"]):
            if run["agent_name"] not in ("ResearchAgent", "FailingAgent"):
                continue
            events = [(e["event_type"], e["data"].get("tool_name"), e["data"].get("tokens_in"),
                       e["data"].get("tokens_out"), e["data"].get("cost"), json.dumps(e["data"].get("error")))
                      for e in run["events"]]
            result.append((run["agent_name"], sorted(events, key=str)))
        return result

    assert shape(recorded["gati 0.0.3"][0]) == shape(recorded["ours"][0])


# ---- the same runs through our MCP server's tools --------------------------------------------------

@pytest.fixture(scope="module")
def mcp_servers(recorded, bin_dir):
    """{sdk: gati-mcp-server over streamable HTTP}, each against the backend holding that SDK's runs."""
    servers = {}
    try:
        for sdk in SDKS:
            servers[sdk] = Service(bin_dir / "gati-mcp-server", args=["--http"],
                                   env={"BACKEND_URL": recorded[sdk][0]})
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def mcp_answers(server, *calls):
    """[(is_error, text)] of the tools the (name, arguments) `calls` name, in one MCP session."""
    async def main():
        async with streamable_http_client(server.url + "/mcp") as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                answers = []
                for name, arguments in calls:
                    result = await session.call_tool(name, arguments)
                    answers.append((result.is_error, result.content[-1].text))
                return answers

    return anyio.run(main)


def mcp_json(server, *calls):
    """The JSON answers of the tools `calls` names; a tool error fails the test."""
    answers = mcp_answers(server, *calls)
    for (name, arguments), (error, text) in zip(calls, answers):
        assert not error, f"{name}({arguments}): {text}"
    return [json.loads(text) for _, text in answers]


def compat_run_ids(sdk, recorded):
    """{agent: run_id} of the README script's two runs, as the backend's API lists them."""
    runs = {run["agent_name"]: run["run_id"] for run in recorded_runs(recorded[sdk][0])}
    return {agent: runs[agent] for agent in ("ResearchAgent", "FailingAgent")}


# What each run adds up to: (run name, tokens in, out and overall, cost, errors).
RUN_TOTALS = {"ResearchAgent": ("run 1", 1200, 700, 1900, COST, 1), "FailingAgent": ("run 1", 0, 0, 0, 0.0, 1)}


def totals(run):
    return (run["run_name"], run["tokens_in"], run["tokens_out"], run["total_tokens"],
            pytest.approx(run["total_cost"], abs=1e-12), run["error_count"])


@pytest.mark.parametrize("sdk", SDKS)
def test_mcp_lists_the_runs_by_name_with_tokens_cost_and_errors(recorded, mcp_servers, sdk):
    ids = compat_run_ids(sdk, recorded)
    every, research, named = mcp_json(mcp_servers[sdk], ("list_runs", {}),
                                      ("list_runs", {"agent_name": "ResearchAgent"}),
                                      ("list_runs", {"run_name": "run 1"}))
    runs = {run["agent_name"]: run for run in every["runs"]}
    assert {agent: runs[agent]["run_id"] for agent in ids} == ids, every
    assert {agent: totals(runs[agent]) for agent in ids} == RUN_TOTALS
    (run,) = research["runs"]
    assert (run["run_id"], totals(run)) == (ids["ResearchAgent"], RUN_TOTALS["ResearchAgent"])
    assert sorted(run["run_id"] for run in named["runs"]) == sorted(ids.values()), named


@pytest.mark.parametrize("sdk", SDKS)
def test_mcp_gets_each_run_by_name_with_its_llm_call_and_errors(recorded, mcp_servers, sdk):
    ids = compat_run_ids(sdk, recorded)
    research, failed = mcp_json(mcp_servers[sdk], ("get_run", {"run_name": "run 1", "agent_name": "ResearchAgent"}),
                                ("get_run", {"run_name": "run 1", "agent_name": "FailingAgent"}))
    assert (research["run_id"], research["label"], totals(research)) == (
        ids["ResearchAgent"], "run 1", RUN_TOTALS["ResearchAgent"])
    (llm,) = [e for e in research["events"] if e["event_type"] == "llm_call"]
    assert (llm["tokens_in"], llm["tokens_out"], llm["total_tokens"]) == (1200, 700, 1900)
    assert llm["data"]["model"] == "gpt-4o"
    assert llm["cost"] == pytest.approx(COST) and not llm["error"]
    tools = {e["data"]["tool_name"]: e for e in research["events"] if e["event_type"] == "tool_call"}
    assert not tools["web_search"]["error"]
    assert tools["flaky_tool"]["error"], tools["flaky_tool"]
    assert tools["flaky_tool"]["data"]["error"] == {"type": "RuntimeError", "message": "tool exploded"}
    assert [e["event_id"] for e in research["events"] if e["error"]] == [tools["flaky_tool"]["event_id"]]

    assert (failed["run_id"], failed["label"], totals(failed)) == (
        ids["FailingAgent"], "run 1", RUN_TOTALS["FailingAgent"])
    (end,) = [e for e in failed["events"] if e["error"]]
    assert end["event_type"] == "agent_end"
    assert end["data"]["error"] == {"type": "ValueError", "message": "agent gave up"}

    # Both agents have a "run 1": asked by that name alone, the tool names both runs to choose from.
    ((error, text),) = mcp_answers(mcp_servers[sdk], ("get_run", {"run_name": "run 1"}))
    assert error and all(f'"{run_id}" (agent "{agent}"' in text for agent, run_id in ids.items()), text


@pytest.mark.parametrize("sdk", SDKS)
def test_mcp_search_finds_the_errors_and_the_llm_calls_tokens(recorded, mcp_servers, sdk):
    ids = compat_run_ids(sdk, recorded)
    tool, agent, llm = mcp_json(mcp_servers[sdk], ("search_events", {"query": "tool exploded"}),
                                ("search_events", {"query": "agent gave up"}),
                                ("search_events", {"event_type": "llm_call", "run_name": "run 1"}))
    (event,) = tool["events"]
    assert (event["event_type"], event["data"]["tool_name"], event["error"]) == ("tool_call", "flaky_tool", True)
    assert (event["run_id"], event["run_name"]) == (ids["ResearchAgent"], "run 1")
    (event,) = agent["events"]
    assert (event["event_type"], event["error"], event["run_id"], event["run_name"]) == (
        "agent_end", True, ids["FailingAgent"], "run 1")
    (event,) = llm["events"]
    assert (event["run_id"], event["run_name"]) == (ids["ResearchAgent"], "run 1")
    assert (event["tokens_in"], event["tokens_out"], event["total_tokens"]) == (1200, 700, 1900)
    assert event["cost"] == pytest.approx(COST)


@pytest.mark.parametrize("sdk", SDKS)
def test_an_agents_events_are_every_event_of_its_runs(recorded, mcp_servers, sdk):
    """0.0.3 stamps the LLM and tool calls inside an agent's run with observe.init's name: asked
    for the agent's events, the API and the MCP tool still give all of them, the tool error too."""
    url, _ = recorded[sdk]
    (run,) = runs_of(url, "ResearchAgent")
    status, found = request("GET", url + "/api/events?agent=ResearchAgent&limit=500")
    assert status == 200 and sorted(e["event_id"] for e in found["events"]) == sorted(
        e["event_id"] for e in run["events"]), found
    assert request("GET", url + "/api/events?agent=my_agent")[1]["total"] == 0
    agent, errors = mcp_json(mcp_servers[sdk], ("search_events", {"agent_name": "ResearchAgent", "limit": 500}),
                             ("search_events", {"agent_name": "ResearchAgent", "query": "tool exploded"}))
    assert agent["total"] == len(run["events"]), agent
    (event,) = errors["events"]
    assert (event["data"]["tool_name"], event["error"], event["agent_name"]) == ("flaky_tool", True, "ResearchAgent")


@pytest.mark.parametrize("sdk", SDKS)
def test_mcp_summary_and_agents_add_up_the_tokens_cost_and_errors(mcp_servers, sdk):
    summary, agents = mcp_json(mcp_servers[sdk], ("get_summary", {}), ("list_agents", {}))
    assert (summary["runs"], summary["tokens_in"], summary["tokens_out"], summary["total_tokens"],
            summary["error_count"]) == (2, 1200, 700, 1900, 2), summary
    assert summary["total_cost"] == pytest.approx(COST)
    assert summary["agents"] == 2, summary
    for by_agent in (summary["by_agent"], agents["agents"]):
        named = {a["name"]: a for a in by_agent}
        # Only the agents of the runs: no agent for the name given to observe.init, and every
        # event counted for the agent of its run.
        assert set(named) == set(RUN_TOTALS), by_agent
        assert sum(a["event_count"] for a in by_agent) == summary["events"], by_agent
        for agent, (_, tokens_in, tokens_out, tokens, cost, errors) in RUN_TOTALS.items():
            a = named[agent]
            assert (a["run_count"], a["tokens_in"], a["tokens_out"], a["total_tokens"], a["error_count"]) == (
                1, tokens_in, tokens_out, tokens, errors), a
            assert a["total_cost"] == pytest.approx(cost, abs=1e-12), a


# ---- the same runs on the dashboard, in headless Chromium ------------------------------------------

@pytest.fixture(scope="module")
def dashboards(recorded, bin_dir):
    """{sdk: gati-dashboard}, each over the backend holding that SDK's runs."""
    services = {}
    try:
        for sdk in SDKS:
            services[sdk] = dashboard_for(bin_dir, recorded[sdk][0])
        yield services
    finally:
        for service in services.values():
            service.stop()


def slug(sdk):
    return sdk.replace(" ", "-")


def enclosing(dom, marker, tag):
    """The innermost `<tag ...>...</tag>` element of `dom` (no nested `tag`) holding `marker`."""
    at = dom.find(marker)
    assert at != -1, f"{marker!r} is not on the page"
    start, end = dom.rfind(f"<{tag}", 0, at + len(f"<{tag}")), dom.find(f"</{tag}>", at)
    assert start != -1 and end != -1, marker
    return dom[start:end]


TOKENS_SHOWN = '<span class="tokens">1,900<small class="muted"> (1,200 in / 700 out)</small></span>'
COST_SHOWN = "$0.0100"  # the dashboard's money(COST): 4 decimals from one cent up
ERRORS_SHOWN = '<span class="errors">1</span>'
TOTALS_SHOWN = f"<dt>Tokens</dt><dd>1,900</dd></div><div><dt>Cost</dt><dd>{COST_SHOWN}</dd>"


@pytest.mark.parametrize("sdk", SDKS)
def test_dashboard_lists_both_agents_with_tokens_cost_and_errors(chromium, dashboards, tmp_path, sdk):
    dom = render(chromium, tmp_path, dashboards[sdk].url + "/")
    assert TOTALS_SHOWN in dom
    research = enclosing(dom, '<a href="#/agent/ResearchAgent">ResearchAgent</a>', "tr")
    assert TOKENS_SHOWN in research and f"<td>{COST_SHOWN}</td>" in research and f"<td>{ERRORS_SHOWN}</td>" in research
    failing = enclosing(dom, '<a href="#/agent/FailingAgent">FailingAgent</a>', "tr")
    assert f"<td>{ERRORS_SHOWN}</td>" in failing, failing
    assert dom.count('<a href="#/agent/') == 2, "only the two agents, no row for observe.init's name"


@pytest.mark.parametrize("sdk", SDKS)
def test_dashboard_lists_the_run_by_name_with_tokens_cost_and_errors(chromium, dashboards, recorded, tmp_path, sdk):
    run_id = compat_run_ids(sdk, recorded)["ResearchAgent"]
    dom = render(chromium, tmp_path, dashboards[sdk].url + "/#/agent/ResearchAgent")
    row = enclosing(dom, f'<a href="#/run/{run_id}" class="run-name" title="{run_id}">run 1</a>', "tr")
    assert TOKENS_SHOWN in row and f"<td>{COST_SHOWN}</td>" in row and f"<td>{ERRORS_SHOWN}</td>" in row, row


@pytest.mark.parametrize("sdk", SDKS)
def test_dashboard_shows_the_run_with_its_failing_tool_as_an_error(chromium, dashboards, recorded, tmp_path, artifacts,
                                                                  sdk):
    url = recorded[sdk][0]
    (run,) = runs_of(url, "ResearchAgent")
    screenshot = artifacts / f"dashboard-compat-{slug(sdk)}-run.png"
    dom = render(chromium, tmp_path, dashboards[sdk].url + f"/#/run/{run['run_id']}", screenshot=screenshot)
    assert screenshot.stat().st_size > 0
    assert f'<span class="run-name" title="{run["run_id"]}">run 1</span>' in dom
    totals_shown = enclosing(dom, '<dl class="run-totals">', "dl")
    assert TOKENS_SHOWN in totals_shown and f"<dt>Cost</dt><dd>{COST_SHOWN}</dd>" in totals_shown
    assert f"<dt>Errors</dt><dd>{ERRORS_SHOWN}</dd>" in totals_shown
    tools = {e["data"]["tool_name"]: e["event_id"] for e in events_of(run, "tool_call")}
    (llm,) = events_of(run, "llm_call")
    assert f'<li class="event" data-event-id="{tools["web_search"]}">' in dom
    llm_shown = enclosing(dom, f'<li class="event" data-event-id="{llm["event_id"]}">', "li")
    assert f'<span class="event-facts">1,900 tokens · {COST_SHOWN} · ' in llm_shown, llm_shown
    assert dom.count('class="event error"') == 1
    flaky = enclosing(dom, f'<li class="event error" data-event-id="{tools["flaky_tool"]}">', "li")
    assert '>flaky_tool</a>' in flaky and 'tool exploded</span>' in flaky, flaky


@pytest.mark.parametrize("sdk", SDKS)
def test_dashboard_shows_the_failing_run_as_an_error(chromium, dashboards, recorded, tmp_path, sdk):
    (run,) = runs_of(recorded[sdk][0], "FailingAgent")
    dom = render(chromium, tmp_path, dashboards[sdk].url + f"/#/run/{run['run_id']}")
    assert f'<span class="run-name" title="{run["run_id"]}">run 1</span>' in dom
    assert f"<dt>Errors</dt><dd>{ERRORS_SHOWN}</dd>" in dom
    (end,) = events_of(run, "agent_end")
    assert dom.count('class="event error"') == 1
    failed = enclosing(dom, f'<li class="event error" data-event-id="{end["event_id"]}">', "li")
    assert '<span class="event-type">agent_end</span>' in failed and 'agent gave up</span>' in failed, failed


# ---- names and signatures ------------------------------------------------------------------------

# Every public name of 0.0.3 that its README or its modules' __all__ offer to users.
PUBLIC = {
    "gati": ["observe", "Observe", "__version__"],
    "gati.observe": ["observe", "Observe"],
    "gati.decorators": ["track_agent", "track_tool", "track_step"],
    "gati.decorators.track_agent": ["track_agent"],
    "gati.decorators.track_tool": ["track_tool"],
    "gati.decorators.track_step": ["track_step"],
    "gati.core.event": ["Event", "LLMCallEvent", "ToolCallEvent", "AgentStartEvent", "AgentEndEvent",
                        "NodeExecutionEvent", "StepEvent", "generate_run_id", "generate_run_name"],
    "gati.core.context": ["RunContextManager", "get_current_run_id", "get_current_run_name", "set_run_name",
                          "create_child_run", "run_context", "arun_context", "get_parent_event_id",
                          "set_parent_event_id"],
    # gati.core's EventBuffer and EventClient were 0.0.3's sending machinery, not kept.
    "gati.core": ["Event", "LLMCallEvent", "ToolCallEvent", "AgentStartEvent", "AgentEndEvent",
                  "NodeExecutionEvent", "StepEvent", "generate_run_id", "generate_run_name", "Config", "config",
                  "RunContextManager", "get_current_run_id", "get_current_run_name", "set_run_name",
                  "create_child_run", "run_context"],
    "gati.core.config": ["Config", "config"],
    "gati.instrumentation.langchain": ["GatiLangChainCallback", "get_gati_callbacks", "enable_auto_injection",
                                       "disable_auto_injection"],
    "gati.instrumentation.langgraph": ["instrument_langgraph"],
    "gati.utils.cost_calculator": ["MODEL_PRICING", "normalize_model_name", "calculate_cost"],
}
OBSERVE_METHODS = ["init", "track_event", "get_callbacks", "flush", "shutdown", "auto_instrument"]

DESCRIBE = '''
import inspect, json, sys
public, methods = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def describe(obj):
    try:
        return [[p.name, p.kind.name] for p in inspect.signature(obj).parameters.values()]
    except (TypeError, ValueError):
        return None
out = {}
for module, names in public.items():
    mod = __import__(module, fromlist=["x"])
    out[module] = {n: (describe(getattr(mod, n)) if hasattr(mod, n) else "missing") for n in names}
from gati import observe
out["observe"] = {m: describe(getattr(observe, m)) if hasattr(observe, m) else "missing" for m in methods}
print(json.dumps(out))
'''


def describe(python, extra_env, tmp_path):
    env = {**os.environ, **extra_env, "HOME": str(tmp_path), "GATI_TELEMETRY": "false"}
    if "PYTHONPATH" not in extra_env:
        env.pop("PYTHONPATH", None)
    result = subprocess.run([str(python), "-c", DESCRIBE, json.dumps(PUBLIC), json.dumps(OBSERVE_METHODS)],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_every_public_name_of_0_0_3_exists_with_a_compatible_signature(pythons, tmp_path):
    theirs = describe(*pythons["gati 0.0.3"], tmp_path)
    ours = describe(*pythons["ours"], tmp_path)
    problems = []
    for module, names in theirs.items():
        for name, signature in names.items():
            mine = ours[module][name]
            assert signature != "missing", f"0.0.3 lacks {module}.{name}: fix PUBLIC"
            if mine == "missing":
                problems.append(f"{module}.{name} is missing")
            elif signature is not None and not compatible(signature, mine):
                problems.append(f"{module}.{name}{signature} became {mine}")
    assert not problems, "\n".join(problems)
    # 0.0.3's init(name, auto_inject=True, **config) took Config.update's options.
    init = {p for p, _ in ours["observe"]["init"]}
    assert init >= {"name", "auto_inject", "backend_url", "batch_size", "flush_interval", "telemetry",
                    "agent_name", "api_key", "environment"}


def compatible(theirs, ours):
    """Every call that `theirs` accepted, `ours` accepts: positional parameters in the same
    places, the rest by name or through **kwargs."""
    positional = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")
    mine = dict(ours)
    our_positional = [n for n, k in ours if k in positional]
    takes_var_keyword = any(k == "VAR_KEYWORD" for _, k in ours)
    takes_var_positional = any(k == "VAR_POSITIONAL" for _, k in ours)
    index = 0
    for name, kind in theirs:
        if name in ("self", "cls"):
            continue
        if kind in positional:
            if index >= len(our_positional) or our_positional[index] != name:
                return False
            index += 1
        elif kind == "VAR_POSITIONAL" and not takes_var_positional:
            return False
        elif kind == "VAR_KEYWORD" and not takes_var_keyword and name != "config":
            return False
        elif kind == "KEYWORD_ONLY" and name not in mine and not takes_var_keyword:
            return False
    return True
