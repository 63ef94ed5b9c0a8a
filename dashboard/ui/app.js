// gati dashboard: a hash-routed single page over the backend's API (proxied by this server).
// Every view has a URL: #/ (agents), #/metrics, #/agent/NAME, #/run/ID, #/search?q=...,
// #/sessions, #/session/ID
// Live updates fetch the page's data again every few seconds and change only what changed.
import { el, morph } from "./js/dom.js";
import { get, write, enc, query } from "./js/api.js";
import { count, money } from "./js/format.js";
import { icon } from "./js/ui.js";
import { agentsPage } from "./js/pages/agents.js";
import { agentPage } from "./js/pages/agent.js";
import { runPage, foldedOf, parentsOf } from "./js/pages/run.js";
import { metricsPage } from "./js/pages/metrics.js";
import { searchPage } from "./js/pages/search.js";
import { sessionPage, sessionsPage } from "./js/pages/sessions.js";

const REFRESH_MS = 5000;
const view = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
const statusBox = document.getElementById("status");

const ROUTES = [
  [/^\/?$/, agentsPage, "agents"],
  [/^\/agents$/, agentsPage, "agents"],
  [/^\/metrics$/, metricsPage, "metrics"],
  [/^\/agent\/([^/]+)$/, agentPage, "agents"],
  [/^\/run\/([^/]+)$/, runPage, "agents"],
  [/^\/search$/, searchPage, "search"],
  [/^\/sessions$/, sessionsPage, "sessions"],
  [/^\/session\/([^/]+)$/, sessionPage, "sessions"],
];

function currentRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, qs = ""] = hash.split("?");
  for (const [pattern, page, section] of ROUTES) {
    const m = path.match(pattern);
    if (m) return { path, page, section, args: m.slice(1).map(decodeURIComponent), query: new URLSearchParams(qs) };
  }
  return { path, page: null, query: new URLSearchParams(qs), args: [] };
}

// ---- rendering -------------------------------------------------------------------------------

let shown = { key: null, page: null, data: null, json: null };
let generation = 0;
let renders = 0;

// How many times the page has settled (drawn, or said why not): what a test waits for.
// The first one is also a performance mark, for dashboard/bench/page_load.py.
function settled() {
  document.body.dataset.rendered = String(++renders);
  if (renders === 1) performance.mark("gati-rendered");
}

function keyOf(route) { return route.page?.key ? route.page.key(route) : location.hash || "#/"; }

// Draws the current URL's page. `live`: a refresh of the same page, which changes nothing on
// screen when the backend's answer did not change.
async function render({ live = false } = {}) {
  const route = currentRoute();
  document.querySelectorAll("#nav a").forEach((a) => a.setAttribute("aria-current", a.dataset.section === route.section ? "page" : "false"));
  if (!route.page) {
    show(route, null, { title: "Not found", crumbs: [], content: el("p", {}, "There is no such page. ", el("a", { href: "#/" }, "See the agents.")) });
    return;
  }
  const key = keyOf(route);
  const mine = ++generation;
  let data = shown.data;
  let json = shown.json;
  if (live || key !== shown.key || !shown.data) {
    document.body.classList.add("busy");
    try {
      [data] = await Promise.all([route.page.load(route), live || key !== shown.key ? totals() : null]);
    } catch (e) {
      if (mine !== generation) return;
      document.body.classList.remove("busy");
      statusBox.textContent = e.message;
      statusBox.hidden = false;
      if (key !== shown.key) {
        shown = { key, page: null, data: null, json: null };
        view.replaceChildren(el("p", { class: "muted" }, e.status === 404 ? "Not found: it may have been deleted." : "Nothing to show."));
      }
      settled();
      return;
    }
    if (mine !== generation) return; // the user went elsewhere meanwhile
    document.body.classList.remove("busy");
    json = JSON.stringify(data);
    if (live && key === shown.key && json === shown.json) {
      statusBox.hidden = true;
      updated();
      settled();
      return;
    }
  }
  show(route, { key, data, json }, route.page.view(data, route));
}

