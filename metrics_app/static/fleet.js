// Fleet view: every host's GPUs, live from WS /ws/fleet (the latest record per host, GPU and metric
// at once, then each committed record). A row per host and GPU: current utilization, memory,
// temperature and power with a short sparkline each, the GPU's processes and how old its data is.
"use strict";

const FLEET_SPARK_POINTS = 60;
const FLEET_STALE_BOUND_SEC = 300; // the server's default FLEET_STALE_AFTER_SEC
const FLEET_COLUMNS = [
  ["utilization", "Utilization", (r) => r.gpuPercent, (v) => `${v.toFixed(0)} %`],
  ["memory", "Memory", (r) => (r.totalMiB ? (100 * r.usedMiB) / r.totalMiB : null),
    (v, r) => `${(r.usedMiB / 1024).toFixed(1)} / ${(r.totalMiB / 1024).toFixed(1)} GiB`],
  ["temperature", "Temperature", (r) => r.celsius, (v) => `${v.toFixed(0)} °C`],
  ["power", "Power", (r) => r.watts, (v) => `${v.toFixed(0)} W`],
];

const fleet = { gpus: new Map(), hosts: new Map(), records: 0, stream: null, dirty: false };
window.fleet = fleet; // read by the browser test

function fleetParams() { return new URLSearchParams(location.hash.slice(1)); }

function fleetGpu(record) {
  const hostname = record.hostname ?? ""; // a crawler that sent no hostname
  const key = `${hostname}\u0000${record.gpuIndex}`;
  let gpu = fleet.gpus.get(key);
  if (!gpu) {
    gpu = { key, hostname, index: record.gpuIndex, name: null, id: null, metrics: {},
            series: {}, processes: new Map(), lastMs: 0 };
    fleet.gpus.set(key, gpu);
  }
  return gpu;
}

// A host's usual interval: smoothed gap between two records of one key (as the server computes it).
function learnInterval(hostname, gapMs) {
  if (!(gapMs > 0)) return;
  const host = fleet.hosts.get(hostname) ?? { intervalMs: null };
  host.intervalMs = host.intervalMs == null ? gapMs : 0.8 * host.intervalMs + 0.2 * gapMs;
  fleet.hosts.set(hostname, host);
}

function staleAfterMs(hostname) {
  const interval = fleet.hosts.get(hostname)?.intervalMs;
  return Math.min(interval == null ? Infinity : 3 * interval, FLEET_STALE_BOUND_SEC * 1000);
}

function addRecord(record) {
  const t = Date.parse(record.timestamp);
  const gpu = fleetGpu(record);
  gpu.name = record.gpuName ?? gpu.name;
  gpu.id = record.gpuId ?? gpu.id;
  if (record.metric === "process") {
    const previous = gpu.processes.get(record.pid);
    if (previous && t <= previous.t) return;
    if (previous) learnInterval(gpu.hostname, t - previous.t);
    gpu.processes.set(record.pid, { t, usedMiB: record.usedMiB });
  } else {
    const previous = gpu.metrics[record.metric];
    if (previous && t <= previous.t) return; // an older record than the one shown
    if (previous) learnInterval(gpu.hostname, t - previous.t);
    gpu.metrics[record.metric] = { t, record };
    const column = FLEET_COLUMNS.find(([name]) => name === record.metric);
    if (column) {
      const series = (gpu.series[record.metric] ??= []);
      series.push(column[2](record));
      if (series.length > FLEET_SPARK_POINTS) series.shift();
    }
  }
  gpu.lastMs = Math.max(gpu.lastMs, t);
  fleet.records += 1;
  fleet.dirty = true;
}

