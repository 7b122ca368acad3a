// Browser test of examples/dashboard (CTest: browser.dashboard, via run.sh).
//   node dashboard_test.mjs <sluice-hub path> <dashboard dir> <out dir>
// Starts `sluice-hub --demo`, drives Debian's Chromium through playwright-core
// and checks, over WebSocket and then over SSE, that events arrive and are
// drawn, that the status pill shows "reconnecting" while the hub is down and
// "connected" once it is back on the same port (with the recovered = false
// notice, since a restarted in-memory hub has new epochs). Screenshots go to
// <out dir>. Every wait is bounded; the hub is always killed at the end.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

const [hubPath, dashboardDir, outDir] = process.argv.slice(2);
if (!hubPath || !dashboardDir || !outDir) {
  console.error("usage: node dashboard_test.mjs <sluice-hub path> <dashboard dir> <out dir>");
  process.exit(2);
}
const npmDir = process.env.SLUICE_NPM_DIR || path.join(outDir, "npm");
const { chromium } = createRequire(path.join(npmDir, "package.json"))("playwright-core");
const CHROMIUM = process.env.SLUICE_CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

// ---- the hub ----------------------------------------------------------------

let hub = null;

function startHub(port) {
  return new Promise((resolve, reject) => {
    const args = ["--listen", `127.0.0.1:${port}`, "--demo", "--allow-publish", "--static", dashboardDir];
    const proc = spawn(hubPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    hub = proc;
    let out = "", err = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`sluice-hub did not print "listening on" within 15 s; stderr: ${err}`));
    }, 15_000);
    proc.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/listening on [^\s]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.stderr.on("data", (chunk) => { err += chunk; });
    proc.on("error", (e) => { clearTimeout(timer); reject(e); });
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sluice-hub exited early (${code ?? signal}); stderr: ${err.trim()}`));
    });
  });
}

async function startHubOnPort(port) {
  // The port was ours a moment ago; retry briefly in case the OS still holds it.
  for (let i = 0; ; ++i) {
    try {
      return await startHub(port);
    } catch (e) {
      if (i >= 20 || port === 0) throw e;
      await sleep(250);
    }
  }
}

function stopHub(proc) {
  return new Promise((resolve) => {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return resolve(proc?.exitCode);
    const kill = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    proc.once("exit", (code, signal) => { clearTimeout(kill); resolve(code ?? signal); });
    proc.kill("SIGTERM");
  });
}

process.on("exit", () => { if (hub && hub.exitCode === null) hub.kill("SIGKILL"); });

// ---- helpers ------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(cond, what, detail) {
  if (!cond) throw new Error(`assertion failed: ${what}${detail ? `: ${JSON.stringify(detail)}` : ""}`);
  log(`ok: ${what}`);
}

async function waitFor(page, what, pred, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let snap;
  for (;;) {
    snap = await page.evaluate(() => window.dashboard?.snapshot());
    if (snap && pred(snap)) {
      log(`ok: ${what}`);
      return snap;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last snapshot: ${JSON.stringify(snap)}`);
    }
    await sleep(100);
  }
}

async function health(port) {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return (await res.json()).connections;
}

// Stops the hub, checks that the page says "reconnecting" (never "connected")
// while it is down, restarts it on the same port and waits for the page to
// come back, receive events again and report the gap.
async function bounceHub(page, port, transport) {
  const before = await page.evaluate(() => window.dashboard.snapshot());
  log(`stopping the hub (SIGTERM)`);
  check((await stopHub(hub)) === 0, "sluice-hub exits 0 on SIGTERM");
  const down = await waitFor(page, `${transport}: status shows reconnecting`,
    (s) => s.state === "reconnecting" && /^reconnecting/.test(s.statusText), 10_000);
  if (transport === "ws") await page.screenshot({ path: path.join(outDir, "dashboard-reconnecting.png") });
  const seen = new Set([down.statusText]);
  for (let i = 0; i < 15; ++i) { // 1.5 s of downtime
    const s = await page.evaluate(() => window.dashboard.snapshot());
    if (s.state === "connected") throw new Error(`${transport}: the page says connected while the hub is down`);
    seen.add(s.statusText);
    await sleep(100);
  }
  check([...seen].some((t) => /^reconnecting in \d+ s$/.test(t)),
    `${transport}: a countdown is shown while the hub is down (${[...seen].join(" | ")})`);
  const restarted = await startHubOnPort(port);
  check(restarted.port === port, `hub restarted on the same port ${port}`);
  const back = await waitFor(page, `${transport}: status back to connected`,
    (s) => s.state === "connected" && s.transport === transport && /^connected/.test(s.statusText), 45_000);
  await waitFor(page, `${transport}: events resume after the restart`,
    (s) => s.counts[transport] >= back.counts[transport] + 10, 15_000);
  const after = await waitFor(page, `${transport}: recovered=false notice shown (new epochs after a restart)`,
    (s) => s.gaps > before.gaps && s.notices.some((n) => n.startsWith("gap: history could not be recovered")), 10_000);
  return after;
}

// Drops the connection while the hub stays up: the client must resume (WebSocket
// `since`, SSE Last-Event-ID token) with recovered = true and no offset gap.
async function dropAndResume(page, transport) {
  // Away for 1.5 s: about 20 events are published meanwhile and must be replayed.
  const before = await page.evaluate(() => { window.dashboard.reconnect(1500); return window.dashboard.snapshot(); });
  await waitFor(page, `${transport}: reconnecting after a dropped connection`, (s) => s.state === "reconnecting", 2_000);
  const after = await waitFor(page, `${transport}: reconnected after a dropped connection`,
    (s) => s.state === "connected" && s.counts[transport] >= before.counts[transport] + 25, 15_000);
  check(after.gaps === before.gaps, `${transport}: the resume was recovered (no gap notice)`, after);
  check(after.offsetGaps === before.offsetGaps, `${transport}: no offset missing in any topic across the drop`, after);
  check(after.replayed >= before.replayed + 10, `${transport}: the events published meanwhile were replayed`, after);
}

