// Dashboard: live charts (backfilled from /api/metrics/history, then fed by WS /ws/metrics) and a
// history view over GET /metrics. Everything is served by this service; nothing from a CDN.
"use strict";

const WINDOW_SEC = 300;
const FIELDS = {
  memory: ["usedMiB", "freeMiB", "totalMiB"],
  utilization: ["gpuPercent", "memoryPercent"],
  temperature: ["celsius"],
  power: ["watts"],
  clocks: ["graphicsMHz", "memoryMHz"],
  process: ["usedMiB"],
};
// Buckets are whole hours from 7 days on: older history is kept as per-minute, then per-hour rollups.
const RANGES = {
  "1h": [3600, "1m"], "6h": [21600, "5m"], "24h": [86400, "15m"], "7d": [604800, "1h"],
  "30d": [2592000, "6h"], "1y": [31536000, "1d"],
};
// The current value beside a chart, with its unit; null (unknown) is "—", never a 0 standing in for it.
const GIB = 2 ** 30, MIB = 2 ** 20;
const amount = (value, unit, digits) => (value == null ? null : `${value.toFixed(digits)} ${unit}`);
const gib = (bytes) => amount(bytes == null ? null : bytes / GIB, "GiB", 1);
const ofTotal = (part, whole) => (part == null || whole == null ? part : `${part} of ${whole}`);
function showNow(element, text) { element.textContent = text ?? "—"; }

// Each GPU chart: its name, title, axis unit and range, the charted value, and the value shown beside it.
const GPU_CHARTS = [
  { name: "utilization", label: "Utilization", unit: "%", min: 0, max: 100, value: (g) => g.utilization,
    now: (g) => amount(g.utilization, "%", 0) },
  { name: "memory", label: "Memory", unit: "%", min: 0, max: 100, value: (g) => g.memoryPercent,
    now: (g) => ofTotal(gib(g.memoryUsed), gib(g.memoryTotal)) },
  { name: "temperature", label: "Temperature", unit: "°C", min: null, max: null, value: (g) => g.temperature,
    now: (g) => amount(g.temperature, "°C", 0) },
  { name: "power", label: "Power", unit: "W", min: 0, max: null, value: (g) => g.powerDraw,
    now: (g) => ofTotal(amount(g.powerDraw, "W", 0), amount(g.powerLimit, "W", 0)) },
];

const state = { charts: {}, gpuCards: {}, liveUpdates: 0 };
// With READ_TOKEN set on the server, open the dashboard as /#token=…: the fragment never leaves the
// browser, and the token goes out as a Bearer header (and as ?token= on the WebSocket handshake,
// where browsers cannot set headers).
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
const api = (path) => fetch(path, TOKEN ? { headers: { Authorization: `Bearer ${TOKEN}` } } : {});
window.dashboard = state; // read by the browser tests

function chart(id, options) {
  const canvas = document.getElementById(id);
  state.charts[id] = new LineChart(canvas, { windowSec: WINDOW_SEC, ...options });
  return state.charts[id];
}

function gpuKey(gpu) { return `${gpu.vendor}-${gpu.index}`; }

// The GPU's health at a glance, as [text, level] badges: throttling, memory errors, XIDs, PCIe link.
// A field the GPU cannot report (null) gives no badge rather than a reassuring "0".
const BENIGN_THROTTLE = new Set(["gpu_idle", "applications_clocks_setting", "display_clock_setting"]);
function healthBadges(gpu) {
  const badges = [];
  if (gpu.throttleReasons) {
    const active = gpu.throttleReasons.filter((r) => !BENIGN_THROTTLE.has(r));
    badges.push(active.length ? [`throttled: ${active.join(", ")}`, "warn"]
      : [gpu.throttleReasons.includes("gpu_idle") ? "clocks: idle" : "not throttled", "ok"]);
  } else if (gpu.throttled != null) {
    badges.push(gpu.throttled ? ["throttled", "warn"] : ["not throttled", "ok"]);
  }
  if (gpu.eccEnabled === false) badges.push(["ECC off", "ok"]);
  const uncorrected = gpu.eccUncorrectedVolatile ?? gpu.eccUncorrectedAggregate;
  if (uncorrected != null) {
    const corrected = gpu.eccCorrectedVolatile ?? gpu.eccCorrectedAggregate ?? 0;
    badges.push([`ECC ${corrected} corrected · ${uncorrected} uncorrected`, uncorrected > 0 ? "bad" : "ok"]);
  }
  if (gpu.remappedRowsFailure) badges.push(["row remap FAILED", "bad"]);
  else if (gpu.remappedRowsPending) badges.push(["row remap pending (reset)", "warn"]);
  else if (gpu.remappedRowsUncorrectable != null) {
    badges.push([`remapped rows ${gpu.remappedRowsCorrectable}/${gpu.remappedRowsUncorrectable}`,
      gpu.remappedRowsUncorrectable > 0 ? "warn" : "ok"]);
  }
  if (gpu.retiredPagesPending) badges.push(["page retirement pending", "warn"]);
  const xid = gpu.xidErrors;
  if (xid && xid.count) {
    // As /api/health: an XID in the last 5 minutes is trouble now; an older one is history to look at.
    const recent = Date.now() - Date.parse(xid.lastAt) < 5 * 60 * 1000;
    const at = new Date(xid.lastAt).toLocaleTimeString();
    badges.push([`XID ${xid.last} ×${xid.count} (${at})`, recent ? "bad" : "warn"]);
  } else if (xid) badges.push(["no XID", "ok"]);
  if (gpu.pcieLinkGen != null && gpu.pcieLinkWidth != null) {
    const max = gpu.pcieLinkWidthMax != null ? ` of Gen ${gpu.pcieLinkGenMax ?? "?"} x${gpu.pcieLinkWidthMax}` : "";
    // An idle GPU trains its generation down; fewer lanes than the slot has is a real fault.
    const narrow = gpu.pcieLinkWidthMax != null && gpu.pcieLinkWidth < gpu.pcieLinkWidthMax;
    badges.push([`PCIe Gen ${gpu.pcieLinkGen} x${gpu.pcieLinkWidth}${max}`, narrow ? "warn" : "ok"]);
  }
  if (Object.keys(gpu.fieldErrors || {}).length) {
    badges.push([`failed: ${Object.keys(gpu.fieldErrors).join(", ")}`, "bad"]);
  }
  return badges;
}

