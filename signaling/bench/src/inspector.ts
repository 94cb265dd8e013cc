/**
 * A minimal Chrome DevTools Protocol client for the targets' inspector (`--inspect=127.0.0.1:0`):
 * force a full GC before reading RSS, read V8's heap usage, and take CPU profiles and heap
 * snapshots for the profiling runs. The session is opened only for these calls and closed right
 * after, so the target runs with no debugger attached while it is measured.
 *
 * @module
 */
import { createWriteStream } from "node:fs";
import { WebSocket } from "ws";

/** V8 heap usage as `Runtime.getHeapUsage` reports it, in bytes. */
export interface HeapUsage {
  readonly usedSize: number;
  readonly totalSize: number;
}

/** One short-lived inspector session. */
export class InspectorSession implements AsyncDisposable {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  readonly #events = new Map<string, (params: Record<string, unknown>) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on("message", (data: Buffer) => {
      const msg = JSON.parse(data.toString("utf8")) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, unknown> };
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(msg.error.message));
        else p?.resolve(msg.result);
      } else if (msg.method) this.#events.get(msg.method)?.(msg.params ?? {});
    });
    ws.on("close", () => {
      for (const p of this.#pending.values()) p.reject(new Error("inspector session closed"));
      this.#pending.clear();
    });
  }

  /** Opens a session on the target's inspector WebSocket URL. */
  static open(url: string): Promise<InspectorSession> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 2 ** 31 });
      ws.once("open", () => resolve(new InspectorSession(ws)));
      ws.once("error", reject);
    });
  }

  /** Sends one command; resolves its result. Rejects after `timeoutMs`. */
  call<T>(method: string, params: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`inspector ${method} timed out`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Runs a full, compacting GC (twice: the first may only free what finalizers release). */
  async collectGarbage(): Promise<void> {
    await this.call("HeapProfiler.collectGarbage");
    await this.call("HeapProfiler.collectGarbage");
  }

  heapUsage(): Promise<HeapUsage> {
    return this.call<HeapUsage>("Runtime.getHeapUsage");
  }

  /** Starts the sampling CPU profiler (`intervalUs` between samples). */
  async startProfiling(intervalUs = 200): Promise<void> {
    await this.call("Profiler.enable");
    await this.call("Profiler.setSamplingInterval", { interval: intervalUs });
    await this.call("Profiler.start");
  }

  /** Stops the profiler; resolves the profile (write it as `.cpuprofile` for DevTools). */
  async stopProfiling(): Promise<unknown> {
    const { profile } = await this.call<{ profile: unknown }>("Profiler.stop");
    await this.call("Profiler.disable");
    return profile;
  }

  /** Starts the sampling heap profiler (allocations by stack, one sample per `intervalBytes`). */
  async startAllocationSampling(intervalBytes = 16384): Promise<void> {
    await this.call("HeapProfiler.enable");
    await this.call("HeapProfiler.startSampling", { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }

  /** Stops it; resolves the profile (write it as `.heapprofile` for DevTools). */
  async stopAllocationSampling(): Promise<unknown> {
    const { profile } = await this.call<{ profile: unknown }>("HeapProfiler.stopSampling");
    await this.call("HeapProfiler.disable");
    return profile;
  }

  /** Writes a heap snapshot (`.heapsnapshot`) to `path`. */
  async heapSnapshot(path: string): Promise<void> {
    const out = createWriteStream(path);
    this.#events.set("HeapProfiler.addHeapSnapshotChunk", (p) => out.write(String(p["chunk"])));
    await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false }, 600_000);
    this.#events.delete("HeapProfiler.addHeapSnapshotChunk");
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#ws.readyState === WebSocket.CLOSED) return resolve();
      this.#ws.once("close", () => resolve());
      this.#ws.close();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
