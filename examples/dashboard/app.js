// The live demo dashboard: wires SluiceClient to an SVG chart, a sentiment
// gauge, an alerts feed, a status pill and a few counters. No dependencies.
import { SluiceClient } from "./sluice.js";

const SYMBOLS = ["AAPL", "MSFT", "NVDA"];
const COLORS = { AAPL: "var(--s-aapl)", MSFT: "var(--s-msft)", NVDA: "var(--s-nvda)" };
const TOPICS = [
  ...SYMBOLS.map((s) => `prices:${s}`),
  "sentiment:market",
  "alerts:info", "alerts:warning", "alerts:critical",
];
const EVENT_NAMES = ["price", "sentiment", "alert"];
const WINDOW_MS = 60_000;       // chart width, once that much data is in
const MIN_WINDOW_MS = 15_000;   // chart width right after (re)loading
const SPARK_MS = 120_000;       // sentiment sparkline width
const MIN_SPARK_MS = 20_000;
const STATS_MS = 5_000;         // events/s and latency window
const MAX_ALERTS = 50;

const $ = (id) => document.getElementById(id);
const svgNS = "http://www.w3.org/2000/svg";

const state = {
  transport: new URLSearchParams(location.search).get("transport") === "sse" ? "sse" : "ws",
  status: { state: "idle" },
  series: Object.fromEntries(SYMBOLS.map((s) => [s, []])), // {t, price}
  base: {},                      // symbol -> first price since (re)load
  last: {},                      // symbol -> last event data
  gapMarks: [],                  // times where a series was reset
  sentiment: [],                 // {t, score}
  arrivals: [],                  // receipt times, for events/s
  latencies: [],                 // {t, ms}
  counts: { total: 0, ws: 0, sse: 0 },
  lastOffset: {},                // topic -> {offset, epoch}, to count offset gaps
  offsetGaps: 0,                 // events whose offset skipped one within an epoch
  replayed: 0,                   // events replayed after a resume
  alerts: 0,
  gaps: 0,
  pendingGapTopics: new Set(),
};
let client = null;
const startedAt = Date.now();

// ---- events ---------------------------------------------------------------

function onEvent(ev) {
  const now = Date.now();
  state.counts.total += 1;
  state.counts[state.transport] += 1;
  state.arrivals.push(now);
  const prev = state.lastOffset[ev.topic];
  if (prev && prev.epoch === ev.epoch && ev.offset !== prev.offset + 1) state.offsetGaps += 1;
  state.lastOffset[ev.topic] = { offset: ev.offset, epoch: ev.epoch };
  const d = ev.data || {};
  if (ev.replayed) state.replayed += 1;
  // Replayed events were held back by the outage, not by the pipeline.
  if (typeof d.sent_at === "number" && !ev.replayed) state.latencies.push({ t: now, ms: now - d.sent_at });

  if (ev.topic.startsWith("prices:") && typeof d.price === "number") {
    const sym = ev.topic.slice(7);
    if (!state.series[sym]) return;
    if (state.base[sym] === undefined) state.base[sym] = d.price;
    state.series[sym].push({ t: d.sent_at || now, price: d.price });
    state.last[sym] = d;
  } else if (ev.topic === "sentiment:market" && typeof d.score === "number") {
    state.sentiment.push({ t: d.sent_at || now, score: d.score });
    renderSentiment();
  } else if (ev.topic.startsWith("alerts:")) {
    addAlert(ev, d);
  }
}

// A resume could not fill the gap: the topic's history is gone (a restarted
// in-memory hub has new epochs). Reset what we drew from it and say so.
function onRecovered(topic) {
  state.gaps += 1;
  if (topic.startsWith("prices:")) {
    const sym = topic.slice(7);
    state.series[sym] = [];
    delete state.base[sym];
    state.gapMarks.push(Date.now());
  } else if (topic === "sentiment:market") {
    state.sentiment = [];
    renderSentiment();
  }
  state.pendingGapTopics.add(topic);
  clearTimeout(onRecovered.timer);
  onRecovered.timer = setTimeout(() => {
    const topics = [...state.pendingGapTopics];
    state.pendingGapTopics.clear();
    notice(
      "gap: history could not be recovered, data reloaded",
      `${topics.length} topic${topics.length > 1 ? "s" : ""} (${topics.join(", ")}) resumed with recovered = false: ` +
        "the hub lost their history (restart or eviction), so their charts start again from live data.",
    );
  }, 300);
}

