/**
 * The results of a run: the JSON document, the checks against the issue's targets, and the one
 * table printed at the end.
 *
 * @module
 */
import type { MachineInfo } from "./machine.ts";
import type { BenchOptions } from "./options.ts";
import type { CrossPodResult } from "./cross-pod.ts";
import type { FanoutResult, IdleResult, NotRun, RelayResult, RoomsMemoryResult, SaturationResult } from "./scenarios.ts";
import type { TargetName } from "./targets.ts";

/** Everything measured against one server. */
export interface TargetResults {
  idle?: IdleResult;
  rooms?: RoomsMemoryResult | null;
  relay?: RelayResult;
  saturation?: SaturationResult;
  fanout?: FanoutResult[];
  /** Set when the target could not be measured to the end. */
  error?: string;
}

/** One of the issue's targets and whether this run met it. */
export interface TargetCheck {
  readonly name: string;
  readonly target: string;
  readonly value: string;
  /** null: not measured in this run (scenario or comparison target not run, or a quick run). */
  readonly met: boolean | null;
}

export interface BenchReport {
  readonly version: 1;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: MachineInfo;
  readonly loadAtEnd: readonly number[];
  readonly options: BenchOptions;
  readonly payloadBytes: { readonly sdp: number; readonly candidate: number };
  readonly results: Partial<Record<TargetName, TargetResults>>;
  /** The pod's idle memory and CPU with other Node flags (`options.memoryVariants`). */
  readonly memoryVariants: readonly { readonly flags: string; readonly idle?: IdleResult; readonly error?: string }[];
  readonly crossPod: CrossPodResult | NotRun;
  readonly ratios: {
    /** Switchboard ÷ PeerJS. */
    readonly rssPerConnection: number | null;
    readonly idleCpu: number | null;
    readonly relayP99: number | null;
    readonly saturationRate: number | null;
  };
  readonly checks: readonly TargetCheck[];
}

const KIB = 1024;

