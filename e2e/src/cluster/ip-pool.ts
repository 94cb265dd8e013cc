import { ClusterError } from './errors.ts';

/** @default first host number handed to pods (.1 is the control plane's address) */
export const DEFAULT_FIRST_POD_HOST = 10;

/**
 * Hands out pod IPs 127.0.N.10–254 of the cluster's loopback /24, round-robin so that a deleted
 * pod's address is not reused at once.
 */
export class IpPool {
  readonly #prefix: string;
  readonly #first: number;
  readonly #byOwner = new Map<string, string>();
  readonly #used = new Set<string>();
  #next: number;

  constructor(subnet: number, first = DEFAULT_FIRST_POD_HOST) {
    this.#prefix = `127.0.${subnet}.`;
    this.#first = first;
    this.#next = first;
  }

  /** Whether `ip` belongs to this pool's range. */
  contains(ip: string): boolean {
    if (!ip.startsWith(this.#prefix)) return false;
    const host = Number(ip.slice(this.#prefix.length));
    return Number.isInteger(host) && host >= this.#first && host <= 254;
  }

  /**
   * The address of `owner` (a pod UID): the one it has, else `preferred` when free and in range,
   * else the next free one. Throws `CLUSTER_ERR_POD_SPEC` when the pool is exhausted.
   */
  allocate(owner: string, preferred?: string): string {
    const have = this.#byOwner.get(owner);
    if (have !== undefined) return have;
    let ip: string | undefined;
    if (preferred !== undefined && this.contains(preferred) && !this.#used.has(preferred)) ip = preferred;
    for (let i = 0; ip === undefined && i <= 254 - this.#first; i++) {
      const candidate = this.#prefix + String(this.#next);
      this.#next = this.#next >= 254 ? this.#first : this.#next + 1;
      if (!this.#used.has(candidate)) ip = candidate;
    }
    if (ip === undefined) throw new ClusterError('CLUSTER_ERR_POD_SPEC', `no free pod IP in ${this.#prefix}${this.#first}-254`);
    this.#byOwner.set(owner, ip);
    this.#used.add(ip);
    return ip;
  }

  /** Returns `owner`'s address to the pool. */
  release(owner: string): void {
    const ip = this.#byOwner.get(owner);
    if (ip === undefined) return;
    this.#byOwner.delete(owner);
    this.#used.delete(ip);
  }
}