function onStatus(st) {
  state.status = st;
  renderStatus();
  $("session").textContent =
    state.transport === "sse" ? `${TOPICS.length} topics on one stream` : st.session ? `session ${st.session}` : "–";
}

// ---- connection -------------------------------------------------------------

function connect(transport) {
  let positions = {};
  if (client) {
    positions = client.snapshotPositions();
    client.onStatus = () => {};
    client.stop("switching transport");
  }
  state.transport = transport;
  for (const b of document.querySelectorAll(".switch button")) {
    b.setAttribute("aria-checked", String(b.dataset.transport === transport));
  }
  const url = new URL(location.href);
  url.searchParams.set("transport", transport);
  history.replaceState(null, "", url);
  $("transport-label").textContent = transport === "ws" ? "WebSocket /ws" : "SSE /events";
  // snippet: dashboard-client
  client = new SluiceClient({
    url: location.origin, // the hub that served this page
    transport, // "ws" or "sse"
    topics: TOPICS, // ["prices:AAPL", …, "alerts:critical"]
    eventNames: EVENT_NAMES, // SSE `event:` names to listen for: ["price", "sentiment", "alert"]
    positions, // a switch to WebSocket resumes where the previous stream stopped
    onEvent, // (ev) => …: ev.topic, ev.offset, ev.epoch, ev.data, ev.event
    onStatus, // (st) => …: st.state is connecting|connected|reconnecting|offline, st.retryAt
    onRecovered, // (topic, subscribed) => …: a resume came back with recovered: false
  });
  client.start();
  // end snippet
}

async function publishTestAlert() {
  const severity = $("alert-severity").value;
  const button = $("publish-alert");
  button.disabled = true;
  try {
    await client.publish(`alerts:${severity}`, {
      severity, symbol: "DEMO", message: "Test alert from the dashboard", sent_at: Date.now(),
    }, "alert");
  } catch (e) {
    notice("publish failed", `${e.message}. The demo hub must run with --allow-publish.`);
  } finally {
    button.disabled = false;
  }
}

// ---- rendering ----------------------------------------------------------------

function renderStatus() {
  const st = state.status;
  const pill = $("status");
  pill.dataset.state = st.state;
  pill.dataset.transport = state.transport;
  let text;
  switch (st.state) {
    case "connected": text = `connected · ${state.transport === "ws" ? "WebSocket" : "SSE"}`; break;
    case "connecting": text = "connecting…"; break;
    case "reconnecting": {
      const left = st.retryAt ? Math.ceil((st.retryAt - Date.now()) / 1000) : 0;
      text = left > 0 ? `reconnecting in ${left} s` : "reconnecting…";
      break;
    }
    case "offline": text = "offline"; break;
    default: text = "starting…";
  }
  $("status-text").textContent = text;
  pill.title = st.reason ? `last: ${st.reason}${st.closeCode ? ` (close ${st.closeCode})` : ""}` : "";
  $("reconnect").hidden = st.state !== "offline";
}

function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function renderStats() {
  const now = Date.now();
  while (state.arrivals.length && state.arrivals[0] < now - STATS_MS) state.arrivals.shift();
  while (state.latencies.length && state.latencies[0].t < now - STATS_MS) state.latencies.shift();
  const elapsed = Math.min(STATS_MS, now - startedAt) / 1000;
  $("rate").textContent = elapsed > 0.5 ? (state.arrivals.length / elapsed).toFixed(1) : "–";
  const ms = state.latencies.map((l) => l.ms);
  const p50 = percentile(ms, 0.5);
  $("latency").textContent = Number.isNaN(p50) ? "–" : `${p50} ms`;
  $("latency-hint").textContent =
    Number.isNaN(p50) ? "publish → screen" : `p95 ${percentile(ms, 0.95)} ms · ${ms.length} samples`;
  const total = $("events-total");
  total.textContent = state.counts.total.toLocaleString("en-US");
  total.dataset.count = String(state.counts.total);
  $("events-split").textContent = `ws ${state.counts.ws} · sse ${state.counts.sse}`;
}