function ratio(a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** Switchboard ÷ PeerJS for the compared figures. */
export function ratios(results: BenchReport["results"]): BenchReport["ratios"] {
  const sb = results.switchboard;
  const pj = results.peerjs;
  return {
    rssPerConnection: ratio(sb?.idle?.rssPerConnection, pj?.idle?.rssPerConnection),
    idleCpu: ratio(sb?.idle?.cpuPercentOfCore, pj?.idle?.cpuPercentOfCore),
    relayP99: ratio(sb?.relay?.latency.p99Ms, pj?.relay?.latency.p99Ms),
    saturationRate: ratio(sb?.saturation?.ratePerSec, pj?.saturation?.ratePerSec),
  };
}

/** The issue's targets, checked against this run. */
export function checkTargets(results: BenchReport["results"], r: BenchReport["ratios"], options: BenchOptions, crossPod?: CrossPodResult | NotRun): TargetCheck[] {
  const sb = results.switchboard;
  const full = options.connections >= 19_000;
  const scale = (met: boolean): boolean | null => (full ? met : null);
  const checks: TargetCheck[] = [];
  const idle = sb?.idle;
  checks.push({
    name: `RSS per idle connection at ${options.connections} connections`,
    target: "≤ 2.5 KiB (at 19 000)",
    value: idle ? `${(idle.rssPerConnection / KIB).toFixed(2)} KiB` : "not run",
    met: idle ? scale(idle.rssPerConnection <= 2.5 * KIB) : null,
  });
  checks.push({
    name: `idle CPU at ${options.connections} connections with heartbeats`,
    target: "≤ 2 % of one core (at 19 000)",
    value: idle ? `${idle.cpuPercentOfCore.toFixed(2)} %` : "not run",
    met: idle ? scale(idle.cpuPercentOfCore <= 2) : null,
  });
  const relay = sb?.relay;
  const atTarget = relay !== undefined && relay.ratePerSec >= 5000 && full;
  checks.push({
    name: `same-pod relay p99 at ${relay?.ratePerSec ?? options.relayRate} msg/s`,
    target: "≤ 3 ms (5 000 msg/s, 19 000 connections)",
    value: relay ? `${relay.latency.p99Ms} ms` : "not run",
    met: relay && atTarget ? relay.latency.p99Ms <= 3 && relay.lost === 0 : null,
  });
  checks.push({
    name: "same-pod relay jitter (p99 − p50)",
    target: "≤ 3 ms",
    value: relay ? `${relay.latency.jitterMs} ms` : "not run",
    met: relay && atTarget ? relay.latency.jitterMs <= 3 : null,
  });
  checks.push({
    name: "relay p99 vs PeerJS (same run)",
    target: "≤ 0.5×",
    value: r.relayP99 === null ? "not run" : `${r.relayP99.toFixed(2)}×`,
    met: r.relayP99 === null ? null : r.relayP99 <= 0.5,
  });
  checks.push({
    name: "saturation rate vs PeerJS (same run)",
    target: "≥ 2×",
    value: r.saturationRate === null ? "not run" : `${r.saturationRate.toFixed(2)}×`,
    met: r.saturationRate === null ? null : r.saturationRate >= 2,
  });
  const xp = crossPod?.status === "run" ? crossPod : null;
  checks.push({
    name: `cross-pod relay p99 at ${xp?.ratePerSec ?? options.crossPodRate} msg/s (3 pods, JetStream)`,
    target: "≤ 5 ms (2 000 msg/s)",
    value: xp ? `${xp.latency.p99Ms} ms` : "not run",
    met: xp && xp.ratePerSec >= 2000 ? xp.latency.p99Ms <= 5 && xp.lost === 0 : null,
  });
  return checks;
}

const COLUMNS: readonly TargetName[] = ["switchboard", "peerjs", "plain-ws"];

/** The table printed at the end of a run (and pasted into docs/benchmarks.md). */
export function formatTable(report: BenchReport): string {
  const { results, options } = report;
  const rows: string[][] = [];
  const header = ["scenario / figure", "switchboard", "peerjs", "plain ws", "sb ÷ peerjs"];
  const section = (title: string) => rows.push([title, "", "", "", ""]);
  const row = (label: string, f: (t: TargetResults) => string | undefined, rat?: number | null) =>
    rows.push([`  ${label}`, ...COLUMNS.map((c) => (results[c] ? (f(results[c] as TargetResults) ?? "—") : "—")), rat === undefined || rat === null ? "" : `${rat.toFixed(2)}×`]);
  const num = (v: number | undefined, digits = 2) => (v === undefined || !Number.isFinite(v) ? undefined : v.toFixed(digits));

  section(`idle: ${options.connections} connections, heartbeats, CPU over ${options.idleSeconds} s`);
  row("connected (failed)", (t) => (t.idle ? `${t.idle.connections} (${t.idle.failed})` : undefined));
  row("RSS per connection, KiB (after full GC)", (t) => num(t.idle && t.idle.rssPerConnection / KIB), report.ratios.rssPerConnection);
  row("RSS per connection, KiB (no forced GC)", (t) => num(t.idle && t.idle.rssPerConnectionUnforced / KIB));
  row("V8 heap per connection, KiB", (t) => num(t.idle && t.idle.heapPerConnection / KIB));
  row("RSS total, MiB (after GC)", (t) => num(t.idle && t.idle.after.rss / 2 ** 20, 0));
  row("CPU, % of one core", (t) => num(t.idle?.cpuPercentOfCore), report.ratios.idleCpu);
  row("other processes' CPU during the window, %", (t) => num(t.idle?.foreignCpuPercentOfCore, 0));
  row("server event-loop delay p99 / max, ms", (t) => (t.idle?.serverEventLoopLag ? `${t.idle.serverEventLoopLag.p99Ms} / ${t.idle.serverEventLoopLag.maxMs}` : undefined));
  row("in 2-peer rooms: RSS / heap per conn, KiB", (t) => (t.rooms ? `${(t.rooms.rssPerConnection / KIB).toFixed(2)} / ${(t.rooms.heapPerConnection / KIB).toFixed(2)}` : undefined));

  const relay = results.switchboard?.relay ?? results.peerjs?.relay;
  section(`relay: ${relay?.ratePerSec ?? options.relayRate} msg/s offer/answer/candidate for ${options.relaySeconds} s, all connections open`);
  const lat = (pick: (t: RelayResult) => number) => (t: TargetResults) => num(t.relay && pick(t.relay), 3);
  row("p50, ms", lat((r) => r.latency.p50Ms));
  row("p90, ms", lat((r) => r.latency.p90Ms));
  row("p99, ms", lat((r) => r.latency.p99Ms), report.ratios.relayP99);
  row("p99.9, ms", lat((r) => r.latency.p999Ms));
  row("max, ms", lat((r) => r.latency.maxMs));
  row("jitter p99 − p50, ms", lat((r) => r.latency.jitterMs));
  row("p99 from actual send time, ms", lat((r) => r.latencyFromActual.p99Ms));
  row("achieved msg/s", (t) => num(t.relay?.achievedRatePerSec, 0));
  row("lost (errors)", (t) => (t.relay ? `${t.relay.lost} (${Object.values(t.relay.errors).reduce((a, b) => a + b, 0)})` : undefined));
  row("server CPU, % of one core", (t) => num(t.relay?.serverCpuPercentOfCore, 1));
  row("generator CPU, % of one core", (t) => num(t.relay?.generatorCpuPercentOfCore, 1));
  row("acks/s sent by clients", (t) => num(t.relay?.acksPerSec, 0));
  row("other processes' CPU during the run, %", (t) => (t.relay ? `${t.relay.foreignCpuPercentOfCore.toFixed(0)}${t.relay.attempts > 1 ? ` (run ${t.relay.attempts})` : ""}` : undefined));
  row("server event-loop delay p99 / max, ms", (t) => (t.relay?.serverEventLoopLag ? `${t.relay.serverEventLoopLag.p99Ms} / ${t.relay.serverEventLoopLag.maxMs}` : undefined));

  section(`saturation: highest relay rate with p99 < ${options.saturationP99Ms} ms, ${options.saturationConnections} connections, ${options.saturationStepSeconds} s steps`);
  row("rate, msg/s", (t) => (t.saturation ? String(t.saturation.ratePerSec) : undefined), report.ratios.saturationRate);
  row("first failing rate, msg/s", (t) => (t.saturation ? String(t.saturation.firstFailingRatePerSec ?? "none") : undefined));
  row("server CPU at the highest pass, %", (t) => num(t.saturation?.steps.find((s) => s.pass && s.ratePerSec === t.saturation?.ratePerSec)?.serverCpuPercentOfCore, 0));
  row("generator CPU at the highest pass, %", (t) => num(t.saturation?.steps.find((s) => s.pass && s.ratePerSec === t.saturation?.ratePerSec)?.generatorCpuPercentOfCore, 0));

  const fan = results.switchboard?.fanout ?? [];
  if (fan.length > 0) {
    section(`room fan-out (switchboard only: PeerJS has no rooms), ${options.fanoutSeconds} s each`);
    for (const f of fan) {
      rows.push([
        `  k=${f.k}: ${f.rooms} rooms, ${f.deliveriesPerSec.toFixed(0)} deliveries/s`,
        `p50 ${f.latency.p50Ms} / p99 ${f.latency.p99Ms} / p99.9 ${f.latency.p999Ms} / max ${f.latency.maxMs} ms`,
        "",
        "",
        "",
      ]);
      rows.push([`    all ${f.k - 1} delivered; lost; CPU`, `p50 ${f.allDelivered.p50Ms} / p99 ${f.allDelivered.p99Ms} ms; lost ${f.lostDeliveries}; CPU ${f.serverCpuPercentOfCore.toFixed(0)} %`, "", "", ""]);
    }
  }
  if (report.memoryVariants.length > 0) {
    section("idle switchboard pod with other Node flags (same connections and window as above)");
    for (const v of report.memoryVariants) {
      const i = v.idle;
      rows.push([
        `  ${v.flags}`,
        i
          ? `RSS/conn ${(i.rssPerConnection / KIB).toFixed(2)} KiB after GC, ${(i.rssPerConnectionUnforced / KIB).toFixed(2)} KiB without; heap ${(i.heapPerConnection / KIB).toFixed(2)} KiB; CPU ${i.cpuPercentOfCore.toFixed(2)} %`
          : `failed: ${v.error ?? "no result"}`,
        "",
        "",
        "",
      ]);
    }
  }
  const xp = report.crossPod;
  if (xp.status === "run") {
    const l = xp.latency;
    rows.push([
      `cross-pod relay, 3 pods via JetStream, ${xp.connections} connections, ${xp.ratePerSec} msg/s for ${xp.seconds} s: p50 ${l.p50Ms} p90 ${l.p90Ms} p99 ${l.p99Ms} p99.9 ${l.p999Ms} max ${l.maxMs} ms, jitter ${l.jitterMs} ms, achieved ${xp.achievedRatePerSec.toFixed(0)} msg/s, lost ${xp.lost}; pods' CPU ${xp.podCpuPercentOfCore.map((c) => c.toFixed(0)).join(" / ")} %, generator ${xp.generatorCpuPercentOfCore.toFixed(0)} %, other processes ${xp.foreignCpuPercentOfCore.toFixed(0)} %`,
      "",
      "",
      "",
      "",
    ]);
  } else section(`cross-pod relay, 3 pods via JetStream: NOT RUN (${xp.reason})`);

  const tabular = rows.filter((r) => !r.slice(2).every((c) => c === ""));
  const widths = header.map((h, i) => Math.max(h.length, ...tabular.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) => {
    if (r.slice(1).every((c) => c === "")) return r[0] as string;
    // A wide first data cell (fan-out rows) spans the remaining columns.
    if (r.slice(2).every((c) => c === "")) return `${(r[0] as string).padEnd(widths[0] as number)}  ${r[1]}`;
    return r.map((c, i) => (i === 0 ? c.padEnd(widths[0] as number) : c.padStart(widths[i] as number))).join("  ");
  };
  const lines = [fmt(header), ...rows.map(fmt)];
  lines.push("");
  lines.push("targets (issue 6):");
  for (const c of report.checks) lines.push(`  ${c.met === null ? "n/a " : c.met ? "MET " : "MISS"}  ${c.name}: ${c.value} (target ${c.target})`);
  return lines.join("\n");
}