function sparkline(canvas, values) {
  const ctx = canvas.getContext("2d");
  const w = (canvas.width = canvas.clientWidth * devicePixelRatio);
  const h = (canvas.height = canvas.clientHeight * devicePixelRatio);
  ctx.clearRect(0, 0, w, h);
  const finite = values.filter((v) => Number.isFinite(v));
  canvas.dataset.points = String(finite.length);
  if (finite.length < 2) return;
  const lo = Math.min(...finite), hi = Math.max(...finite), span = hi - lo || 1;
  ctx.strokeStyle = "#2563eb";
  ctx.lineWidth = devicePixelRatio;
  ctx.beginPath();
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) return;
    const x = (i / (values.length - 1)) * w, y = h - ((v - lo) / span) * (h - 2) - 1;
    i === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function age(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  return s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(0)} min` : `${(s / 3600).toFixed(1)} h`;
}

function rowFor(gpu) {
  const row = document.createElement("tr");
  row.dataset.host = gpu.hostname;
  row.dataset.gpu = String(gpu.index);
  const host = document.createElement("td");
  host.textContent = gpu.hostname || "(no hostname)";
  const name = document.createElement("td");
  name.textContent = `${gpu.index} · ${gpu.name ?? gpu.id ?? "GPU"}`;
  row.append(host, name);
  const now = Date.now(), staleMs = staleAfterMs(gpu.hostname);
  for (const [metric, , , format] of FLEET_COLUMNS) {
    const cell = document.createElement("td");
    const shown = gpu.metrics[metric];
    if (shown) {
      const value = FLEET_COLUMNS.find(([m]) => m === metric)[2](shown.record);
      const text = document.createElement("span");
      text.className = "value";
      text.textContent = Number.isFinite(value) ? format(value, shown.record) : "—";
      cell.classList.toggle("stale", now - shown.t > staleMs);
      const canvas = document.createElement("canvas");
      canvas.className = "spark";
      canvas.dataset.metric = metric;
      cell.append(text, canvas);
    } else {
      cell.textContent = "—";
    }
    row.appendChild(cell);
  }
  const procs = document.createElement("td");
  const live = [...gpu.processes].filter(([, p]) => now - p.t <= staleMs).sort((a, b) => a[0] - b[0]);
  procs.textContent = live.length ? live.map(([pid, p]) => `${pid} (${p.usedMiB ?? "?"} MiB)`).join(", ") : "—";
  const seen = document.createElement("td");
  const stale = now - gpu.lastMs > staleMs;
  seen.textContent = stale ? `stale · ${age(gpu.lastMs)}` : age(gpu.lastMs);
  seen.className = stale ? "stale" : "";
  row.classList.toggle("stale", stale);
  row.append(procs, seen);
  return row;
}

const FLEET_SORTS = {
  host: (a, b) => a.hostname.localeCompare(b.hostname) || a.index - b.index,
  utilization: (a, b) => (b.metrics.utilization?.record.gpuPercent ?? -1) - (a.metrics.utilization?.record.gpuPercent ?? -1),
  temperature: (a, b) => (b.metrics.temperature?.record.celsius ?? -1) - (a.metrics.temperature?.record.celsius ?? -1),
  age: (a, b) => a.lastMs - b.lastMs,
};

function renderFleet() {
  if (!fleet.dirty) return;
  fleet.dirty = false;
  const filter = document.getElementById("f-host").value.trim().toLowerCase();
  const gpus = [...fleet.gpus.values()].filter((g) => !filter || g.hostname.toLowerCase().includes(filter))
    .sort(FLEET_SORTS[document.getElementById("f-sort").value]);
  const rows = gpus.map(rowFor);
  document.getElementById("fleet-rows").replaceChildren(...rows);
  rows.forEach((row, i) => row.querySelectorAll("canvas.spark").forEach((canvas) =>
    sparkline(canvas, gpus[i].series[canvas.dataset.metric] ?? [])));
  const hosts = new Set(gpus.map((g) => g.hostname)).size;
  document.getElementById("f-count").textContent = `${hosts} hosts · ${gpus.length} GPUs`;
  document.getElementById("f-empty").hidden = gpus.length > 0;
}

function connectFleet() {
  fleet.stream = openStream("/ws/fleet", "f-connection", (message) => {
    for (const record of message.records) addRecord(record);
    fleet.dirty = true;
  });
}

function showView(view) {
  document.getElementById("local-view").hidden = view === "fleet";
  document.getElementById("fleet-view").hidden = view !== "fleet";
  for (const tab of document.querySelectorAll("[data-view]")) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  if (view === "fleet" && !fleet.stream) connectFleet();
  fleet.dirty = true;
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll("[data-view]")) {
    tab.addEventListener("click", () => {
      const params = fleetParams();
      params.set("view", tab.dataset.view);
      history.replaceState(null, "", "#" + params);
      showView(tab.dataset.view);
    });
  }
  for (const id of ["f-host", "f-sort"]) document.getElementById(id).addEventListener("input", () => { fleet.dirty = true; });
  setInterval(() => { fleet.dirty = true; }, 5000); // ages and staleness move on without new records
  const frame = () => { renderFleet(); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  showView(fleetParams().get("view") === "fleet" ? "fleet" : "local");
});
