/**
 * A token bucket: `ratePerSecond` tokens refill continuously up to `burst`. Time is passed in so
 * callers share one clock read per message and tests control it.
 */
export class TokenBucket {
  #tokens: number;
  #updatedAtMs: number;
  readonly ratePerSecond: number;
  readonly burst: number;

  constructor(ratePerSecond: number, burst: number, nowMs: number) {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#tokens = burst;
    this.#updatedAtMs = nowMs;
  }

  /** Takes one token; returns false (and takes nothing) when the bucket is empty. */
  take(nowMs: number): boolean {
    const elapsedMs = nowMs - this.#updatedAtMs;
    if (elapsedMs > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsedMs * this.ratePerSecond) / 1000);
      this.#updatedAtMs = nowMs;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** True when the bucket has refilled completely by `nowMs` (the entry can be forgotten). */
  isFull(nowMs: number): boolean {
    return this.#tokens + ((nowMs - this.#updatedAtMs) * this.ratePerSecond) / 1000 >= this.burst;
  }
}
