/**
 * The scenarios, each run against one started target with one pool of load workers:
 *
 * - {@link idle}: N connections with heartbeats → RSS and V8 heap per connection after a forced
 *   GC, CPU over a window (default a full minute).
 * - {@link relay}: pairs exchanging offer/answer/candidate at a fixed total rate, open-loop.
 * - {@link saturation}: relay at rising rates; the highest rate whose p99 stays under the bound.
 * - {@link fanout}: rooms of k peers, one sender each → per-delivery and all-delivered latency.
 * - cross-pod relay: see cross-pod.ts.
 *
 * CPU and RSS are read from `/proc` (outside the server); forced GCs and heap usage go through the
 * inspector, attached only between measurements.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { encode, mergeEncoded, summarize, type LatencySummary } from "./histogram.ts";
import type { LoadResult } from "./load/ipc.ts";
import type { LoadPool } from "./load/pool.ts";
import type { BenchOptions } from "./options.ts";
import { CpuMeter, ForeignCpuMeter, rssOf, type Rss } from "./proc.ts";
import { TARGET_PROTOCOL, type Target } from "./targets.ts";

/** What every scenario gets. */
export interface ScenarioContext {
  readonly target: Target;
  readonly pool: LoadPool;
  readonly options: BenchOptions;
  /** Progress lines (stderr). */
  readonly log: (line: string) => void;
  /** Where profiles go when `options.profile` is on. */
  readonly profileDir: string;
}

/** Memory of the target after a forced GC. */
export interface MemorySample {
  readonly rss: number;
  readonly anon: number;
  readonly heapUsed: number;
}

export interface IdleResult {
  readonly connections: number;
  readonly failed: number;
  readonly failures: readonly string[];
  readonly connectSeconds: number;
  readonly before: MemorySample;
  readonly after: MemorySample;
  /** RSS at the end of the CPU window, before the forced GC. */
  readonly rssUnforced: number;
  readonly rssPerConnection: number;
  readonly anonPerConnection: number;
  readonly heapPerConnection: number;
  /** RSS per connection without forcing a GC (what the pod would show on its own). */
  readonly rssPerConnectionUnforced: number;
  readonly cpuPercentOfCore: number;
  readonly cpuWindowSeconds: number;
  readonly generatorCpuPercentOfCore: number;
  /** CPU other processes on the machine used during the window (the box is shared). */
  readonly foreignCpuPercentOfCore: number;
  /** The pod's event-loop delay over the CPU window (Switchboard only). */
  readonly serverEventLoopLag?: { readonly p50Ms: number; readonly p99Ms: number; readonly maxMs: number };
}

export interface RoomsMemoryResult {
  /** Per connection, after every pair joined its two-peer room (Switchboard). */
  readonly rssPerConnection: number;
  readonly heapPerConnection: number;
  readonly after: MemorySample;
}

export interface RelayResult {
  readonly ratePerSec: number;
  readonly seconds: number;
  readonly connections: number;
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly socketsClosed: number;
  readonly achievedRatePerSec: number;
  /** Receive time − intended send time (the headline: no coordinated omission). */
  readonly latency: LatencySummary;
  /** Receive time − actual send time (the part the generator's own scheduling did not add). */
  readonly latencyFromActual: LatencySummary;
  readonly serverCpuPercentOfCore: number;
  readonly generatorCpuPercentOfCore: number;
  readonly acksPerSec: number;
  readonly maxSendLagMs: number;
  readonly workerLoopDelayP99Ms: number;
  /** CPU other processes on the machine used during the run (the box is shared). */
  readonly foreignCpuPercentOfCore: number;
  /** Runs made for this figure: a run disturbed by other processes is repeated (at most 3 in all). */
  readonly attempts: number;
  /**
   * The pod's own event-loop delay over the run, beyond its 10 ms sampling timer (`/metrics`),
   * Switchboard only.
   */
  readonly serverEventLoopLag?: { readonly p50Ms: number; readonly p99Ms: number; readonly maxMs: number };
  /** HdrHistogram V2 (compressed base64, µs) of `latency`. */
  readonly histogram: string;
}

