// Unit test of examples/dashboard/sluice.js in plain Node (no browser, no hub):
// a scripted fake WebSocket checks the protocol steps the browser test cannot
// force: backoff bounds, `since` on resume, deduplication, close-code handling.
//   node sluice_client_test.mjs <dashboard dir>
import assert from "node:assert/strict";
import path from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.argv[2];
const { SluiceClient, backoffDelay, isExactTopic } = await import(pathToFileURL(path.join(dir, "sluice.js")));
const tick = () => new Promise((r) => setTimeout(r, 5));
let failures = 0;
async function test(name, fn) {
  try {
    await fn();
    console.log(`ok: ${name}`);
  } catch (e) {
    failures += 1;
    console.error(`FAIL: ${name}\n${e.stack}`);
  }
}

// A WebSocket double: records what the client sends, lets the test push frames.
class FakeWebSocket {
  static OPEN = 1;
  static all = [];
  constructor(url) {
    this.url = String(url);
    this.sent = [];
    this.readyState = 1;
    FakeWebSocket.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; }
  push(msg) { this.onmessage?.({ data: JSON.stringify(msg) }); }
  drop(code, reason = "") { this.readyState = 3; this.onclose?.({ code, reason }); }
  static last() { return FakeWebSocket.all[FakeWebSocket.all.length - 1]; }
}
globalThis.WebSocket = FakeWebSocket;

const welcome = { type: "welcome", version: 1, session: "s1", server_time: 0, ping_interval_ms: 25000, pong_timeout_ms: 10000 };
const ev = (topic, offset, epoch = "e1") => ({ type: "event", sub: topic, topic, offset, epoch, ts: 0, data: { n: offset } });

function client(extra = {}) {
  const seen = { events: [], statuses: [], gaps: [] };
  const c = new SluiceClient({
    url: "http://hub.test:8080", transport: "ws", topics: ["prices:AAPL", "alerts:#"],
    random: () => 0, // no waiting between attempts
    onEvent: (e) => seen.events.push(`${e.topic}@${e.offset}`),
    onStatus: (s) => seen.statuses.push(s.state),
    onRecovered: (t) => seen.gaps.push(t),
    ...extra,
  });
  return { c, seen };
}

await test("backoff: full jitter under an exponential ceiling capped at 30 s", () => {
  assert.equal(backoffDelay(0, undefined, () => 0), 0);
  assert.equal(backoffDelay(0, undefined, () => 0.999), 999);
  assert.equal(backoffDelay(3, undefined, () => 0.5), 4000);
  assert.equal(backoffDelay(5, undefined, () => 0.999999), 29999);
  assert.equal(backoffDelay(50, undefined, () => 0.999999), 29999);
});

await test("exact topics vs patterns", () => {
  assert.ok(isExactTopic("prices:AAPL"));
  assert.ok(!isExactTopic("alerts:#"));
  assert.ok(!isExactTopic("country:*:gdp"));
});

await test("ws: subscribes after welcome, dedupes, resumes with since, reports recovered=false", async () => {
  const { c, seen } = client();
  c.start();
  await tick();
  const ws = FakeWebSocket.last();
  assert.equal(ws.url, "ws://hub.test:8080/ws");
  assert.equal(ws.sent.length, 0, "nothing sent before welcome");
  ws.push(welcome);
  assert.deepEqual(ws.sent.map((m) => [m.type, m.topic, m.since]), [
    ["subscribe", "prices:AAPL", undefined], ["subscribe", "alerts:#", undefined]]);
  assert.equal(c.state, "connected");
  ws.push({ type: "subscribed", id: ws.sent[0].id, topic: "prices:AAPL", epoch: "e1", offset: 4 });
  ws.push(ev("prices:AAPL", 5));
  ws.push(ev("prices:AAPL", 5)); // duplicate
  ws.push(ev("prices:AAPL", 6));
  assert.deepEqual(seen.events, ["prices:AAPL@5", "prices:AAPL@6"]);

  ws.drop(1006);
  assert.equal(c.state, "reconnecting");
  await tick();
  const ws2 = FakeWebSocket.last();
  assert.notEqual(ws2, ws);
  ws2.push(welcome);
  assert.deepEqual(ws2.sent[0].since, { offset: 6, epoch: "e1" }, "resumes from the last event seen");
  assert.equal(ws2.sent[1].since, undefined, "no since on a pattern");
  ws2.push({ type: "subscribed", id: ws2.sent[0].id, topic: "prices:AAPL", epoch: "e1", offset: 8, recovered: true });
  const replayed = [];
  c.onEvent = (e) => replayed.push(`${e.offset}${e.replayed ? "r" : ""}`);
  for (const o of [6, 7, 8, 9]) ws2.push(ev("prices:AAPL", o)); // 6 was seen before the drop
  assert.deepEqual(replayed, ["7r", "8r", "9"], "replayed events are flagged; the duplicate is dropped");
  c.onEvent = (e) => seen.events.push(`${e.topic}@${e.offset}`);
  ws2.drop(1006);
  await tick();
  const ws3 = FakeWebSocket.last();
  ws3.push(welcome);
  assert.deepEqual(ws3.sent[0].since, { offset: 9, epoch: "e1" });
  ws3.push({ type: "subscribed", id: ws3.sent[0].id, topic: "prices:AAPL", epoch: "e2", offset: 1, recovered: false });
  assert.deepEqual(seen.gaps, ["prices:AAPL"]);
  ws3.push(ev("prices:AAPL", 2, "e2"));
  assert.deepEqual(seen.events.at(-1), "prices:AAPL@2", "a new epoch's events pass the dedupe");
  c.stop();
  assert.equal(c.state, "offline");
});