function show(route, state, page) {
  const samePage = state && shown.page === route.page && shown.key === state.key;
  if (samePage) morph(view, like(view, page.content));
  else {
    view.replaceChildren(page.content);
    window.scrollTo(0, 0);
  }
  morph(crumbs, like(crumbs, ...page.crumbs));
  document.title = page.title ? `${page.title} · gati` : "gati";
  shown = state ? { ...state, page: route.page } : { key: null, page: null, data: null, json: null };
  statusBox.hidden = true;
  if (state && route.page.after) route.page.after(state.data, route);
  updated();
  settled();
}

// A copy of a fixed element of the page (its id and attributes) holding `children`, to morph into.
function like(node, ...children) {
  const copy = node.cloneNode(false);
  copy.append(...children.map((c) => (c instanceof Node ? c : String(c))));
  return copy;
}

// Again from the data already fetched: after a fold, a selection, a theme change.
function redraw() { render(); }

async function totals() {
  const s = await get("/api/summary");
  const box = document.getElementById("totals");
  morph(box, like(box, ...[["Agents", count(s.agents)], ["Runs", count(s.runs)], ["Events", count(s.events)],
    ["Tokens", count(s.total_tokens)], ["Cost", money(s.total_cost)]].map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))));
  document.getElementById("version").textContent = `gati ${s.version}`;
}

// ---- live updates ------------------------------------------------------------------------------

let live = localStorage.getItem("gati-live") !== "paused";

function updated() {
  const at = new Date();
  const stamp = document.getElementById("updated");
  stamp.setAttribute("datetime", at.toISOString());
  stamp.textContent = `updated ${at.toLocaleTimeString("en-US", { hour12: false })}`;
}

function showLive() {
  const button = document.getElementById("live");
  button.setAttribute("aria-pressed", live ? "true" : "false");
  button.querySelector(".label").textContent = live ? "Live" : "Paused";
  button.title = live ? `Updating every ${REFRESH_MS / 1000} s: click to pause` : "Paused: click to update live again";
}

setInterval(() => {
  if (live && document.visibilityState === "visible" && !document.querySelector("dialog[open]")) render({ live: true });
}, REFRESH_MS);
document.addEventListener("visibilitychange", () => {
  if (live && document.visibilityState === "visible") render({ live: true });
});

// ---- theme ---------------------------------------------------------------------------------------

const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

function theme() { return localStorage.getItem("gati-theme") || (systemDark.matches ? "dark" : "light"); }

function applyTheme() {
  const dark = theme() === "dark";
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  const button = document.getElementById("theme");
  button.setAttribute("aria-pressed", dark ? "true" : "false");
  button.replaceChildren(icon(dark ? "moon" : "sun"), el("span", { class: "label" }, "Dark mode"));
  button.title = localStorage.getItem("gati-theme") ? "Theme chosen here (click to switch)" : "Theme follows the system (click to switch)";
}

systemDark.addEventListener("change", () => { if (!localStorage.getItem("gati-theme")) { applyTheme(); redraw(); } });

// ---- dialogs -----------------------------------------------------------------------------------

// A modal question; resolves to the input's value (or true) when confirmed, null when not.
function ask({ title, message, confirm, danger = false, value = null }) {
  return new Promise((resolve) => {
    const dialog = el("dialog", { class: "ask", "aria-labelledby": "ask-title" },
      el("form", { method: "dialog" },
        el("h2", { id: "ask-title" }, title),
        message ? el("p", {}, message) : null,
        value !== null ? el("label", {}, "New name ", el("input", { name: "value", value, required: true, maxlength: 255, autocomplete: "off" })) : null,
        el("p", { class: "error-text", hidden: true }),
        // The confirming button first: Enter in the field submits with it. CSS shows it last.
        el("div", { class: "actions" },
          el("button", { value: "ok", type: "submit", class: danger ? "danger" : "primary" }, confirm),
          el("button", { value: "cancel", type: "submit", formnovalidate: true }, "Cancel"))));
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const ok = dialog.returnValue === "ok";
      const input = dialog.querySelector("input");
      dialog.remove();
      resolve(ok ? (input ? input.value.trim() : true) : null);
    });
    dialog.showModal();
    (dialog.querySelector("input") || dialog.querySelector("button.danger, button.primary")).focus();
  });
}