function showHealth(element, gpu) {
  const badges = gpu.available === false ? [[gpu.error ?? "unavailable", "bad"]] : healthBadges(gpu);
  element.replaceChildren(...badges.map(([text, level]) => {
    const span = document.createElement("span");
    span.className = `badge ${level}`;
    span.textContent = text;
    return span;
  }));
}

// The GPU's processes: a table of pid, name and used memory; "no processes" for an empty list, and
// "not reported" when the reader cannot list them (null, with the reason in unsupported).
function processCell(text) {
  const cell = document.createElement("td");
  cell.textContent = text ?? "—";
  return cell;
}

function showProcesses(view, gpu) {
  const processes = gpu.available === false ? null : gpu.processes; // a failed GPU lists nothing current
  const reason = gpu.unsupported?.processes, failed = gpu.fieldErrors?.processes;
  const shown = JSON.stringify([processes, reason, failed]);
  if (view.processesShown === shown) return; // rebuilt only when it changed: a selection stays put
  view.processesShown = shown;
  const element = view.processes;
  if (!processes) {
    element.textContent = reason ? `not reported (${reason})` : failed ? `not read: ${failed}` : "—";
  } else if (!processes.length) {
    element.textContent = "no processes";
  } else {
    const table = document.createElement("table");
    table.className = "processes";
    table.innerHTML = "<thead><tr><th>PID</th><th>Name</th><th>Used memory</th></tr></thead><tbody></tbody>";
    table.tBodies[0].append(...processes.map((p) => {
      const row = document.createElement("tr");
      row.append(processCell(String(p.pid)), processCell(p.name),
        processCell(amount(p.usedMemory == null ? null : p.usedMemory / MIB, "MiB", 0)));
      return row;
    }));
    element.replaceChildren(table);
  }
}

function gpuCard(gpu) {
  const key = gpuKey(gpu);
  if (state.gpuCards[key]) return state.gpuCards[key];
  const card = document.createElement("section");
  card.className = "card gpu";
  card.innerHTML = `<h2></h2><p class="sub"></p><p class="health"></p><div class="grid"></div>
    <h3>Processes</h3><div class="processes"></div>`;
  card.querySelector("h2").textContent = `GPU ${gpu.index} · ${gpu.model ?? "unknown model"}`;
  card.querySelector(".sub").textContent = gpu.uuid ?? "";
  const grid = card.querySelector(".grid");
  const charts = {}, now = {};
  for (const { name, label } of GPU_CHARTS) {
    const box = document.createElement("div");
    box.innerHTML = `<h3><span></span> <span class="now">—</span></h3>
      <canvas class="chart" id="gpu-${key}-${name}"></canvas>`;
    box.querySelector("h3 span").textContent = label;
    now[name] = box.querySelector(".now");
    grid.appendChild(box);
  }
  document.getElementById("gpus").appendChild(card);
  for (const { name, unit, min, max } of GPU_CHARTS) charts[name] = chart(`gpu-${key}-${name}`, { unit, min, max });
  state.gpuCards[key] = { card, charts, now, health: card.querySelector(".health"),
                          processes: card.querySelector("div.processes") };
  return state.gpuCards[key];
}

