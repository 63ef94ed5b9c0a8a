// Metrics over a time range: summary cards, cost and tokens per day, activity, runs, cost and
// errors per agent, top agents, cost per model, latency percentiles (latency.js). Every number
// and day bucket is the backend's; the range is `days` (7, 14, 30, 60, 90) or a custom `since`..`until` (dates, both included).
import { el } from "../dom.js";
import { get, query } from "../api.js";
import { count, duration, errors, money, utcDay } from "../format.js";
import { cards, section, table } from "../ui.js";
import { chart, dayAxis, loadChartJs, palette } from "../charts.js";
import { drawLatency, latencyView, loadLatency } from "./latency.js";

export const PRESETS = [7, 14, 30, 60, 90];
const DEFAULT_DAYS = 30;
const TOP = 10;

// The range of the URL as the backend's parameters: `since` inclusive, `until` exclusive.
export function rangeOf(routeQuery) {
  const valid = (d) => /^\d{4}-\d{2}-\d{2}$/.test(d || "") && !Number.isNaN(Date.parse(d));
  const since = routeQuery.get("since");
  const until = routeQuery.get("until");
  if (valid(since) && (!until || valid(until)) && (!until || until >= since)) {
    const end = until ? new Date(`${until}T00:00:00Z`) : null;
    return { custom: true, since, until: until || "", params: { since, until: end ? utcDay(end, 1) : null } };
  }
  const days = PRESETS.includes(Number(routeQuery.get("days"))) ? Number(routeQuery.get("days")) : DEFAULT_DAYS;
  // The same first day for every route: the timelines' last `days` UTC days, today included.
  return { custom: false, days, since: utcDay(new Date(), 1 - days), until: "", params: { since: utcDay(new Date(), 1 - days) } };
}

