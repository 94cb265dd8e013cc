/**
 * Cross-pod relay: three Switchboard pods in cluster mode (real NATS JetStream and Redis, a ring
 * file, a fresh cluster name), pairs whose two peers sit on different pods (client i connects to pod
 * i mod 3, pairs are consecutive clients), relaying offer/answer/candidates at a fixed total rate.
 * Each message goes edge → room owner → edge over JetStream: 1 hop when the owner is one of the two
 * pods, 2 when it is the third. Latency is measured by the receiving worker from the intended send
 * time, like the same-pod relay.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeClusterState } from "@switchboard/server/testing";
import { mergeEncoded, summarize, type LatencySummary } from "./histogram.ts";
import type { LoadResult } from "./load/ipc.ts";
import { LoadPool } from "./load/pool.ts";
import type { BenchOptions } from "./options.ts";
import { CpuMeter, ForeignCpuMeter, renice } from "./proc.ts";
import { startTarget, type Target } from "./targets.ts";

/** Figures of the cross-pod relay. */
export interface CrossPodResult {
  readonly status: "run";
  readonly pods: number;
  readonly connections: number;
  readonly ratePerSec: number;
  readonly seconds: number;
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  readonly errors: Record<string, number>;
  readonly achievedRatePerSec: number;
  readonly latency: LatencySummary;
  /** CPU of each pod, % of one core. */
  readonly podCpuPercentOfCore: number[];
  readonly generatorCpuPercentOfCore: number;
  /** Every process but the pods, the workers and the runner (NATS and Redis included). */
  readonly foreignCpuPercentOfCore: number;
  /** Of those: the NATS and Redis servers on this box (null when not found). */
  readonly natsCpuPercentOfCore: number | null;
  readonly redisCpuPercentOfCore: number | null;
}

const NATS_URL = process.env["SWITCHBOARD_NATS_URL"] ?? "nats://127.0.0.1:4222";
const REDIS_URL = process.env["SWITCHBOARD_REDIS_URL"] ?? "redis://127.0.0.1:6379";