function flash(message) {
  const note = document.getElementById("flash");
  note.textContent = message;
  note.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { note.hidden = true; }, 6000);
}

async function failedWrite(e) {
  statusBox.textContent = e.message;
  statusBox.hidden = false;
}

// ---- what the user does --------------------------------------------------------------------------

const actions = {
  fold(target) {
    const closed = foldedOf(target.dataset.run);
    const id = target.dataset.event;
    if (closed.has(id)) closed.delete(id); else closed.add(id);
    redraw();
    // The toggle button is rebuilt in place by morph: keep the focus on it.
    document.querySelector(`button.fold[data-event="${CSS.escape(id)}"]`)?.focus();
  },
  "fold-all"(target) {
    const closed = foldedOf(target.dataset.run);
    closed.clear();
    if (target.dataset.open === "false" && shown.data?.trace) parentsOf(shown.data.trace.execution_tree).forEach((id) => closed.add(id));
    redraw();
  },
  async "delete-run"(target) {
    const { run, name, agent, events } = target.dataset;
    const yes = await ask({ title: `Delete run “${name}”?`, danger: true, confirm: "Delete run",
      message: `Its ${count(events)} events and totals are deleted from the backend. This cannot be undone.` });
    if (!yes) return;
    try {
      await write("DELETE", `/api/runs/${enc(run)}`);
      flash(`Deleted run “${name}”.`);
      location.hash = `#/agent/${enc(agent)}`;
    } catch (e) { failedWrite(e); }
  },
  async "delete-agent"(target) {
    const { agent } = target.dataset;
    const yes = await ask({ title: `Delete agent “${agent}”?`, danger: true, confirm: "Delete agent",
      message: "All its runs and events are deleted from the backend. This cannot be undone." });
    if (!yes) return;
    try {
      await write("DELETE", `/api/agents/${enc(agent)}`);
      flash(`Deleted agent “${agent}”.`);
      location.hash = "#/";
    } catch (e) { failedWrite(e); }
  },
  async "rename-run"(target) {
    const { run, name } = target.dataset;
    const next = await ask({ title: "Rename run", confirm: "Rename", value: name });
    if (!next || next === name) return;
    try {
      await write("PATCH", `/api/runs/${enc(run)}`, { new_run_name: next });
      flash(`Renamed “${name}” to “${next}”.`);
      render({ live: true });
    } catch (e) { failedWrite(e); }
  },
};

document.addEventListener("click", (event) => {
  if (event.target.closest(".skip")) {
    event.preventDefault();
    view.focus();
    return;
  }
  const target = event.target.closest("button[data-action]");
  if (target && actions[target.dataset.action]) {
    event.preventDefault();
    actions[target.dataset.action](target);
  }
});

// Forms put what they ask into the URL: the URL is the view.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const kind = form.dataset.action;
  if (!kind) return;
  event.preventDefault();
  const fields = Object.fromEntries(new FormData(form));
  if (kind === "search") location.hash = query("#/search", fields);
  if (kind === "custom-range") location.hash = query("#/metrics", { since: fields.since, until: fields.until });
  if (kind === "filter-runs") location.hash = query(`#/agent/${enc(currentRoute().args[0])}`, { status: fields.status });
});
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-action='filter-runs']");
  if (form) form.requestSubmit();
});

document.getElementById("live").addEventListener("click", () => {
  live = !live;
  localStorage.setItem("gati-live", live ? "live" : "paused");
  showLive();
  if (live) render({ live: true });
});
document.getElementById("theme").addEventListener("click", () => {
  localStorage.setItem("gati-theme", theme() === "dark" ? "light" : "dark");
  applyTheme();
  redraw();
});
// "/" jumps to the search box, as on most sites.
document.addEventListener("keydown", (event) => {
  if (event.key === "/" && !event.target.closest("input, textarea, select, [contenteditable]")) {
    event.preventDefault();
    document.getElementById("quick-search").focus();
  }
});

window.addEventListener("hashchange", () => render());
applyTheme();
showLive();
render();
