// Dashboard: what the server really runs and how fast, from /performance_info, refreshed while shown.

import { api, apiJson } from "./api.js";
import { drawChart } from "./chart.js";

const $ = (id) => document.getElementById(id);
const PERIOD_S = 2;
const KEEP = 90; // points on the chart: three minutes

/** Tests read it as window.ttspilot.dashboard. */
export const state = { points: [], info: null, benchmark: null, timer: null };

function text(id, value) {
  $(id).textContent = value;
}

function uptime(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${Math.floor(seconds % 60)} s` : `${seconds.toFixed(0)} s`;
}

function percentile(summary, digits) {
  return summary ? `${summary.p50.toFixed(digits)} / ${summary.p95.toFixed(digits)}` : "–";
}

function show(info) {
  const config = info.effective_config;
  const pipeline = info.pipeline;
  const stats = info.stats;
  text("dash-tier", config.tier);
  text("dash-engine", `${config.engine} on ${config.device}, ${config.sample_rate} Hz, ${config.voices} voice(s)`);
  $("dash-flags").replaceChildren(...Object.entries(config.flags).map(([flag, flagState]) => {
    const item = document.createElement("li");
    item.className = flagState.active ? "on" : "off";
    item.title = flagState.reason;
    item.textContent = flagState.active ? `${flag}: active` : `${flag}: off (${flagState.reason})`;
    return item;
  }));
  text("dash-providers", `providers: ${config.providers.join(", ") || "–"}`);
  text("dash-pool", `${config.trt_concurrent} × ${config.cpu_threads ?? "?"}`);
  text("dash-scheduling", `sessions × threads each; ${pipeline.workers} worker(s), scheduling ${pipeline.scheduling}`);
  const hw = info.hardware;
  text("dash-hardware", `${hw.cpu_cores} CPU cores, ${hw.ram_available_gb} of ${hw.ram_total_gb} GB RAM free; `
    + `this server uses ${hw.process_rss_mb} MB`);
  text("dash-uptime", uptime(stats.uptime_s));
  text("dash-requests", `${stats.requests_total} synthesis requests`);
  text("dash-admission", `${pipeline.admitted} / ${pipeline.max_admitted} in flight`);
  text("dash-admission-more", `${pipeline.refused} refused with 503; ${pipeline.queued_segments} segment(s) queued; `
    + `memory ${pipeline.memory_reserved_mb} of ${pipeline.memory_budget_mb} MB reserved`);
  text("dash-latency", `RTF p50 / p95: ${percentile(stats.rtf, 3)}; first audio p50 / p95: `
    + `${percentile(stats.time_to_first_audio_s, 3)} s; streams stalled: ${stats.streams_stalled}`);
}

function addPoint(info) {
  const stats = info.stats;
  const last = state.points.at(-1);
  const rps = last ? (stats.requests_total - last.requests) / Math.max(info.time - last.time, 1e-3) : null;
  state.points.push({
    time: info.time, requests: stats.requests_total, rps,
    rtf50: stats.rtf?.p50 ?? null, rtf95: stats.rtf?.p95 ?? null,
    ttfa50: stats.time_to_first_audio_s?.p50 ?? null, ttfa95: stats.time_to_first_audio_s?.p95 ?? null,
  });
  state.points.splice(0, state.points.length - KEEP);
  const series = (key) => state.points.map((point) => point[key]);
  drawChart($("chart"), [
    { title: "RTF (lower is faster)", unit: "", lines: [
      { name: "p50", color: "#2563eb", values: series("rtf50") }, { name: "p95", color: "#dc2626", values: series("rtf95") }] },
    { title: "time to first audio", unit: " s", lines: [
      { name: "p50", color: "#2563eb", values: series("ttfa50") }, { name: "p95", color: "#dc2626", values: series("ttfa95") }] },
    { title: "requests per second", unit: "", lines: [{ name: "req/s", color: "#059669", values: series("rps") }] },
  ]);
  $("chart").dataset.points = String(state.points.length);
}

async function refresh() {
  try {
    state.info = await apiJson("/performance_info");
    show(state.info);
    addPoint(state.info);
  } catch (error) {
    text("dash-admission-more", `could not refresh: ${error.message}`);
  }
}

const BENCH_COLUMNS = [
  ["configuration", "configuration"], ["tier", "tier"], ["status", "status"], ["rtf_median", "RTF med"],
  ["rtf_p90", "RTF p90"], ["first_audio_s", "first audio s"], ["peak_rss_mb", "RSS MB"], ["quality", "quality"],
  ["grade", "grade"],
];

function cellText(value) {
  return typeof value === "number" ? Number(value.toPrecision(3)).toString() : value ?? "–";
}

async function loadBenchmark() {
  const box = $("benchmark");
  const response = await api("/benchmark/latest");
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    box.replaceChildren(Object.assign(document.createElement("p"), {
      className: "muted", textContent: body.message || `no benchmark (${response.status})`,
    }));
    return;
  }
  const bench = await response.json();
  state.benchmark = bench;
  const throughput = Object.keys(bench.rows[0] || {}).filter((key) => key.startsWith("throughput_at_"));
  const columns = [...BENCH_COLUMNS.slice(0, 6), ...throughput.map((key) => [key, `audio s/s @${key.slice(14)}`]),
    ...BENCH_COLUMNS.slice(6)];
  const table = document.createElement("table");
  table.id = "benchmark-table";
  table.createTHead().insertRow().append(...columns.map(([, label]) => Object.assign(
    document.createElement("th"), { textContent: label })));
  const body = table.createTBody();
  for (const row of bench.rows) {
    const tr = body.insertRow();
    for (const [key] of columns) tr.insertCell().textContent = cellText(row[key]);
  }
  const caption = document.createElement("p");
  const best = bench.recommendation;
  caption.textContent = `${bench.created || ""} — ${bench.folder}` + (best ? `; recommended: ${best.configuration}` : "");
  const parts = [caption, table];
  if (bench.chart) {
    const chart = await api(bench.chart);
    if (chart.ok) {
      const image = document.createElement("img");
      image.id = "benchmark-chart";
      image.alt = "benchmark chart: RTF and time to first audio per configuration";
      image.src = URL.createObjectURL(await chart.blob());
      parts.push(image);
    }
  }
  box.replaceChildren(...parts);
}

/** Refresh while the dashboard is shown; the benchmark is read once per showing. */
export function shown(visible) {
  clearInterval(state.timer);
  state.timer = null;
  if (!visible) return;
  refresh();
  loadBenchmark().catch((error) => { $("benchmark").textContent = `could not load: ${error.message}`; });
  state.timer = setInterval(refresh, PERIOD_S * 1000);
}

export function setUp() {
  text("dash-period", String(PERIOD_S));
}
