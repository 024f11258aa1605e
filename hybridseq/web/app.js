// The page of `hybridseq serve`: a text box, outputs and attention heatmaps for a token model;
// a CSV upload and a plot of history, forecast and interval band for a forecasting model.
// Plain script, no build step, nothing fetched but this server's own endpoints.
"use strict";

const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message || "";
}

async function call(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- token models: outputs and heatmaps ---------------------------------------------------

// One table: a row per output symbol, a column per source symbol, cell colour = weight.
function heatmap(attention) {
  const table = el("table", {
    class: "heatmap",
    "data-rows": attention.output.length,
    "data-cols": attention.source.length,
  });
  const head = el("tr");
  head.appendChild(el("th", { class: "corner" }, "out \\ in"));
  attention.source.forEach((s) => head.appendChild(el("th", {}, s)));
  table.appendChild(head);
  attention.weights.forEach((row, i) => {
    const tr = el("tr");
    tr.appendChild(el("th", {}, attention.output[i]));
    row.forEach((w, j) => {
      const td = el("td", { title: `${attention.output[i]} / ${attention.source[j]}: ${w.toFixed(3)}` });
      td.style.background = `rgba(31, 78, 140, ${Math.min(1, Math.max(0, w)).toFixed(3)})`;
      td.style.color = w > 0.5 ? "#fff" : "#333";
      td.textContent = w >= 0.1 ? Math.round(w * 100) : "";
      tr.appendChild(td);
    });
    table.appendChild(tr);
  });
  return table;
}

function showPredictions(inputs, body) {
  const results = $("results");
  results.replaceChildren();
  inputs.forEach((text, i) => {
    const box = el("div", { class: "result" });
    box.appendChild(el("div", { class: "source" }, text));
    const best = body.hypotheses ? body.hypotheses[i][0] : { output: body.outputs[i] };
    const line = el("div");
    line.appendChild(el("span", { class: "output" }, best.output || "(empty)"));
    if (best.score !== undefined) line.appendChild(el("span", { class: "score" }, `log p ${best.score.toFixed(3)}`));
    box.appendChild(line);
    if (best.attention) box.appendChild(heatmap(best.attention));
    results.appendChild(box);
  });
  results.setAttribute("data-count", inputs.length);
}

async function predict() {
  const inputs = $("inputs").value.split("\n").map((s) => s.trim()).filter((s) => s);
  if (!inputs.length) return;
  showError("");
  $("busy").hidden = false;
  try {
    const body = await call("/v1/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ inputs, beam: Number($("beam").value) || 1, attention: window.hasAttention }),
    });
    showPredictions(inputs, body);
  } catch (e) {
    showError(e.message);
  } finally {
    $("busy").hidden = true;
  }
}

// ---- forecasting models: the plot -----------------------------------------------------------

let forecastResult = null;

// A round step for about `count` ticks over `span`: 1, 2 or 5 times a power of ten.
function niceStep(span, count) {
  const raw = span / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
  return power * ([1, 2, 5, 10].find((m) => m * power >= raw) || 10);
}

function column(rows, d) {
  return rows.map((r) => (Array.isArray(r) ? r[d] : r));
}

