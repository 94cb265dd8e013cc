import { ClusterError } from './errors.ts';

/** @default first host number handed to pods (the lower ones are left for the node's own use) */
export const DEFAULT_FIRST_POD_HOST = 10;

/** An IPv4 address as an unsigned 32-bit number; `undefined` when `ip` is not dotted-quad IPv4. */
export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** The dotted-quad form of an unsigned 32-bit number. */
export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * Parses an IPv4 CIDR (`10.244.7.0/24`) into its network address and size. Throws
 * `CLUSTER_ERR_POD_SPEC` for anything else, or for host bits set.
 */
export function parseIpv4Cidr(cidr: string): { readonly network: number; readonly size: number } {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const network = m?.[1] === undefined ? undefined : ipv4ToNumber(m[1]);
  const bits = Number(m?.[2]);
  if (network === undefined || !(bits >= 0 && bits <= 32)) throw new ClusterError('CLUSTER_ERR_POD_SPEC', `not an IPv4 CIDR: '${cidr}'`);
  const size = 2 ** (32 - bits);
  if (network % size !== 0) throw new ClusterError('CLUSTER_ERR_POD_SPEC', `host bits set in CIDR '${cidr}'`);
  return { network, size };
}

/**
 * Hands out pod IPs of the node's pod range (e2e/cluster/lib.sh: `10.244.N.0/24`, every address
 * of which is local to the cluster's network namespace) from host number `first` up to the last
 * before the broadcast address, round-robin so that a deleted pod's address is not reused at once.
 */
export class IpPool {
  readonly #cidr: string;
  readonly #first: number;
  readonly #last: number;
  readonly #byOwner = new Map<string, string>();
  readonly #used = new Set<string>();
  #next: number;

  constructor(cidr: string, first = DEFAULT_FIRST_POD_HOST) {
    const { network, size } = parseIpv4Cidr(cidr);
    if (first < 1 || first > size - 2) throw new ClusterError('CLUSTER_ERR_POD_SPEC', `${cidr} has no host number ${first}`);
    this.#cidr = cidr;
    this.#first = network + first;
    this.#last = network + size - 2;
    this.#next = this.#first;
  }

  /** Whether `ip` belongs to this pool's range. */
  contains(ip: string): boolean {
    const n = ipv4ToNumber(ip);
    return n !== undefined && n >= this.#first && n <= this.#last;
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
    for (let i = 0; ip === undefined && i <= this.#last - this.#first; i++) {
      const candidate = numberToIpv4(this.#next);
      this.#next = this.#next >= this.#last ? this.#first : this.#next + 1;
      if (!this.#used.has(candidate)) ip = candidate;
    }
    if (ip === undefined) {
      throw new ClusterError('CLUSTER_ERR_POD_SPEC', `no free pod IP in ${this.#cidr} (${numberToIpv4(this.#first)}-${numberToIpv4(this.#last)})`);
    }
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
