// How numbers, money, durations and times read on every page.
import { el } from "./dom.js";

const grouped = new Intl.NumberFormat("en-US");

export function count(n) { return grouped.format(Math.round(Number(n || 0))); }

export function money(n) {
  const value = Number(n || 0);
  return `$${value.toFixed(value !== 0 && Math.abs(value) < 0.01 ? 6 : 4)}`;
}

export function duration(ms) {
  const value = Number(ms || 0);
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60000) return `${(value / 1000).toFixed(1)} s`;
  if (value < 3600000) return `${Math.floor(value / 60000)} min ${Math.round((value % 60000) / 1000)} s`;
  return `${Math.floor(value / 3600000)} h ${Math.round((value % 3600000) / 60000)} min`;
}

export function when(ts) { return ts ? new Date(ts).toLocaleString("en-US") : "—"; }

// "3 min ago", with the exact time on hover.
export function ago(ts, now = Date.now()) {
  if (!ts) return "—";
  const seconds = Math.round((now - new Date(ts).getTime()) / 1000);
  const text = seconds < 45 ? "just now"
    : seconds < 3600 ? `${Math.round(seconds / 60)} min ago`
    : seconds < 86400 ? `${Math.round(seconds / 3600)} h ago`
    : seconds < 86400 * 45 ? `${Math.round(seconds / 86400)} days ago`
    : new Date(ts).toLocaleDateString("en-US");
  return el("time", { datetime: ts, title: when(ts) }, text);
}

// Total tokens, with the in/out split beside it when there is one.
export function tokens(x) {
  const split = x.tokens_in || x.tokens_out ? ` (${count(x.tokens_in)} in / ${count(x.tokens_out)} out)` : "";
  return el("span", { class: "tokens" }, count(x.total_tokens), el("small", { class: "muted" }, split));
}

export function errors(n) { return n ? el("span", { class: "errors" }, count(n)) : "0"; }

// A run is called by its name; its id when it has none.
export function runLabel(r) { return r.run_name || r.label || r.run_id; }

// An error as people read it: "RuntimeError: tool exploded".
export function errorText(error) {
  if (!error || error === true) return error ? "failed" : "";
  if (typeof error === "string") return error;
  if (typeof error === "object") {
    const message = error.message ?? error.error ?? error.detail;
    const type = error.type ?? error.error_type ?? error.name;
    if (message !== undefined) return type ? `${type}: ${text(message)}` : text(message);
    return JSON.stringify(error);
  }
  return String(error);
}

// Any value as text: strings as they are, the rest as indented JSON.
export function text(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// A UTC day, YYYY-MM-DD, `offset` days from `date`.
export function utcDay(date = new Date(), offset = 0) {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + offset))
    .toISOString().slice(0, 10);
}
