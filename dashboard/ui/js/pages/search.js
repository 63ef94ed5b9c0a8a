// Search: the backend's full-text search over every event, with filters (agent, type, time
// range) in the URL; each hit links to its run with the event selected.
import { el } from "../dom.js";
import { enc, list, query } from "../api.js";
import { count, money, runLabel, text, when, utcDay } from "../format.js";
import { icon, iconKind, offsetOf, pager } from "../ui.js";
import { eventName } from "./run.js";

const LIMIT = 50;
export const EVENT_TYPES = ["llm_call", "tool_call", "agent_start", "agent_end", "node_execution", "chain_start",
  "chain_end", "error"];

const FIELDS = ["q", "agent", "type", "since", "until"];

function filtersOf(routeQuery) {
  const f = {};
  for (const k of FIELDS) f[k] = (routeQuery.get(k) || "").trim();
  return f;
}

export const searchPage = {
  async load(route) {
    const f = filtersOf(route.query);
    const offset = offsetOf(route);
    const [agents, hits] = await Promise.all([
      list("/api/agents?limit=500", "agents"),
      FIELDS.some((k) => f[k])
        ? list(query("/api/events", {
          q: f.q, agent: f.agent, type: f.type, since: f.since,
          until: f.until ? utcDay(new Date(`${f.until}T00:00:00Z`), 1) : "", limit: LIMIT, offset,
        }), "events")
        : null,
    ]);
    return { f, offset, agents: agents.items.map((a) => a.name), hits };
  },
  view({ f, offset, agents, hits }, route) {
    const form = el("form", { class: "search-form", role: "search", "data-action": "search" },
      el("label", { class: "grow" }, "Text ", el("input", { type: "search", name: "q", value: f.q, placeholder: "a word in a prompt, an output, an error…", autocomplete: "off" })),
      el("label", {}, "Agent ", el("input", { name: "agent", value: f.agent, list: "agent-names", size: 14, placeholder: "any", autocomplete: "off" }),
        el("datalist", { id: "agent-names" }, ...agents.map((a) => el("option", { value: a })))),
      el("label", {}, "Type ", el("input", { name: "type", value: f.type, list: "event-types", size: 12, placeholder: "any" }),
        el("datalist", { id: "event-types" }, ...EVENT_TYPES.map((t) => el("option", { value: t })))),
      el("label", {}, "From ", el("input", { type: "date", name: "since", value: f.since })),
      el("label", {}, "to ", el("input", { type: "date", name: "until", value: f.until })),
      el("button", { type: "submit" }, "Search"));
    let results;
    if (!hits) results = el("p", { class: "muted" }, "Search every event's prompt, completion, tool input and output, error and names. Three characters or more find any part of a word.");
    else if (!hits.items.length) results = el("p", { class: "muted empty" }, "No event matches.");
    else {
      results = el("div", {},
        el("ol", { class: "hits" }, ...hits.items.map((e) => hit(e, f.q))),
        pager(route, offset, LIMIT, hits.total, "events"));
    }
    return {
      title: f.q ? `Search: ${f.q}` : "Search",
      crumbs: [el("span", {}, "Search")],
      content: el("div", { class: "page" }, el("div", { class: "page-head" }, el("h1", {}, "Search")), form,
        hits ? el("p", { class: "muted", role: "status" }, `${count(hits.total)} events found`) : null, results),
    };
  },
};

// The text around the first match, with the match marked.
function snippet(e, q) {
  const haystack = text(e.data).replace(/\s+/g, " ");
  if (!q) return haystack.slice(0, 160);
  const at = haystack.toLowerCase().indexOf(q.toLowerCase());
  if (at < 0) return haystack.slice(0, 160);
  const start = Math.max(0, at - 60);
  return [start > 0 ? "…" : "", haystack.slice(start, at), el("mark", {}, haystack.slice(at, at + q.length)),
    haystack.slice(at + q.length, at + q.length + 100), "…"];
}

function hit(e, q) {
  const href = query(`#/run/${enc(e.run_id)}`, { event: e.event_id });
  return el("li", { class: e.error ? "hit bad" : "hit", "data-key": e.event_id },
    el("div", { class: "hit-head" }, icon(e.error ? "error" : iconKind(e.event_type)),
      el("a", { href, class: "hit-link" }, eventName(e)), el("span", { class: "event-type" }, e.event_type),
      el("span", { class: "muted" }, " in ", el("a", { href: `#/agent/${enc(e.agent_name)}` }, e.agent_name), " / ",
        el("a", { href: `#/run/${enc(e.run_id)}` }, runLabel(e))),
      e.cost ? el("span", { class: "muted" }, money(e.cost)) : null,
      el("time", { datetime: e.timestamp, class: "muted" }, when(e.timestamp))),
    el("p", { class: "snippet" }, snippet(e, q)));
}
