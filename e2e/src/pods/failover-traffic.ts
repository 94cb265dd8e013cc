import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { SwitchboardClient, type WebSocketFactory } from "@switchboard/client";
import type { PodProcess } from "./pod-processes.ts";

/**
 * Room traffic through the SDK for the fault tests: clients spread over pods, in rooms whose
 * members sit on different pods; every member sends numbered messages to every other member of
 * its room, one request at a time, retrying a refused one (never skipping a number). Each receiver
 * records what it got per sender, so a test can tell lost, duplicated and reordered messages apart.
 */

/** One client and what it saw. */
export interface TrafficClient {
  readonly name: string;
  /** Index of the pod it first connected to. */
  readonly pod: number;
  readonly sdk: SwitchboardClient;
  peerId: string;
  room: string;
  /** Highest number acknowledged (`ok`) per receiver peer. */
  readonly acked: Map<string, number>;
  /** Numbers received per sender peer, in arrival order. */
  readonly received: Map<string, number[]>;
  /** The pods it was on, by name, in order: its welcome's, then each resume's (the last is where it is now). */
  readonly pods: string[];
  /** `resumed` events: when (performance.now()) and on which pod. */
  readonly resumes: Array<{ atMs: number; pod: string }>;
  /** Sessions that could not be resumed (the client rejoined with a new session). */
  sessionLost: number;
  /** Requests refused, by error code (retried). */
  readonly refused: Map<string, number>;
}

export interface Traffic {
  readonly clients: TrafficClient[];
  /** Starts every client's send loop (`intervalMs` between one client's messages). */
  start(intervalMs: number): void;
  /** Stops sending and waits for the loops (each finishes its request in flight). */
  stop(): Promise<void>;
  /** Waits until every acknowledged message reached its receiver (or the timeout). */
  settle(timeoutMs: number): Promise<void>;
  /** Losses, duplicates and reorderings over every sender → receiver pair. */
  check(): TrafficReport;
  close(): Promise<void>;
}

export interface TrafficReport {
  readonly pairs: number;
  readonly acknowledged: number;
  readonly delivered: number;
  /** Acknowledged messages never received. */
  readonly lost: number;
  /** Messages received more than once. */
  readonly duplicated: number;
  /** Messages received after a higher number from the same sender. */
  readonly reordered: number;
  /** A few sender → receiver streams with a duplicate or a reordering, for the diagnosis. */
  readonly examples: string[];
}

/**
 * Connects `perPod × pods.length` clients (client i first on pod i mod n, with every other pod as a
 * fallback URL) into rooms of `roomSize` whose members are on different pods.
 */
export async function startTraffic(pods: readonly Pick<PodProcess, "wsUrl">[], options: { clients: number; roomSize: number; prefix: string }): Promise<Traffic> {
  const clients: TrafficClient[] = [];
  let running = false;
  let loops: Array<Promise<void>> = [];
  for (let i = 0; i < options.clients; i++) {
    const pod = i % pods.length;
    const urls = [...pods.slice(pod), ...pods.slice(0, pod)].map((p) => p.wsUrl);
    const sdk = new SwitchboardClient({
      url: urls,
      token: `${options.prefix}-u${i}`,
      WebSocket: WebSocket as unknown as WebSocketFactory,
      requestTimeoutMs: 30_000,
      reconnectInitialDelayMs: 50,
      reconnectMaxDelayMs: 1000,
      ackIntervalMs: 200,
    });
    const c: TrafficClient = {
      name: `u${i}`,
      pod,
      sdk,
      peerId: "",
      room: `${options.prefix}-room${Math.floor(i / options.roomSize)}`,
      acked: new Map(),
      received: new Map(),
      pods: [],
      resumes: [],
      sessionLost: 0,
      refused: new Map(),
    };
    sdk.on("message", (m) => {
      const list = c.received.get(m.from) ?? [];
      list.push((m.data as { n: number }).n);
      c.received.set(m.from, list);
    });
    sdk.on("session", (w) => c.pods.push(w.pod));
    sdk.on("resumed", (r) => {
      c.resumes.push({ atMs: performance.now(), pod: r.pod });
      c.pods.push(r.pod);
    });
    sdk.on("session-lost", () => (c.sessionLost += 1));
    clients.push(c);
  }
  for (let i = 0; i < clients.length; i += 20) {
    await Promise.all(
      clients.slice(i, i + 20).map(async (c) => {
        const w = await c.sdk.connect();
        c.peerId = w.peerId;
      }),
    );
  }
  // A join refused with a retryable error (a room changing owner as the ring changes) is retried, as an app would.
  for (const c of clients) {
    for (let attempt = 1; ; attempt++) {
      try {
        await c.sdk.join(c.room);
        break;
      } catch (err) {
        if ((err as { retryable?: boolean }).retryable !== true || attempt >= 50) throw err;
        await sleep(100);
      }
    }
  }
  const peersOf = (c: TrafficClient) => clients.filter((o) => o !== c && o.room === c.room);

  const loop = async (c: TrafficClient, intervalMs: number): Promise<void> => {
    const peers = peersOf(c);
    let n = 1;
    while (running) {
      for (const p of peers) {
        for (;;) {
          try {
            await c.sdk.message(c.room, p.peerId, { n });
            c.acked.set(p.peerId, n);
            break;
          } catch (err) {
            const code = (err as { code?: string }).code ?? "unknown";
            c.refused.set(code, (c.refused.get(code) ?? 0) + 1);
            if (!running) return;
            await sleep(100);
          }
        }
      }
      n += 1;
      await sleep(intervalMs);
    }
  };

  const missing = (): number => {
    let lost = 0;
    for (const c of clients) {
      for (const [to, upTo] of c.acked) {
        const r = clients.find((o) => o.peerId === to);
        const got = new Set(r?.received.get(c.peerId) ?? []);
        for (let k = 1; k <= upTo; k++) if (!got.has(k)) lost += 1;
      }
    }
    return lost;
  };

  return {
    clients,
    start(intervalMs) {
      running = true;
      loops = clients.map((c) => loop(c, intervalMs));
    },
    async stop() {
      running = false;
      const stuck = await Promise.race([Promise.all(loops).then(() => false), sleep(40_000).then(() => true)]);
      if (stuck) throw new Error(`send loops did not finish: ${clients.map((c) => `${c.name}:${c.sdk.state}`).join(" ")}`);
    },
    async settle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && missing() > 0) await sleep(100);
    },
    check() {
      let pairs = 0;
      let acknowledged = 0;
      let delivered = 0;
      let duplicated = 0;
      let reordered = 0;
      const examples: string[] = [];
      for (const c of clients) {
        for (const [to, upTo] of c.acked) {
          pairs += 1;
          acknowledged += upTo;
          const r = clients.find((o) => o.peerId === to);
          const got = r?.received.get(c.peerId) ?? [];
          delivered += got.length;
          const seen = new Set<number>();
          let high = 0;
          let bad = false;
          for (const k of got) {
            if (seen.has(k)) duplicated += 1;
            else if (k < high) reordered += 1;
            if (seen.has(k) || k < high) bad = true;
            seen.add(k);
            high = Math.max(high, k);
          }
          if (bad && examples.length < 4) examples.push(`${c.name}(pod ${c.pod}) → ${r?.name}(pod ${r?.pod}): ${JSON.stringify(got)}`);
        }
      }
      return { pairs, acknowledged, delivered, lost: missing(), duplicated, reordered, examples };
    },
    async close() {
      running = false;
      await Promise.all(clients.map((c) => c.sdk.close().catch(() => undefined)));
    },
  };
}

/** p-th percentile (0–100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}
