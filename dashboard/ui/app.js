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

function table(headers, rows) {
  if (rows.length === 0) return el("p", { class: "muted" }, "Nothing recorded yet.");
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))))));
}

async function showAgents() {
  const { agents } = await api("/api/agents?limit=200");
  return [
    [],
    table(["Agent", "Runs", "Events", "Last activity"], agents.map((a) => [
      link(`#/agent/${encodeURIComponent(a.name)}`, a.name), a.run_count, a.event_count, when(a.last_activity),
    ])),
  ];
}

async function showRuns(agent) {
  const { runs } = await api(`/api/agents/${encodeURIComponent(agent)}/runs?limit=200`);
  return [
    [link("#/", "Agents"), ` / ${agent}`],
    table(["Run", "Started", "Last event", "Events"], runs.map((r) => [
      link(`#/run/${encodeURIComponent(r.run_id)}`, r.run_id), when(r.started_at), when(r.last_event_at), r.event_count,
    ])),
  ];
}

async function showRun(runId) {
  const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
  const items = run.events.map((e) => el("li", { class: "event", "data-event-id": e.event_id },
    el("span", { class: "event-type" }, e.event_type),
    el("time", { class: "event-time", datetime: e.timestamp }, when(e.timestamp)),
    el("pre", { class: "event-data" }, JSON.stringify(e.data, null, 2))));
  return [
    [link("#/", "Agents"), " / ", link(`#/agent/${encodeURIComponent(run.agent_name)}`, run.agent_name), ` / ${run.run_id}`],
    items.length ? el("ol", { class: "timeline" }, ...items) : el("p", { class: "muted" }, "This run has no events."),
  ];
}

async function showTotals() {
  const s = await api("/api/summary");
  const totals = document.getElementById("totals");
  const cost = Number(s.total_cost || 0).toFixed(4);
  totals.replaceChildren(...[["Agents", s.agents], ["Runs", s.runs], ["Events", s.events],
    ["Tokens", s.total_tokens], ["Cost", `$${cost}`]].map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
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