function addSnapshot(snapshot) {
  const t = Date.parse(snapshot.timestamp);
  const { cpu, memory } = snapshot;
  state.charts.cpu.push(t, cpu ? cpu.utilization : null);
  state.charts.memory.push(t, memory ? memory.percent : null);
  showNow(document.getElementById("cpu-now"), amount(cpu?.utilization, "%", 1));
  showNow(document.getElementById("memory-now"), ofTotal(gib(memory?.used), gib(memory?.total)));
  for (const gpu of snapshot.gpus || []) {
    const view = gpuCard(gpu);
    const { card, charts, now, health } = view;
    const down = gpu.available === false;
    card.classList.toggle("down", down || gpu.stale === true);
    showHealth(health, gpu);
    for (const spec of GPU_CHARTS) {
      charts[spec.name].push(t, down ? null : spec.value(gpu) ?? null);
      showNow(now[spec.name], down ? null : spec.now(gpu));
    }
    showProcesses(view, gpu);
  }
  document.getElementById("updated").textContent = new Date(t).toLocaleTimeString();
  document.getElementById("no-gpu").hidden = (snapshot.gpus || []).length > 0;
}

state.addSnapshot = addSnapshot; // the GPU card's browser test feeds snapshots of GPUs this machine lacks

// A live WebSocket on `path` that reconnects after a doubling pause (1 s up to 15 s) and shows its
// state in the element `statusId`; the fleet view opens its stream through it too.
function openStream(path, statusId, onMessage) {
  const stream = { socket: null, retryMs: 1000 };
  const show = (status, text) => {
    const el = document.getElementById(statusId);
    el.dataset.status = status;
    el.textContent = text;
  };
  const open = () => {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path +
      (TOKEN ? "?token=" + encodeURIComponent(TOKEN) : "");
    show("connecting", "connecting…");
    const socket = new WebSocket(url);
    stream.socket = socket;
    socket.onopen = () => { stream.retryMs = 1000; show("live", "live"); };
    socket.onmessage = (event) => onMessage(JSON.parse(event.data));
    socket.onclose = () => {
      const wait = stream.retryMs;
      stream.retryMs = Math.min(wait * 2, 15000);
      show("down", `disconnected — retrying in ${Math.round(wait / 1000)} s`);
      setTimeout(open, wait);
    };
  };
  open();
  return stream;
}

async function backfill() {
  const response = await api("/api/metrics/history?seconds=" + WINDOW_SEC);
  if (!response.ok) return;
  for (const snapshot of await response.json()) addSnapshot(snapshot);
}

// ---- history view -------------------------------------------------------------------------------
let gpus = [];

function fillSelect(select, values, labels = values) {
  const previous = select.value;
  select.replaceChildren(...values.map((value, i) => new Option(labels[i], value)));
  if (values.includes(previous)) select.value = previous;
}

async function loadGpus() {
  const response = await api("/gpus");
  if (!response.ok) return;
  gpus = (await response.json()).gpus;
  const hosts = [...new Set(gpus.map((g) => g.hostname))];
  fillSelect(document.getElementById("h-host"), hosts, hosts.map((h) => h || "(no hostname)"));
  onHostChange();
}

function onHostChange() {
  const host = document.getElementById("h-host").value;
  const mine = gpus.filter((g) => g.hostname === host);
  fillSelect(document.getElementById("h-gpu"), mine.map((g) => String(g.gpuIndex)),
    mine.map((g) => `${g.gpuIndex} · ${g.gpuName ?? g.gpuId ?? "GPU"}`));
}

function onMetricChange() {
  fillSelect(document.getElementById("h-field"), FIELDS[document.getElementById("h-metric").value]);
}

async function showHistory(event) {
  event?.preventDefault();
  const [seconds, bucket] = RANGES[document.getElementById("h-range").value];
  const end = new Date();
  const start = new Date(end.getTime() - seconds * 1000);
  const params = new URLSearchParams({
    hostname: document.getElementById("h-host").value,
    gpuIndex: document.getElementById("h-gpu").value,
    metric: document.getElementById("h-metric").value,
    field: document.getElementById("h-field").value,
    aggregate: "avg", bucket, start: start.toISOString(), end: end.toISOString(),
  });
  const status = document.getElementById("h-status");
  const response = await api("/metrics?" + params);
  const body = await response.json();
  if (!response.ok) { status.textContent = body.message; return; }
  const points = body.buckets.map((b) => [Date.parse(b.start), b.value]);
  state.charts.history.setPoints(points);
  const records = body.buckets.reduce((n, b) => n + b.count, 0);
  status.textContent = `${points.length} buckets of ${bucket}, ${records} records (from ${body.resolution} data)`;
}

document.addEventListener("DOMContentLoaded", async () => {
  chart("cpu", { unit: "%", min: 0, max: 100 });
  chart("memory", { unit: "%", min: 0, max: 100, color: "#16a34a" });
  state.charts.history = new LineChart(document.getElementById("history"), { color: "#9333ea" });
  fillSelect(document.getElementById("h-metric"), Object.keys(FIELDS));
  fillSelect(document.getElementById("h-range"), Object.keys(RANGES));
  onMetricChange();
  document.getElementById("h-host").addEventListener("change", onHostChange);
  document.getElementById("h-metric").addEventListener("change", onMetricChange);
  document.getElementById("history-form").addEventListener("submit", showHistory);
  document.getElementById("h-refresh").addEventListener("click", loadGpus);
  await backfill();
  openStream("/ws/metrics", "connection", (snapshot) => { state.liveUpdates += 1; addSnapshot(snapshot); });
  await loadGpus();
});
