/**
 * Reads every signaling pod's report (`GET /status`, {@link PodReport}) every `intervalMs`: the
 * ring version it applied (for RingConverged and the rollout and drain steps) and its load (for
 * autoscaling). Pods are reached on their pod IP, as Prometheus reaches them; a pod that does not
 * answer in time keeps its last reading, which ages out (stale readings are never used).
 *
 * @module
 */
import { POD_REPORT_PATH, PodReport } from "@switchboard/ring";
import type { ReportReading } from "./reconcile/observed.ts";

/** A pod to poll. */
export interface PollTarget {
  /** The SignalingCluster key (`namespace/name`) the pod belongs to. */
  readonly cluster: string;
  readonly name: string;
  readonly uid: string;
  readonly ip: string;
  readonly port: number;
}

/** Options of {@link PodReports}. */
export interface PodReportsOptions {
  /** The pods to poll now (called every round). */
  readonly targets: () => readonly PollTarget[];
  /** Called when a pod's ring version, ring state, readiness or draining changed. */
  readonly onChange: (cluster: string) => void;
  /** Called after every round (the autoscaler samples the load then). */
  readonly onRound?: () => void;
  /** @default 2000 */
  readonly intervalMs?: number;
  /** @default 1500 */
  readonly timeoutMs?: number;
  readonly onError?: (target: PollTarget, err: unknown) => void;
}

/** See the module comment. */
export class PodReports {
  readonly #o: PodReportsOptions;
  readonly #readings = new Map<string, ReportReading & { uid: string }>();
  readonly #abort = new AbortController();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #round: Promise<void> | null = null;
  #stopped = false;

  constructor(options: PodReportsOptions) {
    this.#o = options;
  }

  /** Starts polling (the first round at once). */
  start(): void {
    this.#schedule(0);
  }

  /** The last readings of a cluster's pods, by pod name (readings of replaced pods excluded). */
  readings(cluster: string, pods: readonly { name: string; uid: string }[]): Map<string, ReportReading> {
    const out = new Map<string, ReportReading>();
    for (const p of pods) {
      const r = this.#readings.get(`${cluster}/${p.name}`);
      if (r !== undefined && r.uid === p.uid) out.set(p.name, { report: r.report, atMs: r.atMs });
    }
    return out;
  }

  /** Polls every target once now (tests, and the controller after a write that pods must apply). */
  async pollNow(): Promise<void> {
    const targets = this.#o.targets();
    const live = new Set(targets.map((t) => `${t.cluster}/${t.name}`));
    for (const key of this.#readings.keys()) if (!live.has(key)) this.#readings.delete(key);
    await Promise.all(targets.map((t) => this.#poll(t)));
  }

  /** Stops polling and aborts requests under way. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#abort.abort();
    await this.#round;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#round = this.pollNow().finally(() => {
        this.#round = null;
        if (!this.#stopped) this.#o.onRound?.();
        this.#schedule(this.#o.intervalMs ?? 2000);
      });
    }, delayMs);
  }

  async #poll(t: PollTarget): Promise<void> {
    const key = `${t.cluster}/${t.name}`;
    try {
      const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#o.timeoutMs ?? 1500)]);
      const host = t.ip.includes(":") ? `[${t.ip}]` : t.ip;
      const res = await fetch(`http://${host}:${t.port}${POD_REPORT_PATH}`, { signal });
      if (!res.ok) throw new Error(`GET ${POD_REPORT_PATH}: HTTP ${res.status}`);
      const report = PodReport.parse(await res.json());
      const before = this.#readings.get(key);
      this.#readings.set(key, { report, atMs: Date.now(), uid: t.uid });
      const b = before?.uid === t.uid ? before.report : undefined;
      if (b === undefined || b.ring.version !== report.ring.version || b.ring.state !== report.ring.state || b.ready !== report.ready || b.draining !== report.draining) {
        this.#o.onChange(t.cluster);
      }
    } catch (err) {
      if (!this.#stopped) this.#o.onError?.(t, err);
    }
  }
}
