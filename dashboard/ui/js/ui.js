// Pieces several pages share: tables, cards, pagers, icons.
import { el, svg } from "./dom.js";
import { count } from "./format.js";

export function table(headers, rows, { empty = "Nothing recorded yet.", keys, caption } = {}) {
  if (rows.length === 0) return el("p", { class: "muted empty" }, empty);
  return el("table", {},
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map((cells, i) =>
      el("tr", { "data-key": keys ? keys[i] : null }, ...cells.map((c) => el("td", {}, c))))));
}

// Overview cards: [label, value, note?].
export function cards(items, cls = "cards") {
  return el("dl", { class: cls }, ...items.map(([label, value, note]) =>
    el("div", { class: "card" }, el("dt", {}, label), el("dd", {}, value), note ? el("small", {}, note) : null)));
}

// "1–50 of 1,234" with previous and next links, for lists the backend pages.
export function pager(route, offset, limit, total, label = "items") {
  if (total <= limit && offset === 0) return el("p", { class: "muted pager" }, `${count(total)} ${label}`);
  const at = (o) => {
    const q = new URLSearchParams(route.query);
    if (o > 0) q.set("offset", o); else q.delete("offset");
    const s = q.toString();
    return `#${route.path}${s ? `?${s}` : ""}`;
  };
  const last = Math.min(offset + limit, total);
  return el("nav", { class: "pager", "aria-label": `pages of ${label}` },
    offset > 0 ? el("a", { href: at(Math.max(0, offset - limit)), rel: "prev" }, "← Previous")
      : el("span", { class: "muted" }, "← Previous"),
    el("span", {}, `${count(total ? offset + 1 : 0)}–${count(last)} of ${count(total)} ${label}`),
    last < total ? el("a", { href: at(offset + limit), rel: "next" }, "Next →") : el("span", { class: "muted" }, "Next →"));
}

export function offsetOf(route) {
  const n = Number(route.query.get("offset") || 0);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

export function section(title, ...children) {
  return el("section", { class: "panel" }, el("h2", {}, title), ...children);
}

const path = (d) => `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${d}</svg>`;

// An icon per event type, so a tree reads at a glance.
const ICONS = {
  llm: path('<path d="M12 3l1.9 5.1L19 10l-5.1 1.9L12 17l-1.9-5.1L5 10l5.1-1.9z"/><path d="M19 17l.8 2.2L22 20l-2.2.8L19 23l-.8-2.2L16 20l2.2-.8z"/>'),
  tool: path('<path d="M14.7 6.3a1 1 0 0 0 0 1.4l1.6 1.6a1 1 0 0 0 1.4 0l3.8-3.8a6 6 0 0 1-7.9 7.9l-6.9 6.9a2.1 2.1 0 0 1-3-3l6.9-6.9a6 6 0 0 1 7.9-7.9z"/>'),
  start: path('<circle cx="12" cy="12" r="9"/><path d="M10 8l6 4-6 4z"/>'),
  end: path('<circle cx="12" cy="12" r="9"/><rect x="9" y="9" width="6" height="6"/>'),
  node: path('<circle cx="6" cy="6" r="2.5"/><circle cx="18" cy="6" r="2.5"/><circle cx="12" cy="18" r="2.5"/><path d="M7.5 8l3.5 8M16.5 8L13 16"/>'),
  chain: path('<path d="M10 13a5 5 0 0 0 7.5.5l3-3a5 5 0 0 0-7-7l-1.7 1.7"/><path d="M14 11a5 5 0 0 0-7.5-.5l-3 3a5 5 0 0 0 7 7l1.7-1.7"/>'),
  error: path('<circle cx="12" cy="12" r="9"/><path d="M12 7v6M12 16.5v.5"/>'),
  other: path('<circle cx="12" cy="12" r="3"/>'),
  chevron: path('<path d="M6 9l6 6 6-6"/>'),
  sun: path('<circle cx="12" cy="12" r="4"/><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4"/>'),
  moon: path('<path d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z"/>'),
};

export function iconKind(type) {
  if (/llm|chat|completion|generation/.test(type)) return "llm";
  if (/tool/.test(type)) return "tool";
  if (/error|exception/.test(type)) return "error";
  if (/node/.test(type)) return "node";
  if (/chain|step/.test(type)) return "chain";
  if (/_start$|^start/.test(type)) return "start";
  if (/_end$|^end/.test(type)) return "end";
  return "other";
}

export function icon(name, cls) { return svg(ICONS[name] || ICONS.other, cls || `icon icon-${name}`); }