export async function crossPodRelay(options: BenchOptions, log: (line: string) => void): Promise<CrossPodResult> {
  const cluster = `bench${randomBytes(4).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "switchboard-crosspod-"));
  const ringFile = join(dir, "ring.json");
  const names = ["bench-0", "bench-1", "bench-2"];
  writeFileSync(ringFile, JSON.stringify({ version: 1, members: names.map((name) => ({ name, address: "127.0.0.1:8080", state: "ACTIVE" })) }));
  const pods: Target[] = [];
  const pool = LoadPool.start(options.workers, options.workerNice);
  // NATS and Redis on this box (the figures then include their share of its CPU).
  const nats = isLocal(NATS_URL) ? findProcess("nats-server") : null;
  const redis = isLocal(REDIS_URL) ? findProcess("redis-server") : null;
  // NATS and Redis serve the pods: when the bench raised its own session's priority, they get the
  // same (their own sessions' autogroups), else a busy box starves them and the bus's round trips,
  // not the pods, make the figures. Restored at the end.
  const restore: Array<() => void> = [];
  if (options.serverNice !== 0) {
    for (const pid of [nats, redis]) {
      if (pid === null) continue;
      const previous = setProcessAutogroupNice(pid, options.serverNice);
      if (previous === null) continue;
      restore.push(() => setProcessAutogroupNice(pid, previous));
      log(`  ${readFileSync(`/proc/${pid}/comm`, "utf8").trim()} (pid ${pid}): autogroup nice ${previous} → ${options.serverNice} for the run`);
    }
  }
  try {
    for (const name of names) {
      pods.push(
        await startTarget("switchboard", {
          nodeFlags: options.serverNodeFlags,
          env: { ...options.serverEnv, SWITCHBOARD_CLUSTER_NAME: cluster, SWITCHBOARD_RING_FILE: ringFile, SWITCHBOARD_POD_NAME: name, SWITCHBOARD_NATS_URL: NATS_URL, SWITCHBOARD_REDIS_URL: REDIS_URL },
        }),
      );
    }
    // Every thread of the pods and the workers, as for the same-pod scenarios (bench.ts).
    for (const pid of pool.pids) renice(pid, options.workerNice);
    if (options.serverNice !== 0) for (const p of pods) renice(p.pid, options.serverNice);
    const urls = pods.map((p) => p.wsUrl);
    const connections = options.crossPodConnections;
    const opened = await pool.connect({ protocol: "switchboard", urls, total: connections, groupSize: 2, concurrency: options.connectConcurrency, peerjsHeartbeatMs: options.peerjsHeartbeatMs, ackIntervalMs: options.ackIntervalMs, idPrefix: "xp" });
    const open = opened.reduce((a, r) => a + r.opened, 0);
    await pool.layout({ kind: "pairs" }, options.connectConcurrency);
    log(`  ${open} connections over ${pods.length} pods (peers of each pair on different pods); warming up`);
    await pool.run("relay", Math.min(500, options.crossPodRate), 3000, 2000);
    await new Promise((r) => setTimeout(r, 2000));
    const cpus = pods.map((p) => new CpuMeter([p.pid]).start());
    const generator = new CpuMeter(pool.pids).start();
    const foreign = new ForeignCpuMeter([...pods.map((p) => p.pid), ...pool.pids]).start();
    const natsCpu = nats === null ? null : new CpuMeter([nats]).start();
    const redisCpu = redis === null ? null : new CpuMeter([redis]).start();
    const seconds = options.crossPodSeconds;
    const profiler = options.profile ? await (pods[0] as Target).inspect() : null;
    await profiler?.startProfiling();
    const results: LoadResult[] = await pool.run("relay", options.crossPodRate, seconds * 1000, 3000);
    if (profiler) {
      mkdirSync(join(options.outDir, "profiles"), { recursive: true });
      writeFileSync(join(options.outDir, "profiles", "cross-pod-bench-0.cpuprofile"), JSON.stringify(await profiler.stopProfiling()));
      await profiler.close();
    }
    const podCpu = cpus.map((c) => c.stop());
    const g = generator.stop();
    const foreignCpuPercentOfCore = foreign.stop();
    const natsCpuPercentOfCore = natsCpu?.stop().percentOfCore ?? null;
    const redisCpuPercentOfCore = redisCpu?.stop().percentOfCore ?? null;
    log(
      `  of the other processes' ${foreignCpuPercentOfCore.toFixed(0)} % of a core: NATS ${natsCpuPercentOfCore?.toFixed(0) ?? "?"} %, Redis ${redisCpuPercentOfCore?.toFixed(0) ?? "?"} %, the rest ${Math.max(0, foreignCpuPercentOfCore - (natsCpuPercentOfCore ?? 0) - (redisCpuPercentOfCore ?? 0)).toFixed(0)} %`,
    );
    const windowSeconds = Math.max(0.001, (podCpu[0]?.wallSeconds ?? seconds) - 0.5);
    const sent = results.reduce((a, r) => a + r.sent, 0);
    const received = results.reduce((a, r) => a + r.received, 0);
    const errors: Record<string, number> = {};
    for (const r of results) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
    return {
      status: "run",
      pods: pods.length,
      connections: open,
      ratePerSec: options.crossPodRate,
      seconds,
      sent,
      received,
      lost: sent - received,
      errors,
      achievedRatePerSec: received / seconds,
      latency: summarize(mergeEncoded(results.map((r) => r.latencyFromIntended))),
      podCpuPercentOfCore: podCpu.map((c) => (c.cpuSeconds / windowSeconds) * 100),
      generatorCpuPercentOfCore: (g.cpuSeconds / windowSeconds) * 100,
      foreignCpuPercentOfCore,
      natsCpuPercentOfCore,
      redisCpuPercentOfCore,
    };
  } finally {
    for (const r of restore) {
      try {
        r();
      } catch {
        // the process is gone
      }
    }
    await pool.close();
    await Promise.all(pods.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
    await cleanUp(cluster).catch((err: unknown) => console.warn(`cross-pod: the cluster ${cluster} was not cleaned up (its stream and keys stay): ${String(err)}`));
  }
}

function isLocal(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
}

/** The pid of the (first) process named `comm` on this box, or null. */
function findProcess(comm: string): number | null {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === comm) return Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  return null;
}

/**
 * Sets the niceness of the autogroup (session) of process `pid`; returns the previous one, or null
 * when autogroups are off or the change is not permitted.
 */
function setProcessAutogroupNice(pid: number, nice: number): number | null {
  try {
    if (readFileSync("/proc/sys/kernel/sched_autogroup_enabled", "utf8").trim() !== "1") return null;
    const m = /nice\s+(-?\d+)/.exec(readFileSync(`/proc/${pid}/autogroup`, "utf8"));
    if (!m) return null;
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
    return Number(m[1]);
  } catch {
    return null;
  }
}

/** Removes the bench cluster's stream and keys. */
async function cleanUp(cluster: string): Promise<void> {
  await removeClusterState({ cluster, natsUrl: NATS_URL, redisUrl: REDIS_URL });
}
