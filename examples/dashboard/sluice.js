// sluice.js: a small, dependency-free browser client for the sluice wire
// protocol, version 1 (docs/protocol.md). An ES module; no build step.
//
//   import { SluiceClient } from "./sluice.js";
//   const client = new SluiceClient({
//     url: location.origin, transport: "ws", topics: ["prices:AAPL"],
//     onEvent: (ev) => console.log(ev.topic, ev.offset, ev.data),
//     onStatus: (st) => console.log(st.state, st.retryInMs),
//     onRecovered: (topic, info) => console.warn("gap on", topic, info),
//   });
//   client.start();
//
// Guarantees: each (topic, offset) reaches onEvent at most once, in offset
// order per topic (events replayed after a resume carry `replayed: true`); after a reconnection every exact topic resumes from the last
// event seen (WebSocket `since`, SSE resume token), and when the server says
// the gap could not be filled (`recovered: false`) onRecovered is called before
// any event of the new position. Reconnection uses exponential backoff with full
// jitter (1 s base, x2, 30 s cap) and honours the close codes of the protocol.

const TERMINAL_CLOSE = new Set([1000, 1002, 1003, 1007, 1009]);
const HEALTHY_MS = 10_000;

/** True for a subscription string that names one topic (no `*` or `#`). */
export function isExactTopic(topic) {
  return !topic.split(":").some((s) => s === "*" || s === "#");
}

/** Full-jitter backoff: a uniform delay in [0, min(max, base * factor^attempt)). */
export function backoffDelay(attempt, { baseMs = 1000, factor = 2, maxMs = 30000 } = {}, random = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * Math.pow(factor, Math.min(attempt, 30)));
  return Math.floor(random() * ceiling);
}

export class SluiceClient {
  /**
   * @param {object} o
   * @param {string} o.url         base URL of the hub ("http://host:port"); default location.origin
   * @param {"ws"|"sse"} o.transport
   * @param {string[]} o.topics    topics or patterns to follow
   * @param {string[]} [o.eventNames] SSE event names to listen for besides "message"
   * @param {(ev: object) => void} [o.onEvent]   the WebSocket `event` object (same over SSE)
   * @param {(st: object) => void} [o.onStatus]
   *        {state, transport, attempt, retryAt, retryInMs, closeCode, reason, session}
   * @param {(topic: string, info: object) => void} [o.onRecovered] called when a resume failed (recovered: false)
   * @param {Object<string,{offset:number,epoch:string}>} [o.positions] where to resume from (WebSocket only)
   * @param {string|(() => string|Promise<string>)} [o.token] a token, or a function giving a fresh one
   */
  constructor(o) {
    this.url = (o.url || globalThis.location.origin).replace(/\/$/, "");
    this.transport = o.transport === "sse" ? "sse" : "ws";
    this.topics = [...new Set(o.topics || [])];
    this.eventNames = o.eventNames || [];
    this.onEvent = o.onEvent || (() => {});
    this.onStatus = o.onStatus || (() => {});
    this.onRecovered = o.onRecovered || (() => {});
    this.backoff = { baseMs: 1000, factor: 2, maxMs: 30000, ...(o.backoff || {}) };
    this.random = o.random || Math.random;
    this.token = o.token;
    this.positions = new Map(Object.entries(o.positions || {})); // topic -> {offset, epoch}
    this.replayTop = new Map(); // topic -> {offset, epoch}: events up to here are a replay
    this.attempt = 0;
    this.state = "idle";
    this.sseLastId = "";
    this.timers = {};
    this.stopped = true;
    this.connectedAt = 0;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    // Back online: skip the rest of the backoff wait.
    this._online = () => { if (this.state === "reconnecting" && !this.stopped) this._connectNow(); };
    globalThis.addEventListener?.("online", this._online);
    this._connect();
  }

  /** Closes the connection for good (status "offline"). */
  stop(reason = "stopped") {
    this.stopped = true;
    globalThis.removeEventListener?.("online", this._online);
    this._teardown();
    this._status("offline", { reason });
  }

  /** Drops the current connection and connects again after delayMs (default: at once), resuming where it was. */
  reconnect(delayMs = 0) {
    if (this.stopped) return this.start();
    this._teardown();
    this.attempt = 0;
    this.connectedAt = 0;
    const retryAt = Date.now() + delayMs;
    this._status("reconnecting", { retryAt, reason: "reconnect requested" });
    this.timers.retry = setTimeout(() => this._connect(), delayMs);
  }

