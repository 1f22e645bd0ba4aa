// A small time-series line chart on <canvas>: no CDN, no dependency. Null values leave gaps.
"use strict";

class LineChart {
  constructor(canvas, { unit = "", min = null, max = null, windowSec = null, color = "#2563eb" } = {}) {
    this.canvas = canvas;
    this.unit = unit;
    this.fixedMin = min;
    this.fixedMax = max;
    this.windowSec = windowSec; // live charts scroll; history charts show all points
    this.color = color;
    this.points = []; // [timeMs, value|null]
    this.updates = 0;
  }

  setPoints(points) {
    this.points = points.slice();
    this.draw();
  }

  push(timeMs, value) {
    this.points.push([timeMs, value]);
    if (this.windowSec) {
      const cutoff = timeMs - this.windowSec * 1000;
      while (this.points.length && this.points[0][0] < cutoff) this.points.shift();
    }
    this.updates += 1;
    this.canvas.dataset.updates = String(this.updates);
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    canvas.dataset.points = String(this.points.filter((p) => p[1] !== null).length);

    const values = this.points.map((p) => p[1]).filter((v) => v !== null && Number.isFinite(v));
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7280";
    if (!values.length) {
      ctx.fillText("no data", 8, height / 2);
      return;
    }
    let lo = this.fixedMin ?? Math.min(...values);
    let hi = this.fixedMax ?? Math.max(...values);
    if (hi === lo) { hi += 1; lo -= this.fixedMin === null ? 1 : 0; }
    const t0 = this.points[0][0], t1 = this.points[this.points.length - 1][0];
    const pad = { left: 44, right: 8, top: 8, bottom: 16 };
    const x = (t) => pad.left + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right));
    const y = (v) => height - pad.bottom - ((v - lo) / (hi - lo)) * (height - pad.top - pad.bottom);

    ctx.strokeStyle = "#e5e7eb";
    ctx.beginPath();
    ctx.moveTo(pad.left, y(lo)); ctx.lineTo(width - pad.right, y(lo));
    ctx.moveTo(pad.left, y(hi)); ctx.lineTo(width - pad.right, y(hi));
    ctx.stroke();
    ctx.fillText(format(hi, this.unit), 2, y(hi) + 4);
    ctx.fillText(format(lo, this.unit), 2, y(lo) + 4);
    ctx.fillText(new Date(t0).toLocaleTimeString(), pad.left, height - 2);
    const endLabel = new Date(t1).toLocaleTimeString();
    ctx.fillText(endLabel, width - pad.right - ctx.measureText(endLabel).width, height - 2);

    ctx.strokeStyle = this.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawing = false;
    for (const [t, v] of this.points) {
      if (v === null || !Number.isFinite(v)) { drawing = false; continue; }
      if (drawing) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
      drawing = true;
    }
    ctx.stroke();
    if (this.points.length === 1 || values.length === 1) {
      const [t, v] = this.points.find((p) => p[1] !== null);
      ctx.fillStyle = this.color;
      ctx.fillRect(x(t) - 2, y(v) - 2, 4, 4);
    }
  }
}

function format(value, unit) {
  const abs = Math.abs(value);
  const text = abs >= 1000 ? value.toFixed(0) : abs >= 10 ? value.toFixed(1) : value.toFixed(2);
  return unit ? `${text}${unit}` : text;
}
