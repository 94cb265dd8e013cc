/**
 * A keyed work queue: each key is handled by one run at a time, requests for a key that is queued
 * or running coalesce into one more run, and a key can be scheduled for later (the earliest time
 * asked for wins). Like client-go's workqueue, so watch bursts cost one reconcile, not one each.
 *
 * @module
 */

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Handles one key; a rejection is passed to `onError` and the key is retried after `retryMs`. */
  readonly handle: (key: string) => Promise<void>;
  readonly onError: (key: string, err: unknown) => void;
  /** Delay before a failed key runs again, in ms (doubles per failure up to `maxRetryMs`). @default 500 */
  readonly retryMs?: number;
  /** @default 30000 */
  readonly maxRetryMs?: number;
  /** Keys handled at once (different keys). @default 4 */
  readonly concurrency?: number;
}

/** See the module comment. */
export class WorkQueue {
  readonly #o: WorkQueueOptions;
  readonly #queued = new Set<string>();
  readonly #running = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #timers = new Map<string, { at: number; timer: ReturnType<typeof setTimeout> }>();
  readonly #failures = new Map<string, number>();
  readonly #idle = new Set<() => void>();
  #stopped = false;

  constructor(options: WorkQueueOptions) {
    this.#o = options;
  }

  /** Asks for a run of `key` now (after its current run, if one is under way). */
  add(key: string): void {
    if (this.#stopped) return;
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    this.#queued.add(key);
    this.#pump();
  }

  /** Asks for a run of `key` in `delayMs`, unless one is already scheduled sooner. */
  addAfter(key: string, delayMs: number): void {
    if (this.#stopped) return;
    const at = Date.now() + delayMs;
    const existing = this.#timers.get(key);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    this.#timers.set(key, { at, timer });
  }

  /** Forgets a key's scheduled runs and failure count (its object is gone). */
  forget(key: string): void {
    const t = this.#timers.get(key);
    if (t !== undefined) clearTimeout(t.timer);
    this.#timers.delete(key);
    this.#failures.delete(key);
    this.#queued.delete(key);
  }

  /** Keys waiting to run now. */
  get length(): number {
    return this.#queued.size;
  }

  /** Stops taking work and waits for the runs under way. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#queued.clear();
    this.#dirty.clear();
    if (this.#running.size === 0) return;
    await new Promise<void>((resolve) => this.#idle.add(resolve));
  }

  #pump(): void {
    const limit = this.#o.concurrency ?? 4;
    for (const key of this.#queued) {
      if (this.#running.size >= limit) return;
      if (this.#running.has(key)) continue;
      this.#queued.delete(key);
      this.#running.add(key);
      void this.#run(key);
    }
  }

  async #run(key: string): Promise<void> {
    try {
      await this.#o.handle(key);
      this.#failures.delete(key);
    } catch (err) {
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      this.#o.onError(key, err);
      const delay = Math.min(this.#o.maxRetryMs ?? 30_000, (this.#o.retryMs ?? 500) * 2 ** (failures - 1));
      this.addAfter(key, delay * (0.8 + 0.4 * Math.random()));
    } finally {
      this.#running.delete(key);
      if (this.#dirty.delete(key)) this.#queued.add(key);
      if (this.#stopped && this.#running.size === 0) for (const resolve of this.#idle) resolve();
      if (!this.#stopped) this.#pump();
    }
  }
}
