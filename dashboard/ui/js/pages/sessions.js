// Sessions: the conversations runs are part of (a session id names one), listed with their
// totals; and one session read turn by turn: each run's input, its output, cost, tokens, status.
import { el } from "../dom.js";
import { enc, get, list, query } from "../api.js";
import { ago, count, errors, money, runLabel, tokens, when } from "../format.js";
import { cards, offsetOf, pager, section, table } from "../ui.js";
import { statusBadge } from "./agent.js";

const LIMIT = 25;

function sessionLink(id) {
  return el("a", { href: `#/session/${enc(id)}`, class: "run-name", title: id }, id);
}

export const sessionsPage = {
  async load(route) {
    const agent = route.query.get("agent") || "";
    const offset = offsetOf(route);
    const sessions = await list(query("/api/sessions", { agent, limit: LIMIT, offset }), "sessions");
    return { agent, offset, sessions };
  },
  view({ agent, offset, sessions }, route) {
    const rows = sessions.items.map((s) => [
      sessionLink(s.session_id),
      s.agent_names.map((name, i) => [i ? ", " : "", el("a", { href: `#/agent/${enc(name)}` }, name)]),
      count(s.run_count), statusBadge(s.status), when(s.started_at), ago(s.last_event_at), count(s.event_count),
      tokens(s), money(s.total_cost), errors(s.error_count),
    ]);
    const title = agent ? `Sessions of ${agent}` : "Sessions";
    return {
      title,
      crumbs: [el("span", {}, "Sessions")],
      content: el("div", { class: "page" },
        el("div", { class: "page-head" }, el("h1", {}, title),
          agent ? el("div", { class: "actions" }, el("a", { class: "button", href: "#/sessions" }, "All agents")) : null),
        el("p", { class: "muted" }, "A session is a conversation: the runs that name the same session id, latest activity first."),
        section("Sessions",
          table(["Session", "Agents", "Runs", "Last run", "Started", "Last activity", "Events", "Tokens", "Cost", "Errors"], rows,
            { keys: sessions.items.map((s) => s.session_id), empty: "No sessions yet: runs join one when they name a session id." }),
          pager(route, offset, LIMIT, sessions.total, "sessions"))),
    };
  },
};

// One turn of the conversation: the run, then what went in and what came out.
function turn(run, number) {
  const said = (label, value, cls) => el("section", { class: `block ${cls}` }, el("h3", {}, label),
    value == null ? el("p", { class: "muted" }, `No ${label.toLowerCase()} recorded.`) : el("pre", {}, value));
  return el("li", { class: "turn", "data-key": run.run_id },
    el("div", { class: "turn-head" },
      el("span", { class: "turn-number" }, `${number}.`),
      el("a", { href: `#/run/${enc(run.run_id)}`, class: "run-name", title: run.run_id }, runLabel(run)),
      statusBadge(run.status),
      el("span", { class: "muted" }, `${run.agent_name} · ${when(run.started_at)}`),
      el("span", { class: "turn-facts" }, money(run.total_cost), " · ", tokens(run))),
    said("Input", run.input, "turn-input"),
    said("Output", run.output, "turn-output"));
}

export const sessionPage = {
  async load(route) {
    const id = route.args[0];
    return { id, session: await get(`/api/sessions/${enc(id)}`) };
  },
  view({ id, session }) {
    const overview = cards([
      ["Runs", count(session.run_count)],
      ["Last run", statusBadge(session.status)],
      ["Events", count(session.event_count)],
      ["Cost", money(session.total_cost)],
      ["Tokens", tokens(session)],
      ["Errors", errors(session.error_count)],
      ["Started", when(session.started_at), ["last activity ", ago(session.last_event_at)]],
    ]);
    const shown = session.runs.length;
    const more = session.runs_offset + shown < session.run_count
      ? el("p", { class: "muted" }, `The first ${count(shown)} of ${count(session.run_count)} runs.`) : null;
    return {
      title: `Session ${id}`,
      crumbs: [el("a", { href: "#/sessions" }, "Sessions"), " / ", el("span", {}, id)],
      content: el("div", { class: "page" },
        el("div", { class: "page-head" }, el("h1", {}, `Session ${id}`),
          el("div", { class: "actions" }, ...session.agent_names.map((name) =>
            el("a", { class: "button", href: query("#/sessions", { agent: name }) }, `Sessions of ${name}`)))),
        overview,
        section("Conversation",
          el("ol", { class: "turns", "aria-label": "runs in time order" }, ...session.runs.map((run, i) => turn(run, session.runs_offset + i + 1))),
          more)),
    };
  },
};
