import { TokenBucket } from "./token-bucket.ts";

/** Per-client-address limits on open sockets and on the upgrade rate. */
export interface IpLimiterOptions {
  readonly maxConnectionsPerIp: number;
  readonly upgradesPerSecondPerIp: number;
}

/** Why an upgrade was refused, if it was. */
export type IpVerdict = "ok" | "too-many-connections" | "too-many-upgrades";

/**
 * Counts sockets and upgrade attempts per client address. `admit` reserves a slot that the caller
 * must give back with `release` when the socket closes (or the upgrade fails).
 */
export class IpLimiter {
  readonly #options: IpLimiterOptions;
  readonly #open = new Map<string, number>();
  readonly #upgrades = new Map<string, TokenBucket>();

  constructor(options: IpLimiterOptions) {
    this.#options = options;
  }

  /** Checks both limits for `ip` and, when both pass, counts one more open socket. */
  admit(ip: string, nowMs: number): IpVerdict {
    let bucket = this.#upgrades.get(ip);
    if (!bucket) {
      const rate = this.#options.upgradesPerSecondPerIp;
      bucket = new TokenBucket(rate, Math.max(1, Math.ceil(rate * 2)), nowMs);
      this.#upgrades.set(ip, bucket);
    }
    if (!bucket.take(nowMs)) return "too-many-upgrades";
    const open = this.#open.get(ip) ?? 0;
    if (open >= this.#options.maxConnectionsPerIp) return "too-many-connections";
    this.#open.set(ip, open + 1);
    return "ok";
  }

  /** Gives back a slot taken by a successful {@link admit}. */
  release(ip: string): void {
    const open = (this.#open.get(ip) ?? 0) - 1;
    if (open <= 0) this.#open.delete(ip);
    else this.#open.set(ip, open);
  }

  /** Forgets upgrade buckets that have refilled, so idle addresses cost no memory. */
  sweep(nowMs: number): void {
    for (const [ip, bucket] of this.#upgrades) if (bucket.isFull(nowMs)) this.#upgrades.delete(ip);
  }

  /** Open sockets of `ip`. */
  openCount(ip: string): number {
    return this.#open.get(ip) ?? 0;
  }
}