for (const code of [1000, 1003, 1007, 1009, 4500, 4503]) {
  await test(`ws: close ${code} is terminal (offline, no reconnection)`, async () => {
    const { c } = client();
    c.start();
    await tick();
    const before = FakeWebSocket.all.length;
    FakeWebSocket.last().push(welcome);
    FakeWebSocket.last().drop(code);
    await tick();
    assert.equal(c.state, "offline");
    assert.equal(FakeWebSocket.all.length, before, "no new connection");
  });
}

for (const code of [1001, 1006, 1011, 1013, 4001, 4429]) {
  await test(`ws: close ${code} reconnects`, async () => {
    const { c } = client();
    c.start();
    await tick();
    const before = FakeWebSocket.all.length;
    FakeWebSocket.last().push(welcome);
    FakeWebSocket.last().drop(code);
    assert.equal(c.state, "reconnecting");
    await tick();
    assert.equal(FakeWebSocket.all.length, before + 1, "a new connection");
    c.stop();
  });
}

await test("ws: 4429 backs off longer than an ordinary drop", async () => {
  const delays = {};
  for (const code of [1006, 4429]) {
    const { c } = client({ random: () => 0.5 });
    let retryIn = 0;
    c.onStatus = (s) => { if (s.state === "reconnecting" && s.retryAt) retryIn = s.retryInMs; };
    c.start();
    await tick();
    FakeWebSocket.last().push(welcome);
    FakeWebSocket.last().drop(code);
    delays[code] = retryIn;
    c.stop();
  }
  assert.ok(delays[1006] <= 500 && delays[4429] >= 3900, JSON.stringify(delays));
});

await test("ws: a connection that drops right after the handshake keeps backing off", async () => {
  const { c } = client({ random: () => 0.5, backoff: { baseMs: 10 } });
  const delays = [];
  c.onStatus = (st) => { if (st.state === "reconnecting" && st.retryAt) delays.push(st.retryAt - Date.now()); };
  c.start();
  for (let i = 0; i < 3; ++i) {
    await new Promise((r) => setTimeout(r, 60));
    FakeWebSocket.last().push(welcome);
    FakeWebSocket.last().drop(1011);
  }
  c.stop();
  assert.equal(delays.length, 3);
  assert.ok(delays[0] <= 5 && delays[1] >= 8 && delays[1] <= 10 && delays[2] >= 18, JSON.stringify(delays));
});

await test("ws: liveness: an application ping when quiet, reconnection when silent too long", async () => {
  const { c } = client();
  c.start();
  await tick();
  const ws = FakeWebSocket.last();
  // Margins of 200 ms either side of each deadline, for loaded CI machines.
  ws.push({ ...welcome, ping_interval_ms: 300, pong_timeout_ms: 300 });
  assert.ok(!ws.sent.some((m) => m.type === "ping"));
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(ws.sent.some((m) => m.type === "ping"), "sent a ping after ping_interval_ms of silence");
  assert.equal(c.state, "connected");
  ws.push({ type: "pong", ts: 0 }); // any frame counts as liveness
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(c.state, "connected", "the pong kept it alive");
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(c.state, "reconnecting", "silent for ping + pong timeout: dead");
  c.stop();
});

await test("ws: an unknown protocol version stops", async () => {
  const { c } = client();
  c.start();
  await tick();
  FakeWebSocket.last().push({ ...welcome, version: 2 });
  assert.equal(c.state, "offline");
});

await test("ws: token in the query string; 4401 without a token function goes offline", async () => {
  const { c } = client({ token: "abc" });
  c.start();
  await tick();
  assert.equal(FakeWebSocket.last().url, "ws://hub.test:8080/ws?token=abc");
  FakeWebSocket.last().push(welcome);
  FakeWebSocket.last().drop(4401);
  assert.equal(c.state, "offline");
});

await test("ws: positions handed over from another client resume at once", async () => {
  const { c } = client({ positions: { "prices:AAPL": { offset: 9, epoch: "e7" } } });
  c.start();
  await tick();
  FakeWebSocket.last().push(welcome);
  assert.deepEqual(FakeWebSocket.last().sent[0].since, { offset: 9, epoch: "e7" });
  c.stop();
});

if (failures) {
  console.error(`${failures} sluice.js unit test(s) failed`);
  process.exit(1);
}
console.log("PASS: sluice.js unit tests");