export interface SaturationStep extends RelayResult {
  readonly pass: boolean;
}

export interface SaturationResult {
  /** Highest rate that passed (0 when none did). */
  readonly ratePerSec: number;
  readonly criterion: string;
  /** Lowest rate that failed (null when none did within the steps). */
  readonly firstFailingRatePerSec: number | null;
  readonly steps: readonly SaturationStep[];
}

export interface FanoutResult {
  readonly k: number;
  readonly rooms: number;
  readonly broadcastsPerSec: number;
  readonly deliveriesPerSec: number;
  readonly seconds: number;
  readonly sent: number;
  readonly expectedDeliveries: number;
  readonly receivedDeliveries: number;
  readonly lostDeliveries: number;
  readonly errors: Readonly<Record<string, number>>;
  /** Per delivery: receive − intended send. */
  readonly latency: LatencySummary;
  /** Per broadcast: the last member's receive − intended send. */
  readonly allDelivered: LatencySummary;
  readonly serverCpuPercentOfCore: number;
}

/** A scenario that was not run, and why. */
export interface NotRun {
  readonly status: "not-run";
  readonly reason: string;
}

const DRAIN_MS = 3000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Forces a full GC in the target, lets the allocator settle, reads RSS and heap. */
export async function measureMemory(target: Target): Promise<MemorySample> {
  const session = await target.inspect();
  let heapUsed: number;
  try {
    await session.collectGarbage();
    heapUsed = (await session.heapUsage()).usedSize;
  } finally {
    await session.close();
  }
  await sleep(1000);
  const rss: Rss = rssOf(target.pid);
  return { rss: rss.rss, anon: rss.anon, heapUsed };
}

/**
 * Warms the target up before its baseline is taken: opens a few clients, pairs them, relays a
 * little and closes them, so code compiled and caches filled on first use are not counted as
 * per-connection cost.
 */
export async function warmUp(ctx: ScenarioContext): Promise<void> {
  const { pool, target, options } = ctx;
  const protocol = TARGET_PROTOCOL[target.name];
  await pool.connect({ protocol, urls: [target.wsUrl], total: 100 * pool.size, groupSize: 2, concurrency: 100, peerjsHeartbeatMs: options.peerjsHeartbeatMs, ackIntervalMs: options.ackIntervalMs, idPrefix: "warm" });
  if (protocol !== "plain") {
    await pool.layout({ kind: "pairs" }, 100);
    await pool.run("relay", 1000, 2000, DRAIN_MS);
  }
  await pool.closeClients();
  await sleep(2000);
}

/** Writes `<profileDir>/<target>-<name>.heapsnapshot` (compare two in DevTools' Comparison view). */
async function heapSnapshot(ctx: ScenarioContext, name: string): Promise<void> {
  const session = await ctx.target.inspect();
  try {
    await session.heapSnapshot(join(ctx.profileDir, `${ctx.target.name}-${name}.heapsnapshot`));
  } finally {
    await session.close();
  }
}