// History, forecast and the band of the outer quantiles, on a shared axis of time labels.
function drawSeries(s, d) {
  const canvas = $("plot");
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 64, R = 44, T = 28, B = 36;
  g.clearRect(0, 0, W, H);
  const past = column(s.history.values, d), ahead = column(s.forecast, d);
  const low = s.lower ? column(s.lower, d) : null, high = s.upper ? column(s.upper, d) : null;
  const labels = s.history.time.concat(s.time);
  const n = labels.length, k = past.length;
  const all = past.concat(ahead, low || [], high || []);
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.05;
  lo -= pad; hi += pad;
  const x = (i) => L + (i / Math.max(1, n - 1)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  // axes, value ticks and time labels
  g.strokeStyle = "#999"; g.fillStyle = "#444"; g.font = "12px sans-serif"; g.lineWidth = 1;
  g.beginPath(); g.moveTo(L, T); g.lineTo(L, H - B); g.lineTo(W - R, H - B); g.stroke();
  g.textAlign = "right"; g.textBaseline = "middle";
  const step = niceStep(hi - lo, 5);
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    g.fillText(Number(v.toPrecision(6)).toString(), L - 6, y(v));
    g.beginPath(); g.moveTo(L - 3, y(v)); g.lineTo(L, y(v)); g.stroke();
  }
  // time labels counted back from the last forecast step, so that one is always shown
  g.textAlign = "center"; g.textBaseline = "top";
  const every = Math.max(1, Math.ceil(n / 8));
  for (let i = n - 1; i >= 0; i -= every) {
    g.fillText(String(labels[i]), x(i), H - B + 8);
    g.beginPath(); g.moveTo(x(i), H - B); g.lineTo(x(i), H - B + 4); g.stroke();
  }
  // the band, the forecast's start, the lines
  if (low && high) {
    g.fillStyle = "rgba(230, 126, 34, 0.22)";
    g.beginPath();
    g.moveTo(x(k - 1), y(past[k - 1]));
    high.forEach((v, i) => g.lineTo(x(k + i), y(v)));
    for (let i = low.length - 1; i >= 0; i--) g.lineTo(x(k + i), y(low[i]));
    g.closePath(); g.fill();
  }
  g.strokeStyle = "#bbb"; g.setLineDash([4, 4]);
  g.beginPath(); g.moveTo(x(k - 1), T); g.lineTo(x(k - 1), H - B); g.stroke();
  g.setLineDash([]);
  const line = (values, offset, colour) => {
    g.strokeStyle = colour; g.lineWidth = 2; g.beginPath();
    values.forEach((v, i) => (i ? g.lineTo(x(offset + i), y(v)) : g.moveTo(x(offset + i), y(v))));
    g.stroke();
  };
  line(past, 0, "#2c3e50");
  line([past[k - 1]].concat(ahead), k - 1, "#e67e22");
  // legend
  g.font = "13px sans-serif"; g.textAlign = "left"; g.textBaseline = "middle";
  const legend = [["#2c3e50", "history"], ["#e67e22", "forecast"]];
  if (low) legend.push(["rgba(230, 126, 34, 0.35)", "interval"]);
  legend.forEach(([c, name], i) => {
    g.fillStyle = c; g.fillRect(L + 12 + i * 100, 6, 14, 10);
    g.fillStyle = "#333"; g.fillText(name, L + 30 + i * 100, 11);
  });
  canvas.setAttribute("data-series", s.series);
}

function forecastTable(result, sid) {
  const rows = result.rows.filter((r) => String(r.series) === sid);
  const table = el("table", { class: "forecast" });
  const head = el("tr");
  result.columns.forEach((c) => head.appendChild(el("th", {}, c)));
  table.appendChild(head);
  rows.forEach((r) => {
    const tr = el("tr");
    result.columns.forEach((c) => {
      const v = r[c];
      tr.appendChild(el("td", {}, typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v)));
    });
    table.appendChild(tr);
  });
  $("table").replaceChildren(table);
}

function redraw() {
  if (!forecastResult) return;
  const sid = $("series").value;
  const s = forecastResult.series.find((x) => String(x.series) === sid);
  drawSeries(s, Number($("variable").value) || 0);
  forecastTable(forecastResult, sid);
}

function fillSelect(select, items) {
  select.replaceChildren();
  items.forEach(([value, label]) => select.appendChild(el("option", { value }, label)));
}

async function upload() {
  const file = $("file").files[0];
  if (!file) return;
  showError("");
  const form = new FormData();
  form.append("file", file);
  try {
    forecastResult = await call("/v1/forecast", { method: "POST", body: form });
  } catch (e) {
    showError(e.message);
    return;
  }
  fillSelect($("series"), forecastResult.series.map((s) => [String(s.series), String(s.series)]));
  fillSelect($("variable"), forecastResult.variables.map((v, i) => [String(i), v]));
  $("pick").hidden = forecastResult.series.length < 2;
  $("pickvar").hidden = forecastResult.variables.length < 2;
  redraw();
}

// ---- start ----------------------------------------------------------------------------------

async function start() {
  let info;
  try {
    info = await call("/v1/model");
  } catch (e) {
    showError(e.message);
    return;
  }
  const size = info.parameters ? `, ${info.parameters.toLocaleString()} parameters` : "";
  $("model").textContent = `${info.family} (${info.kind}, ${info.engine}${size})`;
  if (info.kind === "forecast") {
    $("forecast").hidden = false;
    $("model").textContent += `: horizon ${info.forecast.horizon}, needs at least ${info.forecast.min_lookback} points per series`;
    $("file").addEventListener("change", upload);
    $("series").addEventListener("change", redraw);
    $("variable").addEventListener("change", redraw);
  } else {
    $("tokens").hidden = false;
    window.hasAttention = Boolean(info.attention);
    $("beam").value = (info.decode && info.decode.beam) || 1;
    $("run").addEventListener("click", predict);
  }
  document.body.setAttribute("data-ready", info.kind);
}

start();
