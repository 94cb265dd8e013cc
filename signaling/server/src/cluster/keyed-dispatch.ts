/** Options of {@link KeyedDispatch}. */
export interface KeyedDispatchOptions {
  /** Most items in flight at once. */
  readonly limit: number;
  /** Attempts at an item, the first included, before it is given up. @default Infinity */
  readonly maxAttempts?: number;
  /** The wait before the next attempt after an item's `failures`-th failure, in ms. */
  readonly retryDelayMs: (failures: number) => number;
}

/** What {@link KeyedDispatch.push} reports about an item. */
export interface ItemCallbacks {
  /** The item succeeded. */
  readonly done: () => void;
  /**
   * An attempt failed: the error, how many attempts failed so far, and whether the item is now
   * given up (`givenUp` follows). Nothing is logged otherwise: this is where failures are seen.
   */
  readonly onError: (err: unknown, failures: number, givenUp: boolean) => void;
  /** The item failed and will be attempted again (its lease should be extended). */
  readonly working?: () => void;
  /** The item failed `maxAttempts` times and will not be attempted again. */
  readonly givenUp?: () => void;
}

/**
 * Runs work items concurrently across keys and one at a time, in arrival order, within a key; an
 * item without a key (`null`) is a full barrier: it waits for everything before it and everything
 * after it waits for it. Bounded: `admit` waits while `limit` items are in flight. A failing item
 * is retried in place (its key waits) until it succeeds, it has failed `maxAttempts` times (it is
 * then given up and its key goes on), or the dispatcher closes — so a failure never lets a later
 * item of the same key overtake it.
 */
export class KeyedDispatch {
  readonly #o: KeyedDispatchOptions;
  readonly #maxAttempts: number;
  readonly #tails = new Map<string, Promise<void>>();
  /** Every item in flight, by its position. */
  readonly #inflight = new Map<number, Promise<void>>();
  #barrier: Promise<void> = Promise.resolve();
  #closed = false;
  #wake: (() => void) | null = null;
  /** Wakes the items waiting between two attempts when the dispatcher closes. */
  readonly #sleepers = new Set<() => void>();

  constructor(options: KeyedDispatchOptions) {
    this.#o = options;
    this.#maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
  }

  /** Items in flight. */
  get size(): number {
    return this.#inflight.size;
  }

  /** True while an item at position `pos` is in flight (a redelivery of it is to be skipped). */
  has(pos: number): boolean {
    return this.#inflight.has(pos);
  }

  /** True when no item before position `pos` is in flight. */
  doneBefore(pos: number): boolean {
    for (const p of this.#inflight.keys()) if (p < pos) return false;
    return true;
  }

  /** Resolves once fewer than `limit` items are in flight (at once after close). */
  async admit(): Promise<void> {
    while (this.#inflight.size >= this.#o.limit && !this.#closed) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Queues `work` (position `pos`, key `key`) and reports its outcome through `callbacks`. */
  push(pos: number, key: string | null, work: () => Promise<void> | void, callbacks: ItemCallbacks): void {
    const run = async (): Promise<void> => {
      for (let failures = 0; ; ) {
        if (this.#closed) return;
        try {
          await work();
          callbacks.done();
          return;
        } catch (err) {
          failures += 1;
          const givenUp = failures >= this.#maxAttempts;
          callbacks.onError(err, failures, givenUp);
          if (givenUp) {
            callbacks.givenUp?.();
            return;
          }
          callbacks.working?.();
          await this.#sleep(this.#o.retryDelayMs(failures));
        }
      }
    };
    let p: Promise<void>;
    if (key === null) {
      const before = [...this.#inflight.values()];
      p = Promise.all(before).then(run);
      this.#barrier = p;
    } else {
      const prev = this.#tails.get(key);
      const after = prev ? Promise.all([prev, this.#barrier]) : this.#barrier;
      p = after.then(run);
      this.#tails.set(key, p);
      void p.then(() => {
        if (this.#tails.get(key) === p) this.#tails.delete(key);
      });
    }
    this.#inflight.set(pos, p);
    void p.then(() => {
      this.#inflight.delete(pos);
      const wake = this.#wake;
      this.#wake = null;
      wake?.();
    });
  }

  /** Waits `ms`, or less when the dispatcher closes meanwhile. */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }

  /** Waits for every item in flight. */
  async idle(): Promise<void> {
    await Promise.all([...this.#inflight.values()]);
  }

  /** Stops retrying; items in progress finish their current attempt. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    for (const wake of [...this.#sleepers]) wake();
    await this.idle();
  }
}