function el(name, attrs = {}, parent) {
  const e = document.createElementNS(svgNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function niceStep(range, ticks) {
  const raw = range / ticks;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

function renderChart() {
  const svg = $("chart");
  const w = Math.max(200, svg.clientWidth);
  const h = Math.max(120, svg.clientHeight);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const now = Date.now();
  const t0 = now - WINDOW_MS;
  let oldest = now;
  const pad = { l: 52, r: 12, t: 10, b: 24 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;

  let lo = Infinity, hi = -Infinity, points = 0;
  const pct = {};
  for (const sym of SYMBOLS) {
    const s = state.series[sym];
    while (s.length > 2 && s[1].t < t0) s.shift();
    if (s.length) oldest = Math.min(oldest, s[0].t);
    pct[sym] = s.map((p) => ({ t: p.t, v: ((p.price - state.base[sym]) / state.base[sym]) * 100 }));
    for (const p of pct[sym]) { lo = Math.min(lo, p.v); hi = Math.max(hi, p.v); }
    points += s.length;
  }
  svg.dataset.points = String(points);
  if (!points) {
    el("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "empty" }, svg)
      .textContent = "waiting for prices…";
    return;
  }
  lo = Math.min(lo, 0); hi = Math.max(hi, 0);
  const span = Math.max(hi - lo, 0.2);
  lo -= span * 0.08; hi += span * 0.08;
  // The time axis grows with the data up to WINDOW_MS, so a fresh page is not
  // a sliver at the right edge.
  const spanMs = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, now - oldest));
  const tStart = now - spanMs;
  const x = (t) => pad.l + ((Math.max(t, tStart) - tStart) / spanMs) * pw;
  $("chart-span").textContent = `last ${Math.round(spanMs / 1000)} s`;
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * ph;

  const step = niceStep(hi - lo, 5);
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    const yy = y(v).toFixed(1);
    const cls = Math.abs(v) < step / 2 ? "zero-line" : "grid-line";
    el("line", { x1: pad.l, x2: w - pad.r, y1: yy, y2: yy, class: cls }, svg);
    el("text", { x: pad.l - 8, y: Number(yy) + 4, "text-anchor": "end", class: "axis-label" }, svg)
      .textContent = `${v > 0 ? "+" : ""}${v.toFixed(step < 0.1 ? 2 : 1)}%`;
  }
  const tick = spanMs > 30_000 ? 10 : 5;
  for (let s = 0; s * 1000 <= spanMs * 0.96; s += tick) {
    el("text", { x: x(now - s * 1000), y: h - 6, "text-anchor": s === 0 ? "end" : "middle", class: "axis-label" }, svg)
      .textContent = s === 0 ? "now" : `-${s}s`;
  }
  state.gapMarks = state.gapMarks.filter((t) => t >= tStart);
  for (const t of state.gapMarks) {
    el("line", { x1: x(t), x2: x(t), y1: pad.t, y2: h - pad.b, class: "gap-mark" }, svg);
    el("text", { x: x(t) + 4, y: pad.t + 12, class: "axis-label" }, svg).textContent = "gap";
  }
  for (const sym of SYMBOLS) {
    if (!pct[sym].length) continue;
    const d = pct[sym].map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
    el("path", { d, class: "series", stroke: COLORS[sym], "data-symbol": sym }, svg);
    const lastPoint = pct[sym][pct[sym].length - 1];
    el("circle", { cx: x(lastPoint.t).toFixed(1), cy: y(lastPoint.v).toFixed(1), r: 3.5, fill: COLORS[sym] }, svg);
  }
  renderLegend(pct);
}

function renderLegend(pct) {
  const legend = $("legend");
  legend.replaceChildren();
  for (const sym of SYMBOLS) {
    const last = state.last[sym];
    const p = pct[sym][pct[sym].length - 1];
    const item = document.createElement("span");
    item.className = "item";
    const change = p ? p.v : 0;
    item.innerHTML = `<span class="swatch" style="background:${COLORS[sym]}"></span><span class="sym">${sym}</span>` +
      `<span>${last ? last.price.toFixed(2) : "–"}</span>` +
      `<span class="${change >= 0 ? "up" : "down"}">${change >= 0 ? "+" : ""}${change.toFixed(2)}%</span>`;
    legend.appendChild(item);
  }
}

function renderSentiment() {
  const now = Date.now();
  while (state.sentiment.length > 2 && state.sentiment[1].t < now - SPARK_MS) state.sentiment.shift();
  const last = state.sentiment[state.sentiment.length - 1];
  const score = last ? last.score : 0;
  $("needle").style.transform = `rotate(${score * 90}deg)`;
  $("sentiment-value").textContent = last ? `${score >= 0 ? "+" : ""}${score.toFixed(2)}` : "–";
  const label = $("sentiment-label");
  const mood = !last ? "" : score > 0.15 ? "bullish" : score < -0.15 ? "bearish" : "neutral";
  label.textContent = mood || "–";
  label.className = `tag ${mood}`;

  const spark = $("sentiment-spark");
  spark.replaceChildren();
  el("line", { x1: 0, x2: 300, y1: 30, y2: 30, class: "zero-line" }, spark);
  if (state.sentiment.length > 1) {
    const span = Math.min(SPARK_MS, Math.max(MIN_SPARK_MS, now - state.sentiment[0].t));
    const t0 = now - span;
    const d = state.sentiment
      .map((p, i) => {
        const x = ((Math.max(p.t, t0) - t0) / span) * 300;
        return `${i ? "L" : "M"}${x.toFixed(1)},${(30 - p.score * 28).toFixed(1)}`;
      })
      .join("");
    el("path", { d }, spark);
  }
}

function addAlert(ev, d) {
  const list = $("alerts");
  list.querySelector(".empty")?.remove();
  const severity = ["info", "warning", "critical"].includes(d.severity) ? d.severity : ev.topic.slice(7);
  const li = document.createElement("li");
  li.className = `fresh ${severity}`;
  li.dataset.topic = ev.topic;
  li.dataset.offset = String(ev.offset);
  const badge = document.createElement("span");
  badge.className = `sev ${severity}`;
  badge.textContent = severity;
  const msg = document.createElement("span");
  msg.className = "msg";
  const sym = document.createElement("b");
  sym.textContent = d.symbol || "";
  msg.append(sym, document.createTextNode(d.message || JSON.stringify(d)));
  const time = document.createElement("time");
  const at = new Date(d.sent_at || ev.ts || Date.now());
  time.dateTime = at.toISOString();
  time.textContent = at.toLocaleTimeString("en-GB", { hour12: false });
  li.append(badge, msg, time);
  list.prepend(li);
  while (list.children.length > MAX_ALERTS) list.lastElementChild.remove();
  state.alerts += 1;
  $("alerts-count").textContent = String(state.alerts);
}

function notice(title, detail) {
  const box = $("notices");
  const n = document.createElement("div");
  n.className = "notice";
  n.setAttribute("role", "alert");
  const text = document.createElement("div");
  const strong = document.createElement("strong");
  strong.textContent = title;
  text.append(strong, document.createElement("br"), document.createTextNode(detail));
  const close = document.createElement("button");
  close.className = "link close";
  close.textContent = "dismiss";
  close.onclick = () => n.remove();
  n.append(text, close);
  box.prepend(n);
  while (box.children.length > 3) box.lastElementChild.remove();
  setTimeout(() => n.remove(), 60_000);
}

// ---- start ------------------------------------------------------------------------

// For tests and the console: a summary of what the page has seen.
window.dashboard = {
  snapshot: () => ({
    state: state.status.state,
    transport: state.transport,
    statusText: $("status-text").textContent,
    counts: { ...state.counts },
    points: Number($("chart").dataset.points),
    alerts: state.alerts,
    gaps: state.gaps,
    offsetGaps: state.offsetGaps,
    replayed: state.replayed,
    notices: [...document.querySelectorAll(".notice strong")].map((s) => s.textContent),
    latencySamples: state.latencies.length,
  }),
  reconnect: (delayMs) => client.reconnect(delayMs), // drop and resume, as after a network blip
};

for (const b of document.querySelectorAll(".switch button")) {
  b.addEventListener("click", () => { if (b.dataset.transport !== state.transport) connect(b.dataset.transport); });
}
$("publish-alert").addEventListener("click", publishTestAlert);
$("reconnect").addEventListener("click", () => client.reconnect());

connect(state.transport);
renderSentiment();
setInterval(() => {
  renderStats();
  if (state.status.state === "reconnecting") renderStatus();
}, 250);
setInterval(() => {
  // Redraw at 4 Hz so the time axis keeps sliding even when data pauses.
  renderChart();
}, 250);
window.addEventListener("resize", renderChart);
