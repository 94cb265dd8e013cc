/** Breaker states: closed (calls go through), open (calls fail at once), half-open (one probe). */
export type BreakerState = "closed" | "open" | "half-open";

/** Options of {@link Breaker}. */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker. @default 3 */
  readonly failureThreshold?: number;
  /** How long it stays open before one probe call is let through. @default 1000 */
  readonly openMs?: number;
  /** A call slower than this counts as failed (and is rejected). @default 2000 */
  readonly timeoutMs?: number;
  readonly now?: () => number;
  /** Told about every state change (readiness, metrics, logs). */
  readonly onStateChange?: (state: BreakerState) => void;
  /**
   * Checks the dependency without a caller (e.g. a PING): run through the breaker every
   * `probeEveryMs` while it is closed (so an outage opens it even without traffic) and as the
   * half-open probe once `openMs` has passed (so it closes by itself when the dependency is back).
   * Without it the breaker only learns from calls. Stopped by `close`.
   */
  readonly probe?: () => Promise<unknown>;
  /** Interval of the probe while closed. @default 1000 */
  readonly probeEveryMs?: number;
}

/** Thrown when the breaker is open (and by timed-out calls). */
export class BreakerOpenError extends Error {
  override readonly name = "BreakerOpenError";
}

/**
 * A circuit breaker around a dependency (NATS, Redis): after a few consecutive failures every call
 * fails fast for `openMs`, then one probe decides; it closes by itself when the dependency answers
 * again. Calls never hang: each has a timeout.
 */
export class Breaker {
  readonly #o: Required<Omit<BreakerOptions, "onStateChange" | "probe">> & {
    onStateChange: ((state: BreakerState) => void) | undefined;
    probe: (() => Promise<unknown>) | undefined;
  };
  #state: BreakerState = "closed";
  #failures = 0;
  #openedAtMs = 0;
  #probing = false;
  #probeTimer: ReturnType<typeof setTimeout> | null = null;
  #probeRun: Promise<void> | null = null;
  #closed = false;

  constructor(options: BreakerOptions = {}) {
    this.#o = {
      failureThreshold: options.failureThreshold ?? 3,
      openMs: options.openMs ?? 1000,
      timeoutMs: options.timeoutMs ?? 2000,
      now: options.now ?? Date.now,
      probeEveryMs: options.probeEveryMs ?? 1000,
      onStateChange: options.onStateChange,
      probe: options.probe,
    };
    if (this.#o.probe) this.#scheduleProbe();
  }

  get state(): BreakerState {
    if (this.#state === "open" && this.#o.now() - this.#openedAtMs >= this.#o.openMs) return "half-open";
    return this.#state;
  }

  /** Runs `fn` through the breaker. Rejects with {@link BreakerOpenError} while open. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === "open" || (state === "half-open" && this.#probing)) throw new BreakerOpenError("dependency unavailable (breaker open)");
    if (state === "half-open") this.#probing = true;
    try {
      const result = await withTimeout(fn(), this.#o.timeoutMs);
      this.#success();
      return result;
    } catch (err) {
      this.#failure();
      throw err;
    } finally {
      if (state === "half-open") this.#probing = false;
    }
  }

  /** Stops the probe and waits for one in flight. Idempotent; calls still work (without probing). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probeTimer) clearTimeout(this.#probeTimer);
    this.#probeTimer = null;
    await this.#probeRun;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #scheduleProbe(): void {
    if (this.#closed) return;
    // While open, the next probe is due when the breaker turns half-open; else on the interval
    // (also when half-open with a caller's probe in flight: no busy loop while it runs).
    const dueInMs = this.#openedAtMs + this.#o.openMs - this.#o.now();
    const delay = this.#state === "open" && dueInMs > 0 ? dueInMs : this.#o.probeEveryMs;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = null;
      const probe = this.#o.probe as () => Promise<unknown>;
      const state = this.state;
      // Open (not yet due) or a caller's probe in flight: nothing to learn now. A failed probe is
      // not lost: it counts like a failed call, and the state change is reported.
      const run = state === "open" || (state === "half-open" && this.#probing) ? Promise.resolve() : this.call(probe).then(() => undefined, () => undefined);
      this.#probeRun = run.finally(() => {
        this.#probeRun = null;
        this.#scheduleProbe();
      });
    }, delay);
    this.#probeTimer.unref();
  }

  #success(): void {
    this.#failures = 0;
    this.#set("closed");
  }

  #failure(): void {
    this.#failures += 1;
    if (this.#state === "open" || this.#failures >= this.#o.failureThreshold) {
      this.#openedAtMs = this.#o.now();
      this.#set("open");
    }
  }

  #set(state: BreakerState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#o.onStateChange?.(state);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BreakerOpenError(`call timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