/** Opens `options.connections` clients and measures what they cost while idle. */
export async function idle(ctx: ScenarioContext): Promise<IdleResult> {
  const { pool, target, options, log } = ctx;
  const before = await measureMemory(target);
  if (options.profile) await heapSnapshot(ctx, "baseline");
  const started = performance.now();
  const results = await pool.connect({
    protocol: TARGET_PROTOCOL[target.name],
    urls: [target.wsUrl],
    total: options.connections,
    groupSize: 2,
    concurrency: options.connectConcurrency,
    peerjsHeartbeatMs: options.peerjsHeartbeatMs,
    ackIntervalMs: options.ackIntervalMs,
    idPrefix: "idle",
  });
  const connectSeconds = (performance.now() - started) / 1000;
  const connections = results.reduce((a, r) => a + r.opened, 0);
  const failed = results.reduce((a, r) => a + r.failed, 0);
  const failures = results.flatMap((r) => r.failures).slice(0, 5);
  log(`  ${connections} connected in ${connectSeconds.toFixed(1)} s${failed ? `, ${failed} failed (${failures.join("; ")})` : ""}`);
  await sleep(options.settleSeconds * 1000);
  log(`  idle CPU window ${options.idleSeconds} s …`);
  await scrapeLoopLag(target);
  const profiler = options.profile ? await target.inspect() : null;
  await profiler?.startProfiling();
  const cpu = new CpuMeter([target.pid]).start();
  const generator = new CpuMeter(pool.pids).start();
  const foreign = new ForeignCpuMeter([target.pid, ...pool.pids]).start();
  await sleep(options.idleSeconds * 1000);
  if (profiler) {
    writeFileSync(join(ctx.profileDir, `${target.name}-idle.cpuprofile`), JSON.stringify(await profiler.stopProfiling()));
    await profiler.close();
  }
  const c = cpu.stop();
  const g = generator.stop();
  const foreignCpuPercentOfCore = foreign.stop();
  const serverEventLoopLag = await scrapeLoopLag(target);
  const rssUnforced = rssOf(target.pid).rss;
  const after = await measureMemory(target);
  if (options.profile) await heapSnapshot(ctx, "idle");
  const per = (a: number, b: number) => (connections > 0 ? (a - b) / connections : 0);
  return {
    connections,
    failed,
    failures,
    connectSeconds,
    before,
    after,
    rssUnforced,
    rssPerConnection: per(after.rss, before.rss),
    anonPerConnection: per(after.anon, before.anon),
    heapPerConnection: per(after.heapUsed, before.heapUsed),
    rssPerConnectionUnforced: per(rssUnforced, before.rss),
    cpuPercentOfCore: c.percentOfCore,
    cpuWindowSeconds: c.wallSeconds,
    generatorCpuPercentOfCore: g.percentOfCore,
    foreignCpuPercentOfCore,
    ...(serverEventLoopLag ? { serverEventLoopLag } : {}),
  };
}

/** Pairs the open clients (Switchboard: each pair joins its own room); measures the rooms' cost. */
export async function pairUp(ctx: ScenarioContext, idleResult: IdleResult | null): Promise<RoomsMemoryResult | null> {
  const results = await ctx.pool.layout({ kind: "pairs" }, ctx.options.connectConcurrency);
  const failed = results.reduce((a, r) => a + r.failed, 0);
  if (failed > 0) ctx.log(`  ${failed} pairs failed to join: ${results.flatMap((r) => r.failures).slice(0, 3).join("; ")}`);
  if (ctx.target.name !== "switchboard" || !idleResult) return null;
  const after = await measureMemory(ctx.target);
  const n = idleResult.connections;
  return {
    rssPerConnection: (after.rss - idleResult.before.rss) / n,
    heapPerConnection: (after.heapUsed - idleResult.before.heapUsed) / n,
    after,
  };
}

/**
 * The pod's sampling period of event-loop delay (`observability/metrics.ts`). Node's histogram
 * records each timer interval, so every value includes it; the bench reports the delay beyond it.
 */
const POD_LOOP_SAMPLE_MS = 10;

/** The pod's event-loop delay since the last scrape (prom-client resets it on every scrape). */
async function scrapeLoopLag(target: Target): Promise<{ p50Ms: number; p99Ms: number; maxMs: number } | undefined> {
  if (target.name !== "switchboard") return undefined;
  const text = await (await fetch(`${target.httpUrl}/metrics`)).text();
  const read = (name: string): number => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, "m").exec(text);
    return m ? Math.max(0, Math.round(Number(m[1]) * 1e6 - POD_LOOP_SAMPLE_MS * 1000) / 1000) : NaN;
  };
  return { p50Ms: read("nodejs_eventloop_lag_p50_seconds"), p99Ms: read("nodejs_eventloop_lag_p99_seconds"), maxMs: read("nodejs_eventloop_lag_max_seconds") };
}

/**
 * One relay run at `ratePerSec` over the paired clients. With `options.profile`, the target is
 * CPU-profiled and allocation-sampled during the run (the profilers slow it: those runs are for
 * finding costs, not for the figures).
 */
