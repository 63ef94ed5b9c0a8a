// The agents, most recently active first, with their totals; paged.
import { el } from "../dom.js";
import { list, query } from "../api.js";
import { ago, count, errors, money, tokens } from "../format.js";
import { offsetOf, pager, table } from "../ui.js";

const LIMIT = 50;

export const agentsPage = {
  async load(route) {
    const offset = offsetOf(route);
    return { offset, ...(await list(query("/api/agents", { limit: LIMIT, offset }), "agents")) };
  },
  view({ items, total, offset }, route) {
    const rows = items.map((a) => [
      el("span", { class: "agent-cell" },
        el("a", { href: `#/agent/${encodeURIComponent(a.name)}` }, a.name),
        a.active_runs ? el("span", { class: "badge live", title: `${count(a.active_runs)} runs still running` }, "active") : null),
      count(a.run_count ?? a.total_runs), count(a.event_count ?? a.total_events), tokens(a), money(a.total_cost),
      money(a.avg_cost ?? (a.run_count ? a.total_cost / a.run_count : 0)), errors(a.error_count), ago(a.last_activity),
    ]);
    return {
      title: "Agents",
      crumbs: [el("span", {}, "Agents")],
      content: el("div", { class: "page" },
        el("div", { class: "page-head" }, el("h1", {}, "Agents"),
          el("a", { class: "button", href: "#/metrics" }, "Metrics →")),
        table(["Agent", "Runs", "Events", "Tokens", "Cost", "Avg cost / run", "Errors", "Last activity"], rows,
          { keys: items.map((a) => a.name), empty: "No agent has sent events yet. Point the SDK at this backend: observe.init(backend_url=…)" }),
        pager(route, offset, LIMIT, total, "agents")),
    };
  },
};
