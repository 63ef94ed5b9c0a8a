// One run made to read: its totals, the tree of its events (the backend's trace) with names,
// icons, latency, cost, tokens and errors, collapsible; the selected event's detail beside it;
// the graph of a LangGraph run. The selection and the tab are in the URL (`event`, `view`).
import { el } from "../dom.js";
import { enc, get, query } from "../api.js";
import { count, duration, errors, errorText, money, runLabel, text, tokens, when } from "../format.js";
import { icon, iconKind } from "../ui.js";
import { statusBadge } from "./agent.js";
import { graphOf, graphView } from "./graph.js";

const SLOW_MS = 5000;

// Which events of a run the user folded, by run: kept while the page lives, across live updates.
const folded = new Map();
export function foldedOf(runId) {
  if (!folded.has(runId)) folded.set(runId, new Set());
  return folded.get(runId);
}

const TYPE_LABELS = {
  llm_call: "LLM call", tool_call: "Tool call", agent_start: "Agent start", agent_end: "Agent end",
  node_execution: "Graph node", chain_start: "Chain start", chain_end: "Chain end", run_start: "Run start",
  run_end: "Run end", error: "Error",
};

export function typeLabel(type) {
  return TYPE_LABELS[type] || String(type || "event").replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

const named = (...values) => values.find((v) => typeof v === "string" && v.trim());

// What a person calls this event: the tool, the model, the graph node, the agent.
export function eventName(e) {
  const d = e.data && typeof e.data === "object" ? e.data : {};
  const kind = iconKind(e.event_type);
  const name = kind === "tool" ? named(d.tool_name, d.tool, d.name, d.function_name)
    : kind === "llm" ? named(e.model, d.model, d.model_name, d.name)
    : e.event_type === "node_execution" ? named(d.node_name, d.name)
    : named(d.name, d.node_name, d.agent_name, d.chain_name, d.tool_name, d.function_name);
  return name || typeLabel(e.event_type);
}

function facts(e) {
  const out = [];
  if (e.total_tokens) out.push(`${count(e.total_tokens)} tokens`);
  if (e.cost) out.push(money(e.cost));
  const latency = e.latency_ms ?? e.duration_ms;
  if (latency) out.push(duration(latency));
  return out.join(" · ");
}

function failure(e) {
  const d = e.data && typeof e.data === "object" ? e.data : {};
  return errorText(d.error ?? d.exception ?? (e.error ? true : null));
}

function clock(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return `${d.toLocaleTimeString("en-US", { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export const runPage = {
  // The selection and the tab change nothing the backend says.
  key(route) { return `/run/${route.args[0]}`; },
  async load(route) {
    const run = await get(`/api/runs/${enc(route.args[0])}`);
    const trace = await get(`/api/runs/${enc(run.agent_name)}/${enc(run.run_id)}/trace`);
    return { run, trace };
  },
  view({ run, trace }, route) {
    const byId = new Map(run.events.map((e) => [e.event_id, e]));
    const selectedId = route.query.get("event");
    const graph = graphOf(trace, run.events);
    const tab = graph && route.query.get("view") === "graph" ? "graph" : "tree";
    const link = (params) => query(`#/run/${enc(run.run_id)}`, { view: tab === "graph" ? "graph" : null, ...params });
    const totals = [["Status", statusBadge(run.status)], ["Started", when(run.started_at ?? run.created_at)],
      ["Duration", duration(run.total_duration_ms)], ["Events", count(run.event_count)], ["Tokens", tokens(run)],
      ["Cost", money(run.total_cost)], ["Errors", errors(run.error_count)]];
    const main = tab === "graph" ? graphView(graph, run, selectedId, link) : tree(trace, run, selectedId, link);
    return {
      title: `${runLabel(run)} · ${run.agent_name}`,
      crumbs: [el("a", { href: "#/" }, "Agents"), " / ", el("a", { href: `#/agent/${enc(run.agent_name)}` }, run.agent_name),
        " / ", el("span", { class: "run-name", title: run.run_id }, runLabel(run))],
      content: el("div", { class: "page run-page" },
        el("div", { class: "page-head" }, el("h1", {}, runLabel(run)),
          el("div", { class: "actions" },
            run.session_id ? el("a", { class: "button", href: `#/session/${enc(run.session_id)}` }, "Its session") : null,
            el("button", { type: "button", "data-action": "rename-run", "data-run": run.run_id, "data-name": runLabel(run) }, "Rename…"),
            el("button", { type: "button", class: "danger", "data-action": "delete-run", "data-run": run.run_id,
              "data-name": runLabel(run), "data-agent": run.agent_name, "data-events": run.event_count }, "Delete run…"))),
        el("dl", { class: "run-totals" }, ...totals.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
        graph ? el("nav", { class: "tabs", "aria-label": "views of the run" },
          el("a", { href: link({ view: null, event: selectedId }), "aria-current": tab === "tree" ? "page" : null }, "Event tree"),
          el("a", { href: query(`#/run/${enc(run.run_id)}`, { view: "graph", event: selectedId }), "aria-current": tab === "graph" ? "page" : null }, "Graph"))
          : null,
        el("div", { class: "split" },
          el("div", { class: "split-main" }, main),
          detail(byId.get(selectedId), findNode(trace.execution_tree, selectedId), run, link))),
    };
  },
};

function findNode(nodes, id) {
  for (const n of nodes || []) {
    if (n.event_id === id) return n;
    const below = findNode(n.children, id);
    if (below) return below;
  }
  return null;
}

function tree(trace, run, selectedId, link) {
  const closed = foldedOf(run.run_id);
  const nodes = trace.execution_tree || [];
  if (!nodes.length) return el("p", { class: "muted" }, "This run has no events.");
  const item = (n) => {
    const kids = n.children || [];
    const open = !closed.has(n.event_id);
    const failed = failure(n);
    const slow = (n.latency_ms ?? 0) >= SLOW_MS;
    const kind = n.error ? "error" : iconKind(n.event_type);
    return el("li", { class: n.error ? "event error" : "event", "data-event-id": n.event_id },
      el("div", { class: `event-row kind-${kind}${n.event_id === selectedId ? " selected" : ""}` },
        kids.length
          ? el("button", { type: "button", class: "fold", "data-action": "fold", "data-run": run.run_id, "data-event": n.event_id,
            "aria-expanded": open ? "true" : "false", "aria-label": `${open ? "Collapse" : "Expand"} ${eventName(n)} (${kids.length} below)` },
          icon("chevron", "icon chevron"))
          : el("span", { class: "fold-spacer" }),
        icon(kind),
        el("a", { class: "event-name", href: link({ event: n.event_id }), "aria-current": n.event_id === selectedId ? "true" : null }, eventName(n)),
        el("span", { class: "event-type" }, n.event_type),
        el("span", { class: "event-facts" }, facts(n)),
        slow ? el("span", { class: "badge slow", title: `took ${duration(SLOW_MS)} or more` }, "slow") : null,
        failed ? el("span", { class: "event-error" }, failed) : null,
        !open && n.subtree ? el("span", { class: "folded-note" }, `${count(n.subtree.events - 1)} more inside`) : null,
        el("time", { class: "event-time", datetime: n.timestamp }, clock(n.timestamp))),
      kids.length && open ? el("ol", { class: "children" }, ...kids.map(item)) : null);
  };
  return el("div", { class: "tree" },
    el("div", { class: "tree-tools" },
      el("button", { type: "button", "data-action": "fold-all", "data-run": run.run_id, "data-open": "true" }, "Expand all"),
      el("button", { type: "button", "data-action": "fold-all", "data-run": run.run_id, "data-open": "false" }, "Collapse all")),
    el("ol", { class: "timeline" }, ...nodes.map(item)));
}

// Every event id of the trace that has children, for "Collapse all".
export function parentsOf(nodes, out = []) {
  for (const n of nodes || []) {
    if ((n.children || []).length) out.push(n.event_id);
    parentsOf(n.children, out);
  }
  return out;
}

function block(title, value, cls = "") {
  if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) return null;
  return el("section", { class: `block ${cls}` }, el("h3", {}, title), el("pre", {}, text(value)));
}

