// The graph of a LangGraph run: its nodes and edges as the SDK recorded them (the trace's
// `graph_structure`), laid out top to bottom from the entry, each node showing how often it ran
// and whether it failed; a node links to its last execution's event. A run without a recorded
// structure but with node executions gets the path it took.
import { el } from "../dom.js";
import { count, duration } from "../format.js";

const NS = "http://www.w3.org/2000/svg";
const W = 168;
const H = 44;
const GAP_X = 28;
const GAP_Y = 64;

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined && v !== false) node.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  return node;
}

const nodeName = (e) => e.data && typeof e.data === "object" ? e.data.node_name : undefined;

// { nodes: [name], edges: [{from, to, conditional}], runs: {name: [event]}, recorded } or null.
export function graphOf(trace, events) {
  const runs = {};
  for (const e of events) {
    const name = e.event_type === "node_execution" && nodeName(e);
    if (name) (runs[name] ||= []).push(e);
  }
  const structure = trace && trace.graph_structure;
  if (structure && Array.isArray(structure.nodes) && structure.nodes.length) {
    const nodes = [...structure.nodes];
    const edges = (structure.edges || []).filter((e) => e && e.from != null && e.to != null)
      .map((e) => ({ from: String(e.from), to: String(e.to), conditional: e.type === "conditional" || !!e.conditional }));
    for (const e of edges) for (const n of [e.from, e.to]) if (!nodes.includes(n)) nodes.push(n);
    const entry = structure.entry_point || (nodes.includes("__start__") ? "__start__" : null);
    return { nodes, edges, runs, entry, recorded: true };
  }
  const order = events.filter((e) => e.event_type === "node_execution" && nodeName(e)).map(nodeName);
  if (!order.length) return null;
  const nodes = [...new Set(order)];
  const edges = [];
  for (let i = 1; i < order.length; i++) {
    if (!edges.some((e) => e.from === order[i - 1] && e.to === order[i])) edges.push({ from: order[i - 1], to: order[i] });
  }
  return { nodes, edges, runs, entry: order[0], recorded: false };
}

// Layers by the longest path from the entry, so that every edge points down; an edge that closes
// a loop (found by a walk from the entry) is left out of that and drawn back up. Nodes the entry
// does not reach go last.
function layout(graph) {
  const roots = graph.entry && graph.nodes.includes(graph.entry) ? [graph.entry]
    : graph.nodes.filter((n) => !graph.edges.some((e) => e.to === n));
  const back = new Set();
  const state = new Map(); // node -> "open" while walked below, "done" after
  const walk = (n) => {
    state.set(n, "open");
    graph.edges.forEach((e, i) => {
      if (e.from !== n) return;
      if (state.get(e.to) === "open") back.add(i);
      else if (!state.has(e.to)) walk(e.to);
    });
    state.set(n, "done");
  };
  roots.forEach((n) => { if (!state.has(n)) walk(n); });
  const depth = new Map(roots.map((n) => [n, 0]));
  for (let round = 0; round < graph.nodes.length; round++) {
    graph.edges.forEach((e, i) => {
      if (!back.has(i) && depth.has(e.from) && (depth.get(e.to) ?? -1) < depth.get(e.from) + 1) depth.set(e.to, depth.get(e.from) + 1);
    });
  }
  const deepest = Math.max(0, ...depth.values());
  for (const n of graph.nodes) if (!depth.has(n)) depth.set(n, deepest + 1);
  const layers = [];
  for (const n of graph.nodes) (layers[depth.get(n)] ||= []).push(n);
  const firstRun = (n) => { const r = graph.runs[n]; return r ? new Date(r[0].timestamp).getTime() : Infinity; };
  const widest = Math.max(...layers.map((l) => (l || []).length));
  const width = widest * W + (widest - 1) * GAP_X + 40;
  const at = new Map();
  layers.forEach((layer, y) => {
    (layer || []).sort((a, b) => firstRun(a) - firstRun(b) || a.localeCompare(b));
    const span = layer.length * W + (layer.length - 1) * GAP_X;
    layer.forEach((n, i) => at.set(n, { x: (width - span) / 2 + i * (W + GAP_X), y: 20 + y * (H + GAP_Y) }));
  });
  return { at, width, height: 40 + layers.length * (H + GAP_Y) - GAP_Y };
}

