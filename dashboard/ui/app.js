// gati dashboard: a hash-routed single page over the backend's API (proxied by this server).
"use strict";

const REFRESH_MS = 5000;
const view = document.getElementById("view");
const statusBox = document.getElementById("status");

async function api(path) {
  let response;
  try {
    response = await fetch(path, { headers: { accept: "application/json" } });
  } catch (e) {
    throw new Error("The dashboard itself is not reachable.");
  }
  const body = await response.json().catch(() => ({}));
  if (response.status === 502 || response.status === 503 || response.status === 504) {
    throw new Error("The gati backend is unreachable. Is it running? (`gati status`)");
  }
  if (!response.ok) throw new Error(body.error || `${path} answered ${response.status}`);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function link(href, text) { return el("a", { href }, text); }
function when(ts) { return ts ? new Date(ts).toLocaleString() : "—"; }
function money(n) {
  const value = Number(n || 0);
  return `$${value.toFixed(value !== 0 && Math.abs(value) < 0.01 ? 6 : 4)}`;
}
function duration(ms) {
  const value = Number(ms || 0);
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60000) return `${(value / 1000).toFixed(1)} s`;
  return `${Math.floor(value / 60000)} min ${Math.round((value % 60000) / 1000)} s`;
}
// Total tokens, with the in/out split beside it when there is one.
function tokens(x) {
  const split = x.tokens_in || x.tokens_out ? ` (${x.tokens_in ?? 0} in / ${x.tokens_out ?? 0} out)` : "";
  return el("span", { class: "tokens" }, String(x.total_tokens ?? 0), el("small", { class: "muted" }, split));
}
function errors(n) { return n ? el("span", { class: "errors" }, String(n)) : "0"; }
// A run is called by its name; its id when it has none.
function runLabel(r) { return r.run_name || r.run_id; }

function table(headers, rows) {
  if (rows.length === 0) return el("p", { class: "muted" }, "Nothing recorded yet.");
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))))));
}

async function showAgents() {
  const agents = await api("/api/agents?limit=200");
  return [
    [],
    table(["Agent", "Runs", "Events", "Tokens", "Cost", "Errors", "Last activity"], agents.map((a) => [
      link(`#/agent/${encodeURIComponent(a.name)}`, a.name), a.run_count, a.event_count, tokens(a),
      money(a.total_cost), errors(a.error_count), when(a.last_activity),
    ])),
  ];
}

async function showRuns(agent) {
  const runs = await api(`/api/agents/${encodeURIComponent(agent)}/runs?limit=200`);
  return [
    [link("#/", "Agents"), ` / ${agent}`],
    table(["Run", "Started", "Duration", "Events", "Tokens", "Cost", "Errors"], runs.map((r) => [
      el("a", { href: `#/run/${encodeURIComponent(r.run_id)}`, class: "run-name", title: r.run_id }, runLabel(r)),
      when(r.started_at), duration(r.total_duration_ms), r.event_count, tokens(r), money(r.total_cost),
      errors(r.error_count),
    ])),
  ];
}

// One event, with the events whose parent_event_id names it nested below.
function eventItem(e, children) {
  const facts = [];
  if (e.total_tokens) facts.push(`${e.total_tokens} tokens`);
  if (e.cost) facts.push(money(e.cost));
  if (e.duration_ms) facts.push(duration(e.duration_ms));
  const item = el("li", { class: e.error ? "event error" : "event", "data-event-id": e.event_id },
    el("span", { class: "event-type" }, e.event_type),
    el("time", { class: "event-time", datetime: e.timestamp }, when(e.timestamp)),
    el("span", { class: "event-facts" }, facts.join(" · ")),
    el("pre", { class: "event-data" }, JSON.stringify(e.data, null, 2)));
  if (children.length) item.append(el("ol", { class: "children" }, ...children));
  return item;
}

// The events as the tree their parent_event_id links form, each level in time order. An event
// whose parent is not in this run is a root; a cycle is broken where it is first met.
function eventTree(events) {
  const ids = new Set(events.map((e) => e.event_id));
  const children = new Map();
  for (const e of events) {
    const parent = e.parent_event_id && ids.has(e.parent_event_id) && e.parent_event_id !== e.event_id
      ? e.parent_event_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(e);
  }
  const shown = new Set();
  const build = (e) => {
    shown.add(e.event_id);
    const below = (children.get(e.event_id) || []).filter((c) => !shown.has(c.event_id));
    below.forEach((c) => shown.add(c.event_id));
    return eventItem(e, below.map(build));
  };
  const roots = (children.get(null) || []).map(build);
  for (const e of events) if (!shown.has(e.event_id)) roots.push(build(e));
  return el("ol", { class: "timeline" }, ...roots);
}

async function showRun(runId) {
  const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
  const facts = [["Tokens", tokens(run)], ["Cost", money(run.total_cost)], ["Duration", duration(run.total_duration_ms)],
    ["Events", run.event_count], ["Errors", errors(run.error_count)]];
  return [
    [link("#/", "Agents"), " / ", link(`#/agent/${encodeURIComponent(run.agent_name)}`, run.agent_name),
      " / ", el("span", { class: "run-name", title: run.run_id }, runLabel(run))],
    el("section", {},
      el("dl", { class: "run-totals" }, ...facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
      run.events.length ? eventTree(run.events) : el("p", { class: "muted" }, "This run has no events.")),
  ];
}

async function showTotals() {
  const s = await api("/api/summary");
  const totals = document.getElementById("totals");
  totals.replaceChildren(...[["Agents", s.agents], ["Runs", s.runs], ["Events", s.events],
    ["Tokens", s.total_tokens], ["Cost", money(s.total_cost)]].map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
  document.getElementById("version").textContent = `gati ${s.version}`;
}

async function render() {
  const [, kind, arg] = location.hash.match(/^#\/(agent|run)\/(.+)$/) || [];
  try {
    const page = kind === "agent" ? showRuns(decodeURIComponent(arg))
      : kind === "run" ? showRun(decodeURIComponent(arg)) : showAgents();
    const [[crumbs, content]] = await Promise.all([page, showTotals()]);
    document.getElementById("crumbs").replaceChildren(...crumbs);
    view.replaceChildren(content);
    statusBox.hidden = true;
  } catch (e) {
    statusBox.textContent = e.message;
    statusBox.hidden = false;
  }
}

window.addEventListener("hashchange", render);
render();
setInterval(render, REFRESH_MS);
