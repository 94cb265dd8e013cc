/**
 * The runner's side of the load workers: forks them, spreads clients and send rates over them,
 * and gathers their replies.
 *
 * @module
 */
import { fork, type ChildProcess } from "node:child_process";
import { setPriority } from "node:os";
import { fileURLToPath } from "node:url";
import type { ClientProtocol, ConnectResult, Layout, LayoutResult, LoadResult, WorkerCommand, WorkerReply } from "./ipc.ts";

const WORKER_MAIN = fileURLToPath(new URL("./worker.ts", import.meta.url));

/**
 * Sockets one worker holds at most. The hard limit is 20 000 open files per process; the rest is
 * headroom for the runtime's own descriptors.
 */
export const MAX_SOCKETS_PER_WORKER = 19_000;

let addressCounter = 0;

/**
 * A fresh loopback source address for every connect (127.0.20.1, 127.0.20.2, …): each address has
 * its own ephemeral port range, and sockets of an earlier connect still in TIME_WAIT never collide.
 */
export function nextSourceAddress(): string {
  const k = addressCounter++;
  return `127.0.${20 + Math.floor(k / 250)}.${1 + (k % 250)}`;
}

interface Pending {
  readonly resolve: (r: WorkerReply) => void;
  readonly reject: (e: Error) => void;
}

/** A set of forked load workers. */
export class LoadPool implements AsyncDisposable {
  readonly #workers: ChildProcess[];
  readonly #pending = new Map<ChildProcess, Pending>();
  /** Clients each worker holds now. */
  readonly #counts: number[];

  private constructor(workers: ChildProcess[]) {
    this.#workers = workers;
    this.#counts = workers.map(() => 0);
    for (const w of workers) {
      w.on("message", (msg: WorkerReply) => {
        const p = this.#pending.get(w);
        this.#pending.delete(w);
        if (!p) return;
        if (msg.ev === "failed") p.reject(new Error(`load worker ${w.pid}: ${msg.message}`));
        else p.resolve(msg);
      });
      w.on("exit", (code) => {
        const p = this.#pending.get(w);
        this.#pending.delete(w);
        p?.reject(new Error(`load worker ${w.pid} exited (${code})`));
      });
    }
  }

  /**
   * Forks `count` workers at niceness `nice`. The generator shares the cores with the server under
   * test; at a lower priority it yields to the server whenever both want a core, so the scheduler
   * queueing the server behind the generator does not show up as server latency (a production
   * server does not share its cores with its clients). With `cpuProfileDir`, each worker writes a
   * CPU profile there when it exits.
   */
  static start(count: number, nice: number, cpuProfileDir?: string): LoadPool {
    const execArgv = cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfileDir}`] : [];
    const workers = Array.from({ length: count }, () => {
      const w = fork(WORKER_MAIN, [], { execPath: process.execPath, execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
      if (nice !== 0 && w.pid !== undefined) setPriority(w.pid, nice);
      return w;
    });
    return new LoadPool(workers);
  }

  get size(): number {
    return this.#workers.length;
  }

  /** Process ids of the workers (their CPU is sampled as the generator's). */
  get pids(): number[] {
    return this.#workers.map((w) => w.pid as number);
  }

  #send<R extends WorkerReply>(w: ChildProcess, command: WorkerCommand): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.#pending.has(w)) return reject(new Error("worker busy"));
      this.#pending.set(w, { resolve: resolve as (r: WorkerReply) => void, reject });
      w.send(command);
    });
  }

  /**
   * Opens `total` clients spread evenly over the workers (an even number each, so pairs and rooms
   * of `groupSize` never straddle two workers). Resolves the workers' results.
   */
  async connect(options: {
    protocol: ClientProtocol;
    urls: readonly string[];
    total: number;
    groupSize: number;
    concurrency: number;
    peerjsHeartbeatMs: number;
    ackIntervalMs: number;
    idPrefix: string;
  }): Promise<ConnectResult[]> {
    const groups = Math.floor(options.total / options.groupSize);
    const shares = this.#workers.map((_, w) => (Math.floor(groups / this.size) + (w < groups % this.size ? 1 : 0)) * options.groupSize);
    shares.forEach((s, w) => {
      if (s + (this.#counts[w] as number) > MAX_SOCKETS_PER_WORKER) throw new Error(`worker ${w} would hold ${s} sockets; use more workers`);
    });
    const results = await Promise.all(
      this.#workers.map((w, i) =>
        this.#send<ConnectResult>(w, {
          cmd: "connect",
          protocol: options.protocol,
          urls: options.urls,
          count: shares[i] as number,
          localAddress: nextSourceAddress(),
          idPrefix: `${options.idPrefix}w${i}`,
          concurrency: Math.max(1, Math.ceil(options.concurrency / this.size)),
          peerjsHeartbeatMs: options.peerjsHeartbeatMs,
          ackIntervalMs: options.ackIntervalMs,
        }),
      ),
    );
    results.forEach((r, i) => (this.#counts[i] = (this.#counts[i] as number) + r.opened));
    return results;
  }

  /** Groups every worker's clients (pairs, or rooms of k). */
  layout(layout: Layout, concurrency: number): Promise<LayoutResult[]> {
    return Promise.all(this.#workers.map((w) => this.#send<LayoutResult>(w, { cmd: "layout", layout, concurrency: Math.max(1, Math.ceil(concurrency / this.size)) })));
  }

  /**
   * Runs relay (`relay`) or room fan-out (`fanout`) on every worker at once, the total rate split
   * in proportion to the clients each holds.
   */
  run(kind: "relay" | "fanout", totalRatePerSec: number, durationMs: number, drainMs: number): Promise<LoadResult[]> {
    const all = this.#counts.reduce((a, b) => a + b, 0);
    const startAtEpochMs = Date.now() + 500;
    return Promise.all(
      this.#workers.map((w, i) =>
        this.#send<LoadResult>(w, {
          cmd: kind,
          ratePerSec: Math.max(0.001, (totalRatePerSec * (this.#counts[i] as number)) / Math.max(1, all)),
          durationMs,
          startAtEpochMs,
          drainMs,
        }),
      ),
    );
  }

  /** Closes every client socket. */
  async closeClients(): Promise<void> {
    await Promise.all(this.#workers.map((w) => this.#send(w, { cmd: "close" })));
    this.#counts.fill(0);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.exitCode !== null) return resolve();
            w.once("exit", () => resolve());
            w.disconnect();
            setTimeout(() => w.kill("SIGKILL"), 5000).unref();
          }),
      ),
    );
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
