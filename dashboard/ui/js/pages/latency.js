// The metrics page's latency: p50, p95 and p99 of every LLM and tool call per UTC day (a chart),
// and per model and per tool (tables). Every percentile is the backend's (GET /api/metrics/latency).
import { el } from "../dom.js";
import { get, query } from "../api.js";
import { count, duration } from "../format.js";
import { section, table } from "../ui.js";
import { chart, dayAxis, palette } from "../charts.js";

const BY = ["agent", "model", "tool"];

// {agent, model, tool}: the route's answer by each, over the page's range.
export async function loadLatency(params) {
  const answers = await Promise.all(BY.map((by) => get(query("/api/metrics/latency", { ...params, by }))));
  return Object.fromEntries(BY.map((by, i) => [by, answers[i]]));
}

const ms = (v) => (v === null || v === undefined ? "—" : duration(v));

function percentiles(label, items, empty) {
  return table([label, "Calls", "p50", "p95", "p99"], items.map((s) => [
    el("code", {}, s.name), count(s.calls), ms(s.p50_ms), ms(s.p95_ms), ms(s.p99_ms)]),
  { empty, keys: items.map((s) => s.name) });
}

export function latencyView(latency, chartBox) {
  const all = latency.agent.total;
  const within = `within ${Math.round(latency.agent.relative_error * 100)}%`;
  return el("div", { class: "latency" },
    section("Latency per day", el("p", { class: "muted" }, `p50, p95 and p99 of every timed LLM and tool call (${within}).`),
      chartBox("chart-latency", "p50, p95 and p99 latency per day"),
      el("details", { class: "numbers" }, el("summary", {}, "Numbers"),
        table(["Day", "Calls", "p50", "p95", "p99"], all.days.map((d) => [d.date, count(d.calls), ms(d.p50_ms), ms(d.p95_ms), ms(d.p99_ms)]),
          { empty: "No day in this range." }))),
    el("div", { class: "grid2" },
      section("Latency per model", el("div", { id: "latency-models" }, percentiles("Model", latency.model.items, "No timed LLM call in this range."))),
      section("Latency per tool", el("div", { id: "latency-tools" }, percentiles("Tool", latency.tool.items, "No timed tool call in this range.")))));
}

export function drawLatency(latency) {
  const [c1, c2, , , c5] = palette();
  const days = latency.agent.total.days;
  // A day without calls is a gap, not a zero; its neighbours stay dots that can be seen alone.
  const line = (label, key, colour) => ({ label, data: days.map((d) => d[key]), borderColor: colour, backgroundColor: colour,
    pointRadius: 3, spanGaps: false });
  chart(document.getElementById("chart-latency"), {
    type: "line",
    empty: "No timed call in this range",
    data: { labels: days.map((d) => d.date), datasets: [line("p50", "p50_ms", c1), line("p95", "p95_ms", c5), line("p99", "p99_ms", c2)] },
    options: { scales: { x: dayAxis(), y: { beginAtZero: true, ticks: { callback: (v) => duration(v) } } } },
  });
}