// ---- the test -------------------------------------------------------------------

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const first = await startHub(0);
  const port = first.port;
  log(`sluice-hub listening on 127.0.0.1:${port}`);

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 900 },
      deviceScaleFactor: 1,
      timeout: 60_000,
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15_000);
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") log(`page console error: ${m.text()}`); });

    // -- WebSocket --
    await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: "load" });
    check((await page.title()).includes("sluice"), "the dashboard page is served at /");
    await waitFor(page, "ws: status connected", (s) => s.state === "connected" && s.transport === "ws", 15_000);
    let s = await waitFor(page, "ws: events arrive and chart points appear",
      (x) => x.counts.ws >= 20 && x.points >= 10 && x.latencySamples > 0, 20_000);
    check(s.counts.sse === 0, "ws: nothing counted as SSE yet", s.counts);
    check(/connected/.test(await page.textContent("#status")), "ws: the pill reads connected");
    // What a person sees (the page redraws at 4 Hz).
    await page.waitForFunction(() =>
      Number(document.querySelector("#events-total").dataset.count) >= 20 &&
      document.querySelectorAll("#chart path.series").length === 3 &&
      /^\d+ ms$/.test(document.querySelector("#latency").textContent) &&
      Number(document.querySelector("#rate").textContent) > 0, null, { timeout: 5_000 });
    log("ok: ws: the counters, latency, events/s and three price lines are on screen");
    const conns = await health(port);
    check(conns.ws === 1 && conns.sse === 0, "ws: the hub sees one WebSocket and no SSE stream", conns);

    // Alerts published from outside (HTTP) and from the page's own button.
    for (const severity of ["info", "warning"]) {
      const res = await fetch(`http://127.0.0.1:${port}/publish`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ topic: `alerts:${severity}`, event: "alert", data: {
          severity, symbol: "TEST", sent_at: Date.now(),
          message: `${severity === "info" ? "An" : "A"} ${severity} alert published over HTTP` } }),
      });
      check(res.status === 200, `POST /publish of an ${severity} alert answers 200`, res.status);
    }
    await page.locator("#alerts li.info .sev.info").first().waitFor({ timeout: 10_000 });
    await page.locator("#alerts li.warning .sev.warning").first().waitFor({ timeout: 10_000 });
    log("ok: ws: alerts published over HTTP appear with their severity badges");
    await page.selectOption("#alert-severity", "critical");
    await page.click("#publish-alert");
    await page.locator("#alerts li.critical", { hasText: "Test alert from the dashboard" }).first()
      .waitFor({ timeout: 10_000 });
    log("ok: ws: the published test alert appears in the feed, in its severity colour");

    // 20 s of data (3 series at 5 Hz) make a screenshot worth looking at.
    await waitFor(page, "ws: 20 s of data for the screenshot", (x) => x.points >= 300, 40_000);
    await sleep(300); // one more redraw
    await page.screenshot({ path: path.join(outDir, "dashboard.png") });
    log(`saved ${path.join(outDir, "dashboard.png")}`);

    await dropAndResume(page, "ws");
    await bounceHub(page, port, "ws");
    await page.screenshot({ path: path.join(outDir, "dashboard-reconnected.png") });

    // -- SSE --
    const beforeSse = await page.evaluate(() => window.dashboard.snapshot());
    await page.click("#transport-sse");
    await waitFor(page, "sse: status connected", (x) => x.state === "connected" && x.transport === "sse", 15_000);
    s = await waitFor(page, "sse: events arrive over SSE and are drawn",
      (x) => x.counts.sse >= 20 && x.points > 0, 20_000);
    check(s.counts.ws <= beforeSse.counts.ws + 5, "sse: the WebSocket no longer delivers", s.counts);
    const sseConns = await health(port);
    check(sseConns.sse === 1 && sseConns.ws === 0, "sse: the hub sees one SSE stream and no WebSocket", sseConns);
    check(new URL(page.url()).searchParams.get("transport") === "sse", "sse: the choice is kept in the URL");
    await page.screenshot({ path: path.join(outDir, "dashboard-sse.png") });
    log(`saved ${path.join(outDir, "dashboard-sse.png")}`);

    await dropAndResume(page, "sse");
    await bounceHub(page, port, "sse");

    // -- and back to WebSocket, resuming where SSE stopped --
    await page.click("#transport-ws");
    const ws2 = await page.evaluate(() => window.dashboard.snapshot());
    await waitFor(page, "ws again: events arrive after switching back",
      (x) => x.state === "connected" && x.transport === "ws" && x.counts.ws >= ws2.counts.ws + 10, 15_000);
    const final = await page.evaluate(() => window.dashboard.snapshot());
    check(final.gaps === ws2.gaps && final.offsetGaps === ws2.offsetGaps,
      "ws again: switching from SSE to WebSocket resumes without a gap or a missing offset", final);

    check(pageErrors.length === 0, "no uncaught errors in the page", pageErrors);
  } finally {
    await context?.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error("FAIL: the browser test took more than 240 s");
  if (hub) hub.kill("SIGKILL");
  process.exit(1);
}, 240_000);

try {
  await main();
  log("PASS: browser.dashboard");
  process.exitCode = 0;
} catch (e) {
  console.error(`FAIL: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await stopHub(hub);
}