export async function relay(ctx: ScenarioContext, ratePerSec: number, seconds: number, connections: number, profileName?: string): Promise<RelayResult> {
  let result = await relayOnce(ctx, ratePerSec, seconds, connections, profileName, 1);
  for (let attempt = 2; attempt <= 3 && result.foreignCpuPercentOfCore > ctx.options.maxForeignCpuPercent; attempt++) {
    ctx.log(`  other processes used ${result.foreignCpuPercentOfCore.toFixed(0)} % of a core during the run (p99 ${result.latency.p99Ms} ms): repeating it`);
    await sleep(5000);
    result = await relayOnce(ctx, ratePerSec, seconds, connections, undefined, attempt);
  }
  return result;
}

async function relayOnce(ctx: ScenarioContext, ratePerSec: number, seconds: number, connections: number, profileName: string | undefined, attempt: number): Promise<RelayResult> {
  const { pool, target, options } = ctx;
  await scrapeLoopLag(target);
  const profiler = options.profile && profileName ? await target.inspect() : null;
  await profiler?.startProfiling();
  await profiler?.startAllocationSampling();
  const cpu = new CpuMeter([target.pid]).start();
  const generator = new CpuMeter(pool.pids).start();
  const foreign = new ForeignCpuMeter([target.pid, ...pool.pids]).start();
  const results: LoadResult[] = await pool.run("relay", ratePerSec, seconds * 1000, DRAIN_MS);
  const c = cpu.stop();
  const g = generator.stop();
  const foreignCpuPercentOfCore = foreign.stop();
  if (profiler && profileName) {
    const profile = await profiler.stopProfiling();
    writeFileSync(join(ctx.profileDir, `${target.name}-${profileName}.cpuprofile`), JSON.stringify(profile));
    const allocations = await profiler.stopAllocationSampling();
    writeFileSync(join(ctx.profileDir, `${target.name}-${profileName}.heapprofile`), JSON.stringify(allocations));
    await profiler.close();
  }
  const serverEventLoopLag = await scrapeLoopLag(target);
  const fromIntended = mergeEncoded(results.map((r) => r.latencyFromIntended));
  const fromActual = mergeEncoded(results.map((r) => r.latencyFromActual));
  const sent = results.reduce((a, r) => a + r.sent, 0);
  const received = results.reduce((a, r) => a + r.received, 0);
  const errors: Record<string, number> = {};
  for (const r of results) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  // CPU over the run minus the 0.5 s the workers wait to start together (the drain adds a few
  // idle ms when nothing is lost).
  const windowSeconds = Math.max(0.001, c.wallSeconds - 0.5);
  return {
    ratePerSec,
    seconds,
    connections,
    sent,
    received,
    lost: sent - received,
    errors,
    socketsClosed: results.reduce((a, r) => a + r.closed, 0),
    achievedRatePerSec: received / seconds,
    latency: summarize(fromIntended),
    latencyFromActual: summarize(fromActual),
    serverCpuPercentOfCore: (c.cpuSeconds / windowSeconds) * 100,
    generatorCpuPercentOfCore: (g.cpuSeconds / windowSeconds) * 100,
    acksPerSec: results.reduce((a, r) => a + r.acksSent, 0) / seconds,
    maxSendLagMs: Math.max(...results.map((r) => r.maxSendLagUs)) / 1000,
    workerLoopDelayP99Ms: Math.max(...results.map((r) => r.workerLoopDelayP99Us)) / 1000,
    foreignCpuPercentOfCore,
    attempts: attempt,
    ...(serverEventLoopLag ? { serverEventLoopLag } : {}),
    histogram: encode(fromIntended),
  };
}

/**
 * Relay at rising rates: ×1.5 per passing step until one fails, then bisection between the last
 * pass and the first failure until they are within 8 %. A step passes when p99 (from the intended
 * send time) is under the bound and nothing was lost or refused.
 */
