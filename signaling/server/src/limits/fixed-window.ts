/**
 * Counts events per key in fixed time windows (one window at a time, so memory is bounded by the
 * keys seen in the current window). The single-node twin of the cluster-wide counters in Redis
 * (`Directory.allow`).
 */
export class FixedWindowCounter {
  readonly #windowMs: number;
  #window = -1;
  readonly #counts = new Map<string, number>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Counts one event against `key`; false (not counted) once `limit` were counted in this window. */
  allow(key: string, limit: number, nowMs: number): boolean {
    const w = Math.floor(nowMs / this.#windowMs);
    if (w !== this.#window) {
      this.#window = w;
      this.#counts.clear();
    }
    const c = this.#counts.get(key) ?? 0;
    if (c >= limit) return false;
    this.#counts.set(key, c + 1);
    return true;
  }
}