export function graphView(graph, run, selectedId, link) {
  const { at, width, height } = layout(graph);
  // The edges the run went along: between nodes that ran one after the other, from the start
  // to the first, from the last to the end.
  const order = Object.values(graph.runs).flat().sort((a, b) => new Date(a.timestamp) - new Date(b.timestamp)).map(nodeName);
  const steps = new Set(order.slice(1).map((n, i) => `${order[i]}\u0000${n}`));
  if (order.length) {
    steps.add(`${graph.entry}\u0000${order[0]}`);
    steps.add(`${order[order.length - 1]}\u0000__end__`);
  }
  let bends = 0;
  const edges = graph.edges.map((e) => {
    const a = at.get(e.from);
    const b = at.get(e.to);
    const x1 = a.x + W / 2;
    const y1 = a.y + H;
    const x2 = b.x + W / 2;
    const y2 = b.y;
    let d;
    if (y2 > y1 && y2 - y1 <= GAP_Y + 1) d = `M${x1},${y1} C${x1},${y1 + GAP_Y / 2} ${x2},${y2 - GAP_Y / 2} ${x2},${y2}`;
    else {
      // Past other layers, or back up a loop: out to the right, around the nodes between.
      const out = 40 + 18 * bends++;
      d = `M${a.x + W},${a.y + H / 2} C${a.x + W + out},${a.y + H / 2} ${b.x + W + out},${b.y + H / 2} ${b.x + W},${b.y + H / 2}`;
    }
    const taken = steps.has(`${e.from}\u0000${e.to}`);
    return s("path", { d, class: `edge${e.conditional ? " conditional" : ""}${taken ? " taken" : ""}`, "marker-end": "url(#arrow)" });
  });
  const nodes = graph.nodes.map((n) => {
    const { x, y } = at.get(n);
    const runs = graph.runs[n] || [];
    const failed = runs.some((e) => e.error);
    const last = runs[runs.length - 1];
    const selected = runs.some((e) => e.event_id === selectedId);
    const cls = `node${runs.length ? " ran" : ""}${failed ? " failed" : ""}${selected ? " selected" : ""}${n.startsWith("__") ? " terminal" : ""}`;
    const spent = runs.reduce((t, e) => t + (e.duration_ms || 0), 0);
    const note = runs.length ? `ran ${runs.length}×${spent ? ` · ${duration(spent)}` : ""}${failed ? " · failed" : ""}` : n.startsWith("__") ? "" : "not run";
    const box = s("g", { class: cls, transform: `translate(${x},${y})`, "data-node": n },
      s("rect", { width: W, height: H, rx: 8 }),
      s("text", { x: W / 2, y: note ? 18 : 27, "text-anchor": "middle", class: "node-name" }, n.length > 22 ? `${n.slice(0, 21)}…` : n),
      note ? s("text", { x: W / 2, y: 34, "text-anchor": "middle", class: "node-note" }, note) : null,
      s("title", {}, `${n}${runs.length ? `: ran ${runs.length} times` : ""}`));
    return last ? s("a", { href: link({ event: last.event_id }), "aria-label": `${n}, ran ${runs.length} times${failed ? ", failed" : ""}` }, box) : box;
  });
  const path = Object.values(graph.runs).flat().sort((a, b) => new Date(a.timestamp) - new Date(b.timestamp));
  return el("div", { class: "graph" },
    el("p", { class: "muted" }, graph.recorded
      ? `${count(graph.nodes.length)} nodes and ${count(graph.edges.length)} edges, as LangGraph described the graph; the nodes that ran are filled.`
      : "The path the run took through its graph nodes (the SDK recorded no graph structure)."),
    el("div", { class: "graph-canvas" },
      s("svg", { viewBox: `0 0 ${width + 80} ${height}`, width: width + 80, height, role: "img", "aria-label": `graph of run ${run.run_id}` },
        s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
          s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }))),
        ...edges, ...nodes)),
    path.length ? el("div", { class: "path-box" }, el("h3", {}, "Path taken"),
      el("ol", { class: "path" }, ...path.map((e) => el("li", { class: e.error ? "bad" : null },
        el("a", { href: link({ event: e.event_id }) }, nodeName(e)), e.duration_ms ? el("small", { class: "muted" }, ` ${duration(e.duration_ms)}`) : "")))) : null);
}
