import { monitorEventLoopDelay, type ELDHistogram } from "node:perf_hooks";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { ALL_ERROR_CODES } from "@switchboard/protocol";
import type { BreakerState } from "../cluster/breaker.ts";
import type { ClusterMetrics } from "../cluster/cluster-metrics.ts";

/** Node default metrics left out: each one's scrape costs time proportional to the open sockets. */
export const SCRAPE_WALKING_METRICS = [
  "process_open_fds",
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
] as const;

/** Buckets of the relay latency histogram, in seconds: fine below a millisecond. */
export const RELAY_LATENCY_BUCKETS_S = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

/**
 * Buckets of the cluster dependencies' latency histograms (JetStream publish to ack, Redis calls),
 * in seconds: 0.1 ms on loopback up to 2.5 s (both clients give up after 2 s).
 */
export const DEPENDENCY_LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Value of `switchboard_dependency_breaker_state` for each breaker state. */
export const BREAKER_STATE_VALUES: Readonly<Record<BreakerState, number>> = { closed: 0, "half-open": 1, open: 2 };

/** Period of the event-loop delay samplers, in ms (see the constructor of {@link PodMetrics}). */
export const EVENT_LOOP_SAMPLE_MS = 10;

/**
 * Every metric of one pod, in its own registry (several pods may share a process in tests).
 *
 * The message counters (in and out, by type: two increments per relayed message) are tallied in a
 * plain Map on the hot path and added to prom-client's counters when the registry is read:
 * prom-client's `inc` hashes the label set and validates it on every call, which showed up as
 * ~2 % of the pod's time in the relay benchmark's CPU profile (docs/benchmarks.md).
 */
export class PodMetrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly sessions: Gauge;
  readonly rooms: Gauge;
  readonly calls: Gauge;
  readonly relayLatency: Histogram;
  readonly resumes: Counter<"result">;
  readonly closes: Counter<"code">;
  readonly ready: Gauge;
  readonly ringVersion: Gauge;
  readonly #errors: Counter<"code">;
  readonly #sources: { current: LiveCounts | null } = { current: null };
  /** Event-loop delay for the pod report (`/status`), reset at each read. */
  readonly #loopDelay: ELDHistogram;
  /** Increments not yet added to the counters, by type. */
  readonly #inPending = new Map<string, number>();
  readonly #outPending = new Map<string, number>();
  #cluster: ClusterMetrics | null = null;

  constructor(podName: string, options: { defaultMetrics?: boolean } = {}) {
    const r = this.registry;
    r.setDefaultLabels({ pod: podName });
    if (options.defaultMetrics !== false) {
      // Event-loop delay is sampled every 10 ms (prom-client's default). Each sample still records
      // the full delay, so a stall of any length shows; what a coarser timer misses is only short
      // stalls that end between two samples. A 1 ms timer wakes the idle pod 1 000+ times a second:
      // measured on the 2-core bench box (docs/benchmarks.md), an idle pod with no sockets used
      // 1.5–2.2 % of a core at 1 ms and 0.4 % at 10 ms, more than the whole idle budget.
      collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
      // These walk every handle, resource or file descriptor of the process at each scrape, on the
      // event loop: at 19 000 sockets a scrape blocked the pod for 60–190 ms (docs/benchmarks.md),
      // a stall every scrape interval. switchboard_connections counts the sockets instead.
      for (const name of SCRAPE_WALKING_METRICS) r.removeSingleMetric(name);
    }
    // prom-client's sampler is closed over and reset by every scrape, so the pod report cannot read
    // it without taking the scraper's window. A second sampler started in the same turn with the
    // same period wakes with the first (libuv re-arms both timers from one loop time): measured
    // on a 2-core box, an idle process used 0.66 % of a core with one sampler, 0.64 % with two
    // and 0.002 % with none (20 s each, side by side).
    this.#loopDelay = monitorEventLoopDelay({ resolution: EVENT_LOOP_SAMPLE_MS });
    this.#loopDelay.enable();
    const sources = this.#sources;
    const live = (name: string, help: string, read: keyof LiveCounts) =>
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(sources.current?.[read]() ?? 0);
        },
      });
    this.connections = live("switchboard_connections", "Open WebSocket connections.", "connections");
    this.sessions = live("switchboard_sessions", "Sessions, attached or waiting to resume.", "sessions");
    this.rooms = live("switchboard_rooms", "Rooms with at least one member.", "rooms");
    this.calls = live("switchboard_calls", "Calls not yet ended.", "calls");
    this.ready = new Gauge({ name: "switchboard_ready", help: "1 when the pod accepts new sockets.", registers: [r] });
    this.ringVersion = new Gauge({ name: "switchboard_ring_version", help: "Ring version this pod applied.", registers: [r] });
    const inPending = this.#inPending;
    const outPending = this.#outPending;
    // The message counters are read only at scrape time (their collect() adds the pending counts).
    new Counter({
      name: "switchboard_messages_in_total",
      help: "Client messages received, by type.",
      labelNames: ["type"],
      registers: [r],
      collect() {
        flush(this, inPending);
      },
    });
    new Counter({
      name: "switchboard_messages_out_total",
      help: "Server messages sent, by type.",
      labelNames: ["type"],
      registers: [r],
      collect() {
        flush(this, outPending);
      },
    });
    this.#errors = new Counter({
      name: "switchboard_errors_total",
      help: "Errors sent to clients, by code.",
      labelNames: ["code"],
      registers: [r],
    });
    // Every code exported from the start at 0: a rate over a series that appears at its first error
    // misses that error (Prometheus has no earlier sample), and a dashboard shows "no data" for a
    // healthy pod instead of 0.
    for (const code of ALL_ERROR_CODES) this.#errors.labels(code).inc(0);
    this.relayLatency = new Histogram({
      name: "switchboard_relay_latency_seconds",
      help: "Time from receiving a relay message to writing it to the target socket.",
      buckets: RELAY_LATENCY_BUCKETS_S,
      registers: [r],
    });
    this.resumes = new Counter({
      name: "switchboard_resumes_total",
      help: "Resume attempts by result.",
      labelNames: ["result"],
      registers: [r],
    });
    this.closes = new Counter({
      name: "switchboard_socket_closes_total",
      help: "Sockets closed, by WebSocket close code.",
      labelNames: ["code"],
      registers: [r],
    });
  }

  /**
   * The metrics of cluster mode's dependencies (JetStream, Redis, breakers), registered on the
   * first call: a single-node pod never calls it, so its exposition has none of them. The same
   * object on every call.
   */
  cluster(): ClusterMetrics {
    this.#cluster ??= registerClusterMetrics(this.registry);
    return this.#cluster;
  }

  /** Where the live gauges read their values at scrape time (no bookkeeping on the hot path). */
  observe(counts: LiveCounts): void {
    this.#sources.current = counts;
  }

  messageIn(type: string): void {
    this.#inPending.set(type, (this.#inPending.get(type) ?? 0) + 1);
  }

  messageOut(type: string): void {
    this.#outPending.set(type, (this.#outPending.get(type) ?? 0) + 1);
  }

  error(code: string): void {
    this.#errors.labels(code).inc();
  }

  /**
   * The 99th percentile of the event loop's delay since the previous call (or since the pod
   * started), in ms beyond the sampling period ({@link EVENT_LOOP_SAMPLE_MS}): 0 on an idle loop.
   * Starts a new window.
   */
  eventLoopLagP99Ms(): number {
    const h = this.#loopDelay;
    const p99Ms = h.count === 0 ? 0 : h.percentile(99) / 1e6 - EVENT_LOOP_SAMPLE_MS;
    h.reset();
    return Math.max(0, Math.round(p99Ms * 1000) / 1000);
  }

  /** Stops the event-loop sampler of the pod report. Idempotent. */
  close(): void {
    this.#loopDelay.disable();
  }

  /** The text exposition of every metric. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Readers of the live gauges. */