function detail(event, node, run, link) {
  if (!event) {
    return el("aside", { class: "detail", "aria-label": "event detail" },
      el("p", { class: "muted" }, "Select an event to read its prompt, completion, tool input and output, and error."));
  }
  const d = event.data && typeof event.data === "object" ? event.data : { value: event.data };
  const kind = event.error ? "error" : iconKind(event.event_type);
  const llm = iconKind(event.event_type) === "llm";
  const latency = node?.latency_ms ?? event.duration_ms;
  const facts = [
    ["Type", el("code", {}, event.event_type)], ["Time", el("time", { datetime: event.timestamp }, when(event.timestamp))],
    ["Latency", latency != null ? duration(latency) : null], ["Cost", event.cost != null ? money(event.cost) : null],
    ["Tokens in", event.tokens_in != null ? count(event.tokens_in) : null],
    ["Tokens out", event.tokens_out != null ? count(event.tokens_out) : null],
    ["Total tokens", event.total_tokens != null ? count(event.total_tokens) : null],
    ["Model", event.model || (llm ? named(d.model, d.model_name) : null)],
  ].filter(([, v]) => v !== null && v !== undefined);
  const sub = node?.subtree && (node.children || []).length ? node.subtree : null;
  const idLink = (id) => id ? el("a", { href: link({ event: id }) }, el("code", {}, id)) : "—";
  return el("aside", { class: "detail", "aria-label": "event detail", "data-event": event.event_id },
    el("h2", {}, icon(kind), eventName(event)),
    el("dl", { class: "facts" }, ...facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
    sub ? el("p", { class: "muted subtree" }, `With the ${sub.events === 2 ? "event" : `${count(sub.events - 1)} events`} below it: ${money(sub.cost)}, `,
      `${count(sub.total_tokens)} tokens, ${duration(sub.duration_ms)}`, sub.errors ? `, ${count(sub.errors)} errors` : "") : null,
    block("Error", failure(event) || null, "bad"),
    block("System prompt", d.system_prompt),
    block("Prompt", d.prompt ?? d.prompts ?? d.messages ?? (llm ? d.input ?? d.inputs : undefined)),
    block("Completion", d.completion ?? d.response ?? d.generations ?? (llm ? d.output ?? d.outputs : undefined)),
    llm ? null : block("Input", d.input ?? d.tool_input ?? d.inputs ?? d.args ?? d.kwargs),
    llm ? null : block("Output", d.output ?? d.tool_output ?? d.outputs ?? d.result ?? d.return_value),
    block("State before", d.state_before),
    block("State after", d.state_after),
    block("State changes", d.state_diff),
    el("section", { class: "block ids" }, el("h3", {}, "Ids"),
      el("dl", { class: "facts" },
        el("div", {}, el("dt", {}, "Event"), el("dd", {}, el("code", {}, event.event_id))),
        el("div", {}, el("dt", {}, "Parent"), el("dd", {}, idLink(event.parent_event_id))),
        el("div", {}, el("dt", {}, "Previous"), el("dd", {}, idLink(event.previous_event_id))),
        el("div", {}, el("dt", {}, "Run"), el("dd", {}, el("code", {}, run.run_id))),
        el("div", {}, el("dt", {}, "Agent"), el("dd", {}, el("a", { href: `#/agent/${enc(run.agent_name)}` }, run.agent_name))))),
    el("details", { class: "raw", "data-key": `raw-${event.event_id}` }, el("summary", {}, "Raw JSON"),
      el("pre", {}, JSON.stringify(event, null, 2))));
}
