// One agent: overview cards, its cost and runs over the last 30 days, and its runs, paged.
import { el } from "../dom.js";
import { enc, get, list, query } from "../api.js";
import { ago, count, duration, errors, money, runLabel, tokens, when } from "../format.js";
import { cards, offsetOf, pager, section, table } from "../ui.js";
import { chart, dayAxis, loadChartJs, palette } from "../charts.js";

const LIMIT = 25;
const STATUSES = ["active", "completed", "failed"];

export function statusBadge(status) {
  return status ? el("span", { class: `badge status-${status}` }, status) : "";
}

export const agentPage = {
  async load(route) {
    const name = route.args[0];
    const offset = offsetOf(route);
    const status = STATUSES.includes(route.query.get("status")) ? route.query.get("status") : "";
    const [agent, metrics, runs, timeline] = await Promise.all([
      get(`/api/agents/${enc(name)}`),
      get(`/api/agents/${enc(name)}/metrics`).catch(() => null),
      list(query("/api/runs", { agent: name, status, limit: LIMIT, offset }), "runs"),
      get(query("/api/metrics/timeline", { agent: name, days: 30 })).catch(() => null),
      loadChartJs(),
    ]);
    return { name, agent, metrics, runs, timeline, offset, status };
  },
  view({ name, agent, metrics, runs, timeline, offset, status }, route) {
    const m = metrics || {};
    const runCount = agent.run_count ?? agent.total_runs ?? 0;
    const overview = cards([
      ["Runs", count(runCount), agent.active_runs ? `${count(agent.active_runs)} active` : null],
      ["Events", count(agent.event_count ?? agent.total_events)],
      ["Cost", money(agent.total_cost)],
      ["Avg cost / run", money(m.avg_cost_per_run ?? agent.avg_cost ?? (runCount ? agent.total_cost / runCount : 0))],
      ["Tokens", tokens(agent)],
      ["Avg tokens / run", count(m.avg_tokens_in != null ? m.avg_tokens_in + (m.avg_tokens_out ?? 0) : runCount ? agent.total_tokens / runCount : 0)],
      ["Avg duration", duration(m.avg_duration_ms ?? (runCount ? agent.total_duration_ms / runCount : 0))],
      ["Errors", errors(agent.error_count)],
      ["Last activity", ago(agent.last_activity), agent.created_at ? `first seen ${when(agent.created_at)}` : null],
    ]);
    const rows = runs.items.map((r) => [
      el("a", { href: `#/run/${enc(r.run_id)}`, class: "run-name", title: r.run_id }, runLabel(r)),
      statusBadge(r.status), when(r.started_at ?? r.created_at), duration(r.total_duration_ms), count(r.event_count),
      tokens(r), money(r.total_cost), errors(r.error_count),
    ]);
    const filter = el("form", { class: "filters", "data-action": "filter-runs", "aria-label": "filter runs" },
      el("label", {}, "Status ",
        el("select", { name: "status", "data-action": "filter-runs" },
          el("option", { value: "" }, "any"),
          ...STATUSES.map((s) => el("option", { value: s, selected: s === status }, s)))));
    const activity = timeline && timeline.length
      ? section("Last 30 days",
        el("div", { class: "chart-box small", id: "agent-activity", "data-keep": "", "aria-label": `${name}: cost and runs per day, last 30 days` }))
      : null;
    return {
      title: name,
      crumbs: [el("a", { href: "#/" }, "Agents"), " / ", el("span", {}, name)],
      content: el("div", { class: "page" },
        el("div", { class: "page-head" }, el("h1", {}, name),
          el("div", { class: "actions" },
            el("a", { class: "button", href: query("#/search", { agent: name }) }, "Search its events"),
            el("a", { class: "button", href: query("#/sessions", { agent: name }) }, "Its sessions"),
            el("button", { type: "button", class: "danger", "data-action": "delete-agent", "data-agent": name }, "Delete agent…"))),
        overview,
        activity,
        section("Runs", filter,
          table(["Run", "Status", "Started", "Duration", "Events", "Tokens", "Cost", "Errors"], rows,
            { keys: runs.items.map((r) => r.run_id), empty: status ? `No ${status} run.` : "This agent has no runs." }),
          pager(route, offset, LIMIT, runs.total, "runs"))),
    };
  },
  after({ timeline }) {
    const host = document.getElementById("agent-activity");
    if (!host || !timeline) return;
    const [c1, c2] = palette();
    chart(host, {
      type: "bar",
      data: {
        labels: timeline.map((d) => d.date),
        datasets: [
          { label: "Cost ($)", data: timeline.map((d) => d.cost), backgroundColor: c1, yAxisID: "cost" },
          { label: "Runs", type: "line", data: timeline.map((d) => d.runs), borderColor: c2, backgroundColor: c2, yAxisID: "runs", pointRadius: timeline.length < 3 ? 3 : 0 },
        ],
      },
      options: { scales: { x: dayAxis(), cost: { position: "left", beginAtZero: true }, runs: { position: "right", beginAtZero: true, grid: { display: false }, ticks: { precision: 0 } } } },
    });
  },
};
