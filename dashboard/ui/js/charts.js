// Charts, drawn by Chart.js (npm, pinned in package-lock.json, served from the binary at
// /vendor/chart.umd.min.js). Loaded on the first page that has a chart, so the agents page
// never parses it. A chart lives in a `data-keep` host that `morph` leaves alone; `chart()`
// creates it once and afterwards only swaps its data, so a live update never redraws from blank.

let loading = null;

export function loadChartJs() {
  if (window.Chart) return Promise.resolve(window.Chart);
  loading ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/vendor/chart.umd.min.js";
    script.onload = () => resolve(window.Chart);
    script.onerror = () => { loading = null; reject(new Error("Chart.js could not be loaded from the dashboard")); };
    document.head.append(script);
  });
  return loading;
}

function color(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export const palette = () => [1, 2, 3, 4, 5, 6].map((i) => color(`--chart-${i}`));

function themed(options) {
  const ink = color("--muted");
  const grid = color("--line");
  const scales = {};
  for (const [id, scale] of Object.entries(options.scales || {})) {
    scales[id] = {
      ...scale,
      ticks: { color: ink, ...(scale.ticks || {}) },
      grid: { color: grid, ...(scale.grid || {}) },
      border: { color: grid },
      title: scale.title ? { color: ink, display: true, ...scale.title } : undefined,
    };
  }
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    ...options,
    scales,
    plugins: {
      ...(options.plugins || {}),
      legend: { labels: { color: color("--fg"), boxWidth: 12 }, ...((options.plugins || {}).legend || {}) },
    },
  };
}

// The chart in `host` (an element with `data-keep`), made or updated to show `config`
// ({type, data, options}): the same kind of chart keeps its canvas and gets the new data.
export function chart(host, config) {
  // A range with nothing in it says so over its (zero) chart rather than looking broken.
  const empty = !config.data.labels.length || config.data.datasets.every((d) => d.data.every((v) => !v));
  if (empty) host.setAttribute("data-empty", config.empty || "Nothing recorded in this range");
  else host.removeAttribute("data-empty");
  const Chart = window.Chart;
  let canvas = host.querySelector("canvas");
  const existing = canvas && Chart.getChart(canvas);
  if (existing && existing.config.type === config.type) {
    existing.data.labels = config.data.labels;
    config.data.datasets.forEach((dataset, i) => {
      if (existing.data.datasets[i]) Object.assign(existing.data.datasets[i], dataset);
      else existing.data.datasets.push(dataset);
    });
    existing.data.datasets.length = config.data.datasets.length;
    existing.options = themed(config.options || {});
    existing.update("none");
    return existing;
  }
  existing?.destroy();
  host.replaceChildren();
  canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", host.getAttribute("aria-label") || "chart");
  host.append(canvas);
  return new Chart(canvas, { ...config, options: themed(config.options || {}) });
}

// An axis of days that reads "Nov 3"; the labels (and tooltips) stay the backend's dates.
export function dayAxis(extra = {}) {
  return { ...extra, ticks: { maxRotation: 0, autoSkipPadding: 12, callback(value) { return shortDay(this.getLabelForValue(value)); } } };
}

function shortDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? date : d.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
}
