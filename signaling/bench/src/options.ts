/**
 * Options of the bench runner: command-line flags, with `QUICK=1` (or `--quick`) scaling the run
 * down for a smoke test. The defaults are the full run the issue asks for.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DEFAULT_ACK_INTERVAL_MS } from "@switchboard/protocol";
import type { TargetName } from "./targets.ts";

/** Scenario names, in the order they run. */
export const SCENARIOS = ["idle", "relay", "saturation", "fanout", "cross-pod"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Everything a run is parameterised by (all of it is written into the JSON). */
export interface BenchOptions {
  readonly quick: boolean;
  readonly targets: readonly TargetName[];
  readonly scenarios: readonly ScenarioName[];
  /** Idle connections per server (and the connections open during relay and saturation). */
  readonly connections: number;
  /** Load worker processes. */
  readonly workers: number;
  /** Niceness of the load workers (0: same priority as the server). */
  readonly workerNice: number;
  /**
   * Niceness of the server under test (0: like anything else on the box). Negative values (root
   * only) put the bench ahead of other jobs on a shared machine; the JSON records it.
   */
  readonly serverNice: number;
  /** Sockets opening at once, over all workers. */
  readonly connectConcurrency: number;
  /** Wait after connecting before the idle CPU window, s. */
  readonly settleSeconds: number;
  /** Idle CPU window, s. */
  readonly idleSeconds: number;
  /** Relay: total relayed messages per second. */
  readonly relayRate: number;
  readonly relaySeconds: number;
  /** Saturation: first rate tried, step length, most steps, and the p99 bound. */
  readonly saturationStartRate: number;
  readonly saturationStepSeconds: number;
  readonly saturationMaxSteps: number;
  readonly saturationP99Ms: number;
  /** Connections open during saturation (fresh pairs; the relay run's connections are closed). */
  readonly saturationConnections: number;
  /** A relay run during which other processes used more than this (% of a core) is repeated. */
  readonly maxForeignCpuPercent: number;
  /** Cross-pod relay: connections over the 3 pods, total relay rate, seconds. */
  readonly crossPodConnections: number;
  readonly crossPodRate: number;
  readonly crossPodSeconds: number;
  /** Fan-out: room sizes, rooms per size, broadcasts per second (all rooms together). */
  readonly fanoutRoomSizes: readonly number[];
  readonly fanoutDeliveriesPerSec: number;
  /** Fan-out: clients per room size (rooms = this / k). */
  readonly fanoutConnections: number;
  readonly fanoutSeconds: number;
  /** Switchboard clients' acknowledgement period (the SDK default). */
  readonly ackIntervalMs: number;
  /** PeerJS clients' heartbeat period (the PeerJS client default). */
  readonly peerjsHeartbeatMs: number;
  /**
   * Node flag sets the pod's idle memory is also measured with (one extra pod per set, idle
   * scenario only), next to the defaults.
   */
  readonly memoryVariants: readonly string[];
  /** Extra Node flags for every server process. */
  readonly serverNodeFlags: readonly string[];
  /** Extra environment for every server process (`KEY=VALUE`). */
  readonly serverEnv: Readonly<Record<string, string>>;
  /** Append each server's output to `<outDir>/<target>.log` (with `--trace-gc` in the flags, GC pauses). */
  readonly serverLog: boolean;
  /** Take a CPU profile of each server during relay and a heap snapshot after idle. */
  readonly profile: boolean;
  /** Wait (up to this many minutes) for the 1-minute load average to fall below `maxLoad`. */
  readonly waitForQuietMinutes: number;
  readonly maxLoad: number;
  /** Directory of the JSON results (and profiles). */
  readonly outDir: string;
}

const HELP = `Usage: node signaling/bench/src/bench.ts [options]   (make bench [QUICK=1] [ARGS="..."])

  --quick                      small, fast run (also QUICK=1 in the environment)
  --targets a,b                switchboard,peerjs,plain-ws (default: all three)
  --scenarios a,b              idle,relay,saturation,fanout,cross-pod (default: all)
  --connections N              idle connections per server (default 19000; quick 2000)
  --workers N                  load worker processes (default 4; quick 2)
  --worker-nice N              niceness of the load workers (default 10; 0 = same as the server)
  --server-nice N              niceness of the server under test (default 0; negative needs root:
                               on a shared box, e.g. --server-nice=-10 --worker-nice=-5 puts the
                               bench ahead of other jobs while the server stays ahead of its load)
  --idle-seconds S             idle CPU window (default 60; quick 10)
  --relay-rate R               relayed messages per second (default 5000; quick 2000)
  --relay-seconds S            (default 60; quick 8)
  --saturation-start R         first saturation rate (default 5000; quick 2000)
  --saturation-step-seconds S  (default 15; quick 4)
  --saturation-max-steps N     (default 12; quick 6)
  --saturation-connections N   connections during saturation (default 2000; quick 1000)
  --cross-pod-rate R           cross-pod relay rate over 3 pods (default 2000; quick 1000)
  --cross-pod-seconds S        (default 30; quick 8)
  --cross-pod-connections N    (default 2000; quick 600)
  --fanout-k k1,k2             room sizes (default 10,50)
  --fanout-seconds S           (default 20; quick 5)
  --ack-interval-ms MS         Switchboard clients' acknowledgement period (default 5000, the SDK's;
                               also at once after 64 events or 64 KiB, as the SDK does)
  --server-node-flags "..."    extra node flags for the servers, e.g. "--max-semi-space-size=1"
  --memory-variants "a;b"      node flag sets the pod's idle memory is also measured with
                               (default "--max-semi-space-size=1;--optimize-for-size"; "" for none)
  --server-env K=V,K=V         extra environment for the servers, e.g. MALLOC_ARENA_MAX=2
  --server-log                 append each server's output to <out>/<target>.log
  --profile                    CPU profile during relay, heap snapshot after idle (bench-results/)
  --wait-for-quiet M           wait up to M minutes for load average < --max-load (default 0)
  --max-load L                 (default 1.5)
  --out DIR                    results directory (default bench-results)
`;

/** Parses `argv` and the environment. Prints usage and exits on `--help`. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: "boolean" },
      quick: { type: "boolean" },
      targets: { type: "string" },
      scenarios: { type: "string" },
      connections: { type: "string" },
      workers: { type: "string" },
      "worker-nice": { type: "string" },
      "server-nice": { type: "string" },
      "idle-seconds": { type: "string" },
      "relay-rate": { type: "string" },
      "relay-seconds": { type: "string" },
      "saturation-start": { type: "string" },
      "saturation-step-seconds": { type: "string" },
      "saturation-max-steps": { type: "string" },
      "saturation-connections": { type: "string" },
      "fanout-k": { type: "string" },
      "cross-pod-rate": { type: "string" },
      "cross-pod-seconds": { type: "string" },
      "cross-pod-connections": { type: "string" },
      "fanout-seconds": { type: "string" },
      "ack-interval-ms": { type: "string" },
      "server-node-flags": { type: "string" },
      "memory-variants": { type: "string" },
      "server-env": { type: "string" },
      profile: { type: "boolean" },
      "server-log": { type: "boolean" },
      "wait-for-quiet": { type: "string" },
      "max-load": { type: "string" },
      out: { type: "string" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const quick = values.quick === true || env["QUICK"] === "1";
  const num = (v: string | undefined, full: number, small: number): number => {
    if (v === undefined) return quick ? small : full;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${v}`);
    return n;
  };
  const nice = (v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < -20 || n > 19) throw new Error(`not a niceness (-20…19): ${v}`);
    return n;
  };
  const list = <T extends string>(v: string | undefined, all: readonly T[], what: string): T[] => {
    if (v === undefined) return [...all];
    const items = v.split(",").map((s) => s.trim()).filter(Boolean);
    for (const item of items) if (!all.includes(item as T)) throw new Error(`unknown ${what}: ${item} (known: ${all.join(", ")})`);
    return items as T[];
  };
  const serverEnv: Record<string, string> = {};
  for (const kv of (values["server-env"] ?? "").split(",").filter(Boolean)) {
    const at = kv.indexOf("=");
    if (at <= 0) throw new Error(`--server-env wants KEY=VALUE, got ${kv}`);
    serverEnv[kv.slice(0, at)] = kv.slice(at + 1);
  }
  const connections = num(values.connections, 19_000, 2_000);
  return {
    quick,
    targets: list(values.targets, ["switchboard", "peerjs", "plain-ws"] as const, "target"),
    scenarios: list(values.scenarios, SCENARIOS, "scenario"),
    connections,
    workers: num(values.workers, 4, 2),
    workerNice: nice(values["worker-nice"], 10),
    serverNice: nice(values["server-nice"], 0),
    connectConcurrency: 400,
    // Two of the pod's 25 s heartbeat periods and a bit: a socket that spoke in a period (hello,
    // join) is not pinged in it, so the pings reach their steady rate only from the second period
    // on, and the CPU window must not start before. (Quick runs do not wait: their CPU is a smoke figure.)
    settleSeconds: quick ? 3 : 55,
    idleSeconds: num(values["idle-seconds"], 60, 10),
    relayRate: num(values["relay-rate"], 5_000, 2_000),
    relaySeconds: num(values["relay-seconds"], 60, 8),
    saturationStartRate: num(values["saturation-start"], 5_000, 2_000),
    saturationStepSeconds: num(values["saturation-step-seconds"], 15, 4),
    saturationMaxSteps: num(values["saturation-max-steps"], 12, 6),
    saturationP99Ms: 10,
    saturationConnections: num(values["saturation-connections"], 2_000, 1_000),
    maxForeignCpuPercent: 25,
    crossPodRate: num(values["cross-pod-rate"], 2_000, 1_000),
    crossPodSeconds: num(values["cross-pod-seconds"], 30, 8),
    crossPodConnections: num(values["cross-pod-connections"], 2_000, 600),
    fanoutRoomSizes: (values["fanout-k"] ?? "10,50").split(",").map(Number),
    fanoutDeliveriesPerSec: quick ? 2_000 : 5_000,
    fanoutConnections: quick ? 500 : 2_000,
    fanoutSeconds: num(values["fanout-seconds"], 20, 5),
    ackIntervalMs: num(values["ack-interval-ms"], DEFAULT_ACK_INTERVAL_MS, DEFAULT_ACK_INTERVAL_MS),
    peerjsHeartbeatMs: 5_000,
    serverNodeFlags: (values["server-node-flags"] ?? "").split(/\s+/).filter(Boolean),
    memoryVariants: (values["memory-variants"] ?? "--max-semi-space-size=1;--optimize-for-size").split(";").map((v) => v.trim()).filter(Boolean),
    serverEnv,
    profile: values.profile === true,
    serverLog: values["server-log"] === true,
    waitForQuietMinutes: num(values["wait-for-quiet"], 0, 0),
    maxLoad: num(values["max-load"], 1.5, 1.5),
    outDir: values.out ?? "bench-results",
  };
}