export const metricsPage = {
  async load(route) {
    const range = rangeOf(route.query);
    const p = range.params;
    const [summary, cost, tokensByDay, activity, agents, models, latency] = await Promise.all([
      get(query("/api/metrics/summary", p)),
      get(query("/api/metrics/cost-timeline", p)),
      get(query("/api/metrics/tokens-timeline", p)),
      get(query("/api/metrics/timeline", p)),
      get(query("/api/metrics/agents-comparison", p)),
      get(query("/api/metrics/models", p)),
      loadLatency(p),
      loadChartJs(),
    ]);
    return { range, summary, cost, tokensByDay, activity, agents, models, latency };
  },
  view({ range, summary: s, cost, tokensByDay, activity, agents, models, latency }) {
    const avgTokens = (s.avg_tokens_in_per_run ?? 0) + (s.avg_tokens_out_per_run ?? 0);
    const span = range.custom ? `${range.since} to ${range.until || "today"}` : `the last ${range.days} days`;
    const chartBox = (id, label) => el("div", { class: "chart-box", id, "data-keep": "", "aria-label": label });
    // The numbers behind a chart, for reading exactly and for screen readers.
    const numbers = (headers, rows) => el("details", { class: "numbers" }, el("summary", {}, "Numbers"),
      table(headers, rows, { empty: "No day in this range." }));
    const agentLink = (name) => el("a", { href: `#/agent/${encodeURIComponent(name)}` }, name);
    return {
      title: "Metrics",
      crumbs: [el("span", {}, "Metrics")],
      content: el("div", { class: "page metrics" },
        el("div", { class: "page-head" },
          el("div", {}, el("h1", {}, "Metrics"), el("p", { class: "muted", id: "range-note" }, `All agents, ${span} (UTC days).`)),
          rangePicker(range)),
        cards([
          ["Agents", count(s.total_agents)], ["Runs", count(s.total_runs)], ["Events", count(s.total_events)],
          ["Cost", money(s.total_cost)], ["Avg cost / run", money(s.avg_cost_per_run)],
          ["Tokens", count(s.total_tokens ?? (s.total_tokens_in ?? 0) + (s.total_tokens_out ?? 0)),
            `${count(s.total_tokens_in)} in / ${count(s.total_tokens_out)} out`],
          ["Avg tokens / run", count(avgTokens)], ["Errors", errors(s.error_count)],
        ], "cards metric-cards"),
        el("div", { class: "grid2" },
          section("Cost over time", chartBox("chart-cost", "cost per day and cumulative cost"),
            numbers(["Day", "Cost", "Cumulative"], cost.map((d) => [d.date, money(d.cost), money(d.cumulative_cost)]))),
          section("Tokens over time", chartBox("chart-tokens", "tokens in and out per day"),
            numbers(["Day", "In", "Out"], tokensByDay.map((d) => [d.date, count(d.tokens_in), count(d.tokens_out)])))),
        section("Runs and errors per day", chartBox("chart-activity", "runs started, LLM calls and errors per day"),
          numbers(["Day", "Runs started", "LLM calls", "Errors"], activity.map((d) => [d.date, count(d.runs), count(d.llm_calls), errors(d.errors)]))),
        el("div", { class: "grid3" },
          section("Runs per agent", chartBox("chart-agent-runs", "runs per agent")),
          section("Cost per agent", chartBox("chart-agent-cost", "cost per agent")),
          section("Errors per agent", chartBox("chart-agent-errors", "errors per agent"))),
        el("div", { class: "grid2" },
          section("Top agents by cost", table(["Agent", "Cost"],
            (s.top_agents_by_cost || []).map((a) => [agentLink(a.agent_name), money(a.cost)]), { empty: "No cost in this range." })),
          section("Top agents by runs", table(["Agent", "Runs"],
            (s.top_agents_by_runs || []).map((a) => [agentLink(a.agent_name), count(a.runs)]), { empty: "No run in this range." }))),
        el("div", { class: "grid2" },
          section("Cost per model", chartBox("chart-models", "cost per model"),
            table(["Model", "Calls", "Tokens", "Cost", "Avg latency", "Errors"], models.map((m) => [
              el("code", {}, m.model ?? "unknown"), count(m.calls), count(m.total_tokens), money(m.cost),
              duration(m.avg_latency_ms), errors(m.errors)]), { empty: "No LLM call in this range.", keys: models.map((m) => m.model) })),
          section("Agent comparison", table(["Agent", "Runs", "Cost", "Avg cost / run", "Tokens", "Errors"],
            agents.map((a) => [agentLink(a.agent_name), count(a.runs), money(a.cost), money(a.avg_cost_per_run),
              count(a.total_tokens), errors(a.errors)]), { empty: "No agent was active in this range.", keys: agents.map((a) => a.agent_name) }))),
        latencyView(latency, chartBox),
      ),
    };
  },
  after({ cost, tokensByDay, activity, agents, models, latency }) {
    const [c1, c2, c3, c4, c5, c6] = palette();
    const bad = getComputedStyle(document.documentElement).getPropertyValue("--bad").trim();
    const days = (rows) => rows.map((d) => d.date ?? String(d.timestamp).slice(0, 10));
    const dot = (rows) => (rows.length < 3 ? 3 : 0);
    const money$ = { ticks: { callback: (v) => `$${v}` }, beginAtZero: true };
    const whole = { beginAtZero: true, ticks: { precision: 0 } };
    chart(byId("chart-cost"), {
      type: "bar",
      data: {
        labels: days(cost),
        datasets: [
          { label: "Cost per day", data: cost.map((d) => d.cost), backgroundColor: c1, yAxisID: "y" },
          { label: "Cumulative", type: "line", data: cost.map((d) => d.cumulative_cost), borderColor: c2, backgroundColor: c2, yAxisID: "total", pointRadius: dot(cost) },
        ],
      },
      options: { scales: { x: dayAxis(), y: { ...money$, position: "left" }, total: { ...money$, position: "right", grid: { display: false } } } },
    });
    chart(byId("chart-tokens"), {
      type: "bar",
      data: {
        labels: days(tokensByDay),
        datasets: [
          { label: "Tokens in", data: tokensByDay.map((d) => d.tokens_in), backgroundColor: c3, stack: "t" },
          { label: "Tokens out", data: tokensByDay.map((d) => d.tokens_out), backgroundColor: c4, stack: "t" },
        ],
      },
      options: { scales: { x: dayAxis({ stacked: true }), y: { ...whole, stacked: true } } },
    });
    chart(byId("chart-activity"), {
      type: "bar",
      data: {
        labels: days(activity),
        datasets: [
          { label: "Runs started", data: activity.map((d) => d.runs), backgroundColor: c1, yAxisID: "y" },
          { label: "LLM calls", data: activity.map((d) => d.llm_calls), backgroundColor: c5, yAxisID: "y" },
          { label: "Errors", type: "line", data: activity.map((d) => d.errors), borderColor: bad, backgroundColor: bad, yAxisID: "y", pointRadius: dot(activity) },
        ],
      },
      options: { scales: { x: dayAxis(), y: whole } },
    });
    const top = (key) => [...agents].sort((a, b) => (b[key] ?? 0) - (a[key] ?? 0)).slice(0, TOP);
    const perAgent = (id, key, label, colour, scale) => {
      const rows = top(key);
      chart(fitted(id, rows.length), {
        type: "bar",
        data: { labels: rows.map((a) => a.agent_name), datasets: [{ label, data: rows.map((a) => a[key] ?? 0), backgroundColor: colour, maxBarThickness: 26 }] },
        options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: scale, y: {} } },
      });
    };
    perAgent("chart-agent-runs", "runs", "Runs", c1, whole);
    perAgent("chart-agent-cost", "cost", "Cost", c2, money$);
    perAgent("chart-agent-errors", "errors", "Errors", bad, whole);
    const topModels = models.slice(0, TOP);
    chart(fitted("chart-models", topModels.length), {
      type: "bar",
      data: { labels: topModels.map((m) => m.model ?? "unknown"), datasets: [{ label: "Cost", data: topModels.map((m) => m.cost), backgroundColor: c6, maxBarThickness: 26 }] },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: money$, y: {} } },
    });
    drawLatency(latency);
  },
};

function byId(id) { return document.getElementById(id); }

// A bar per row: the chart as tall as its rows need.
function fitted(id, rows) {
  const host = byId(id);
  host.style.height = `${Math.min(300, Math.max(120, 50 + 32 * rows))}px`;
  return host;
}


function rangePicker(range) {
  return el("div", { class: "range", role: "group", "aria-label": "time range" },
    ...PRESETS.map((d) => el("a", { class: "button", href: `#/metrics?days=${d}`, "aria-pressed": !range.custom && range.days === d ? "true" : "false" }, `${d}d`)),
    el("form", { class: "custom-range", "data-action": "custom-range", "aria-label": "custom range" },
      el("label", {}, "From ", el("input", { type: "date", name: "since", value: range.custom ? range.since : "", required: true })),
      el("label", {}, "to ", el("input", { type: "date", name: "until", value: range.custom ? range.until : "" })),
      el("button", { type: "submit", "aria-pressed": range.custom ? "true" : "false" }, "Apply")));
}
