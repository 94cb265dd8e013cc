/**
 * Runs work items concurrently across keys and one at a time, in arrival order, within a key; an
 * item without a key (`null`) is a full barrier: it waits for everything before it and everything
 * after it waits for it. Bounded: `admit` waits while `limit` items are in flight. A failing item
 * is retried in place (its key waits) until it succeeds or the dispatcher stops — so a failure
 * never lets a later item of the same key overtake it.
 */
export class KeyedDispatch {
  readonly #limit: number;
  readonly #retryDelayMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #tails = new Map<string, Promise<void>>();
  /** Every item in flight, by its position. */
  readonly #inflight = new Map<number, Promise<void>>();
  #barrier: Promise<void> = Promise.resolve();
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(options: { limit: number; retryDelayMs: number; onError?: (err: unknown) => void }) {
    this.#limit = options.limit;
    this.#retryDelayMs = options.retryDelayMs;
    this.#onError = options.onError ?? (() => undefined);
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

  /** Resolves once fewer than `limit` items are in flight. */
  async admit(): Promise<void> {
    while (this.#inflight.size >= this.#limit && !this.#stopped) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /**
   * Queues `work` (position `pos`, key `key`); `done` is called once it succeeded (not when the
   * dispatcher stopped first).
   */
  push(pos: number, key: string | null, work: () => Promise<void> | void, done: () => void, working?: () => void): void {
    const run = async (): Promise<void> => {
      for (;;) {
        if (this.#stopped) return;
        try {
          await work();
          done();
          return;
        } catch (err) {
          this.#onError(err);
          working?.();
          await new Promise((r) => setTimeout(r, this.#retryDelayMs));
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

  /** Waits for every item in flight. */
  async idle(): Promise<void> {
    await Promise.all([...this.#inflight.values()]);
  }

  /** Stops retrying; items in progress finish their current attempt. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.idle();
  }
}