  /** Publishes over HTTP (POST /publish); resolves to {topic, offset, epoch}. */
  async publish(topic, data, event) {
    const headers = { "Content-Type": "application/json" };
    const token = await this._token();
    if (token) headers.Authorization = `Bearer ${token}`;
    const body = JSON.stringify(event ? { topic, data, event } : { topic, data });
    const res = await fetch(`${this.url}/publish`, { method: "POST", headers, body });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${res.status} ${json.code || ""}: ${json.message || res.statusText}`);
    return json;
  }

  /** The last position seen per exact topic, to hand to another client. */
  snapshotPositions() {
    return Object.fromEntries(this.positions);
  }

  // ---- connection lifecycle ------------------------------------------------

  async _connect() {
    this._teardown();
    const generation = (this.generation = (this.generation || 0) + 1);
    this._status(this.attempt === 0 ? "connecting" : "reconnecting", { retryAt: 0 });
    let token;
    try {
      token = await this._token();
    } catch (e) {
      return this._retry({ reason: `token: ${e.message}` });
    }
    if (this.stopped || generation !== this.generation) return; // superseded while waiting
    if (this.transport === "ws") this._openWebSocket(token);
    else this._openEventSource(token);
  }

  _connectNow() {
    clearTimeout(this.timers.retry);
    this._connect();
  }

  _teardown() {
    for (const t of Object.values(this.timers)) clearTimeout(t);
    this.timers = {};
    if (this.ws) {
      this.ws.onopen = this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
      try { this.ws.close(1000); } catch { /* already closed */ }
      this.ws = null;
    }
    if (this.es) {
      this.es.close();
      this.es = null;
    }
  }

  // Schedules the next attempt: full jitter over an exponentially growing ceiling.
  _retry({ closeCode, reason, extraAttempts = 0 } = {}) {
    this._teardown();
    if (this.stopped) return;
    // A connection that stayed up a while starts the backoff afresh; one that
    // keeps dropping right after the handshake keeps backing off.
    if (this.connectedAt && Date.now() - this.connectedAt >= HEALTHY_MS) this.attempt = 0;
    this.connectedAt = 0;
    const delay = backoffDelay(this.attempt + extraAttempts, this.backoff, this.random);
    this.attempt += 1;
    const retryAt = Date.now() + delay;
    this._status("reconnecting", { retryAt, closeCode, reason });
    this.timers.retry = setTimeout(() => this._connect(), delay);
  }

  _status(state, extra = {}) {
    this.state = state;
    const retryAt = extra.retryAt || 0;
    this.onStatus({
      state, transport: this.transport, attempt: this.attempt, retryAt,
      retryInMs: retryAt ? Math.max(0, retryAt - Date.now()) : 0,
      session: this.session, ...extra,
    });
  }

  async _token() {
    return typeof this.token === "function" ? await this.token() : this.token;
  }

  // ---- events, positions and deduplication ---------------------------------

  // Returns false for an event already delivered (same epoch, offset not newer).
  _accept(ev) {
    if (!isExactTopic(ev.topic) || typeof ev.offset !== "number") return true;
    const p = this.positions.get(ev.topic);
    if (p && p.epoch === ev.epoch && ev.offset <= p.offset) return false;
    this.positions.set(ev.topic, { offset: ev.offset, epoch: ev.epoch });
    return true;
  }

  _event(ev) {
    const top = this.replayTop.get(ev.topic);
    if (top) {
      if (top.epoch === ev.epoch && ev.offset <= top.offset) ev.replayed = true;
      else this.replayTop.delete(ev.topic);
    }
    if (this._accept(ev)) this.onEvent(ev);
  }

  _subscribed(msg, resumed) {
    if (msg.recovered === false && resumed) this.onRecovered(msg.topic, msg);
    // After `recovered: true`, the events up to the answer's offset are the replay.
    if (msg.recovered === true && typeof msg.offset === "number") {
      this.replayTop.set(msg.topic, { offset: msg.offset, epoch: msg.epoch });
    }
    // A plain or failed-resume subscription starts at the topic's current top.
    if (msg.recovered !== true && isExactTopic(msg.topic) && typeof msg.offset === "number") {
      this.positions.set(msg.topic, { offset: msg.offset, epoch: msg.epoch });
    }
  }

  // ---- WebSocket (PROTOCOL.md section 3) -----------------------------------

  _openWebSocket(token) {
    const u = new URL("/ws", this.url);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    if (token) u.searchParams.set("token", token);
    const ws = (this.ws = new WebSocket(u));
    const pending = new Map(); // request id -> {topic, resumed}
    let nextId = 1;
    let liveness = { pingMs: 25000, deadMs: 35000 };

    // Browsers answer the server's ping frames without telling the page, so
    // liveness is "some frame arrived lately": when quiet for ping_interval we
    // send an application ping, and with nothing for ping_interval +
    // pong_timeout the connection is declared dead.
    const arm = () => {
      clearTimeout(this.timers.ping);
      clearTimeout(this.timers.dead);
      this.timers.ping = setTimeout(() => send({ type: "ping" }), liveness.pingMs);
      this.timers.dead = setTimeout(
        () => this._retry({ closeCode: 4001, reason: "no frames: connection dead" }), liveness.deadMs);
    };
    const send = (msg) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    };

    arm(); // also bounds the connection attempt itself
    ws.onmessage = (m) => {
      arm();
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      switch (msg.type) {
        case "welcome": {
          if (msg.version !== 1) return this.stop(`unsupported protocol version ${msg.version}`);
          this.session = msg.session;
          const ping = Number.isFinite(msg.ping_interval_ms) ? msg.ping_interval_ms : 25000;
          const pong = Number.isFinite(msg.pong_timeout_ms) ? msg.pong_timeout_ms : 10000;
          liveness = { pingMs: ping, deadMs: ping + pong };
          arm();
          for (const topic of this.topics) {
            const req = { type: "subscribe", id: nextId++, topic };
            const p = isExactTopic(topic) && this.positions.get(topic);
            if (p) req.since = { offset: p.offset, epoch: p.epoch };
            pending.set(req.id, { topic, resumed: !!p });
            send(req);
          }
          this.connectedAt = Date.now();
          this._status("connected", { session: msg.session });
          break;
        }
        case "subscribed":
          this._subscribed(msg, pending.get(msg.id)?.resumed);
          pending.delete(msg.id);
          break;
        case "event":
          this._event(msg);
          break;
        case "error":
          pending.delete(msg.id);
          this._status(this.state, { reason: `${msg.code}: ${msg.message}` });
          break;
      }
    };
    ws.onclose = (e) => {
      const code = e.code;
      if (TERMINAL_CLOSE.has(code) || (code >= 4500 && code <= 4999)) {
        this.stop(`closed ${code}${e.reason ? ` (${e.reason})` : ""}`);
      } else if (code === 4401 && typeof this.token !== "function") {
        this.stop("token expired (4401)");
      } else {
        this._retry({ closeCode: code, reason: e.reason || `closed ${code}`, extraAttempts: code === 4429 ? 3 : 0 });
      }
    };
  }

  // ---- Server-Sent Events (PROTOCOL.md section 4) --------------------------

  // The browser's own EventSource reconnection would resume too (it sends
  // Last-Event-ID), but at a fixed `retry` pace and with no visible countdown,
  // so on error we close it and reconnect with our backoff, passing the last
  // resume token as ?lastEventId=.
  _openEventSource(token) {
    const u = new URL("/events", this.url);
    for (const t of this.topics) u.searchParams.append("topic", t);
    if (this.sseLastId) u.searchParams.set("lastEventId", this.sseLastId);
    if (token) u.searchParams.set("token", token);
    const resumed = !!this.sseLastId;
    const es = (this.es = new EventSource(u));
    const track = (m) => { if (m.lastEventId) this.sseLastId = m.lastEventId; };
    const onData = (m) => {
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      if (msg.type === "event") this._event(msg);
      track(m);
    };
    es.onopen = () => {
      this.connectedAt = Date.now();
      this._status("connected");
    };
    es.addEventListener("subscribed", (m) => {
      track(m);
      try { this._subscribed(JSON.parse(m.data), resumed); } catch { /* ignore */ }
    });
    es.addEventListener("message", onData);
    for (const name of this.eventNames) {
      if (name !== "message" && name !== "subscribed") es.addEventListener(name, onData);
    }
    es.onerror = () => this._retry({ reason: "event stream interrupted" });
  }
}
