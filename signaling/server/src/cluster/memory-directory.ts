import type { DeviceRecord, Directory } from "./directory.ts";

interface Expiring<T> {
  value: T;
  expiresAtMs: number;
}

/** The directory of one process, with the same expiry rules as Redis (see directory.contract.test.ts). */
export class MemoryDirectory implements Directory {
  readonly #now: () => number;
  readonly #devices = new Map<string, Map<string, Expiring<DeviceRecord>>>();
  readonly #ring = new Map<string, Expiring<number>>();
  readonly #counters = new Map<string, Expiring<number>>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async addDevice(userId: string, device: DeviceRecord, ttlMs: number): Promise<void> {
    let map = this.#devices.get(userId);
    if (!map) {
      map = new Map();
      this.#devices.set(userId, map);
    }
    map.set(device.sessionId, { value: device, expiresAtMs: this.#now() + ttlMs });
  }

  async removeDevice(userId: string, sessionId: string): Promise<void> {
    this.#devices.get(userId)?.delete(sessionId);
  }

  async devices(userId: string): Promise<DeviceRecord[]> {
    return this.#values(this.#devices.get(userId));
  }

  async reportRingVersion(pod: string, version: number, ttlMs: number): Promise<void> {
    this.#ring.set(pod, { value: version, expiresAtMs: this.#now() + ttlMs });
  }

  async ringVersions(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [pod, entry] of this.#ring) {
      const v = this.#live(entry);
      if (v !== null) out[pod] = v;
    }
    return out;
  }

  async allow(key: string, limit: number, windowMs: number): Promise<boolean> {
    const now = this.#now();
    const slot = `${key}:${Math.floor(now / windowMs)}`;
    const entry = this.#counters.get(slot);
    const count = this.#live(entry) ?? 0;
    if (count >= limit) return false;
    this.#counters.set(slot, { value: count + 1, expiresAtMs: (Math.floor(now / windowMs) + 1) * windowMs });
    return true;
  }

  async close(): Promise<void> {}

  #live<T>(entry: Expiring<T> | undefined): T | null {
    return entry && entry.expiresAtMs > this.#now() ? entry.value : null;
  }

  #values<T>(map: Map<string, Expiring<T>> | undefined): T[] {
    if (!map) return [];
    const out: T[] = [];
    for (const [k, entry] of map) {
      const v = this.#live(entry);
      if (v === null) map.delete(k);
      else out.push(v);
    }
    return out;
  }
}