export interface LiveCounts {
  connections(): number;
  sessions(): number;
  rooms(): number;
  calls(): number;
}

/** Registers the cluster metrics in `r` and returns what the cluster code reports into. */
function registerClusterMetrics(r: Registry): ClusterMetrics {
  const publishDuration = new Histogram({
    name: "switchboard_jetstream_publish_duration_seconds",
    help: "Time from a JetStream publish to its ack (PubAck), for every publish of this pod's bus.",
    buckets: DEPENDENCY_LATENCY_BUCKETS_S,
    registers: [r],
  });
  const publishFailures = new Counter({
    name: "switchboard_jetstream_publish_failures_total",
    help: "JetStream publishes that failed or were not acknowledged within the publish timeout.",
    registers: [r],
  });
  let readPending: () => ReadonlyMap<string, number> = () => new Map();
  new Gauge({
    name: "switchboard_jetstream_consumer_pending",
    help: "Messages of this pod's durable consumer not yet delivered plus delivered but unacknowledged (read every few seconds).",
    labelNames: ["consumer"],
    registers: [r],
    collect() {
      // Only the consumers with a known count: a stopped one, or one JetStream did not answer for, is absent.
      this.reset();
      for (const [consumer, n] of readPending()) this.set({ consumer }, n);
    },
  });
  const redisDuration = new Histogram({
    name: "switchboard_redis_command_duration_seconds",
    help: "Time of each Redis call of this pod's cluster stores that succeeded, by store.",
    labelNames: ["store"],
    buckets: DEPENDENCY_LATENCY_BUCKETS_S,
    registers: [r],
  });
  const redisFailures = new Counter({
    name: "switchboard_redis_command_failures_total",
    help: "Redis calls of this pod's cluster stores that failed or timed out, by store.",
    labelNames: ["store"],
    registers: [r],
  });
  const breakerState = new Gauge({
    name: "switchboard_dependency_breaker_state",
    help: "State of the breaker of each cluster dependency: 0 closed, 1 half-open, 2 open.",
    labelNames: ["dependency"],
    registers: [r],
  });
  return {
    publishAcked: (seconds) => publishDuration.observe(seconds),
    publishFailed: () => publishFailures.inc(),
    consumersPending: (read) => {
      readPending = read;
    },
    store: (store) => {
      // Exported at zero from the start, so rates over them are defined before the first call.
      redisDuration.zero({ store });
      const duration = redisDuration.labels(store);
      const failures = redisFailures.labels(store);
      failures.inc(0);
      return { observed: (seconds) => duration.observe(seconds), failed: () => failures.inc() };
    },
    breakerState: (dependency, state) => breakerState.labels(dependency).set(BREAKER_STATE_VALUES[state]),
  };
}

/** Adds the pending increments to the counter (at scrape time) and forgets them. */
function flush(counter: Counter<"type">, pending: Map<string, number>): void {
  for (const [type, n] of pending) if (n > 0) counter.labels(type).inc(n);
  pending.clear();
}