export async function saturation(ctx: ScenarioContext, connections: number): Promise<SaturationResult> {
  const { options, log } = ctx;
  const steps: SaturationStep[] = [];
  let lastGood = 0;
  let firstBad = Number.POSITIVE_INFINITY;
  let rate = options.saturationStartRate;
  for (let i = 0; i < options.saturationMaxSteps; i++) {
    const r = await relay(ctx, rate, options.saturationStepSeconds, connections, i === 0 ? "saturation-first" : undefined);
    const refused = Object.values(r.errors).reduce((a, b) => a + b, 0);
    const pass = r.latency.p99Ms < options.saturationP99Ms && r.lost === 0 && refused === 0;
    steps.push({ ...r, pass });
    log(`  ${rate} msg/s: p99 ${r.latency.p99Ms} ms, lost ${r.lost}, server CPU ${r.serverCpuPercentOfCore.toFixed(0)} %, generator ${r.generatorCpuPercentOfCore.toFixed(0)} %, others ${r.foreignCpuPercentOfCore.toFixed(0)} % → ${pass ? "pass" : "fail"}`);
    if (pass) lastGood = Math.max(lastGood, rate);
    else firstBad = Math.min(firstBad, rate);
    if (lastGood > 0 && firstBad / lastGood <= 1.08) break;
    const next = firstBad === Number.POSITIVE_INFINITY ? rate * 1.5 : lastGood === 0 ? rate / 2 : (lastGood + firstBad) / 2;
    rate = Math.max(100, Math.round(next / 100) * 100);
    if (steps.some((s) => s.ratePerSec === rate)) break;
    // Let queues and the allocator settle between steps.
    await sleep(2000);
  }
  return {
    ratePerSec: lastGood,
    criterion: `p99 < ${options.saturationP99Ms} ms from the intended send time, nothing lost or refused`,
    firstFailingRatePerSec: firstBad === Number.POSITIVE_INFINITY ? null : firstBad,
    steps,
  };
}

/** Room fan-out for each room size (fresh clients; Switchboard only). */
export async function fanout(ctx: ScenarioContext): Promise<FanoutResult[]> {
  const { pool, target, options, log } = ctx;
  const out: FanoutResult[] = [];
  for (const k of options.fanoutRoomSizes) {
    await pool.closeClients();
    const rooms = Math.max(pool.size, Math.floor(options.fanoutConnections / k));
    await pool.connect({ protocol: "switchboard", urls: [target.wsUrl], total: rooms * k, groupSize: k, concurrency: options.connectConcurrency, peerjsHeartbeatMs: options.peerjsHeartbeatMs, ackIntervalMs: options.ackIntervalMs, idPrefix: `fan${k}` });
    await pool.layout({ kind: "rooms", k }, 100);
    const broadcastsPerSec = options.fanoutDeliveriesPerSec / (k - 1);
    const cpu = new CpuMeter([target.pid]).start();
    const results = await pool.run("fanout", broadcastsPerSec, options.fanoutSeconds * 1000, DRAIN_MS);
    const c = cpu.stop();
    const sent = results.reduce((a, r) => a + r.sent, 0);
    const expected = results.reduce((a, r) => a + r.expected, 0);
    const received = results.reduce((a, r) => a + r.received, 0);
    const errors: Record<string, number> = {};
    for (const r of results) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
    const result: FanoutResult = {
      k,
      rooms,
      broadcastsPerSec,
      deliveriesPerSec: broadcastsPerSec * (k - 1),
      seconds: options.fanoutSeconds,
      sent,
      expectedDeliveries: expected,
      receivedDeliveries: received,
      lostDeliveries: expected - received,
      errors,
      latency: summarize(mergeEncoded(results.map((r) => r.latencyFromIntended))),
      allDelivered: summarize(mergeEncoded(results.map((r) => r.allDelivered))),
      serverCpuPercentOfCore: (c.cpuSeconds / options.fanoutSeconds) * 100,
    };
    log(`  k=${k}: ${rooms} rooms, ${result.deliveriesPerSec.toFixed(0)} deliveries/s, p99 ${result.latency.p99Ms} ms, all-delivered p99 ${result.allDelivered.p99Ms} ms, lost ${result.lostDeliveries}`);
    out.push(result);
  }
  await pool.closeClients();
  return out;
}

