import type { DeviceRecord, Directory, PresenceRecord, SessionRecord } from "./directory.ts";

interface Expiring<T> {
  value: T;
  expiresAtMs: number;
}

/** The directory of one process, with the same expiry rules as Redis (see directory.contract.test.ts). */
export class MemoryDirectory implements Directory {
  readonly #now: () => number;
  readonly #sessions = new Map<string, Expiring<SessionRecord>>();
  readonly #devices = new Map<string, Map<string, Expiring<DeviceRecord>>>();
  readonly #presence = new Map<string, Map<string, Expiring<PresenceRecord>>>();
  readonly #ring = new Map<string, Expiring<number>>();
  readonly #counters = new Map<string, Expiring<number>>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async claimSession(record: Omit<SessionRecord, "epoch">, ttlMs: number): Promise<{ record: SessionRecord; previous: SessionRecord | null }> {
    const previous = this.#live(this.#sessions.get(record.sessionId));
    const next: SessionRecord = { ...record, epoch: (previous?.epoch ?? 0) + 1 };
    this.#sessions.set(record.sessionId, { value: next, expiresAtMs: this.#now() + ttlMs });
    return { record: next, previous };
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    return this.#live(this.#sessions.get(sessionId));
  }

  async refreshSessions(sessionIds: readonly string[], ttlMs: number): Promise<void> {
    for (const id of sessionIds) {
      const entry = this.#sessions.get(id);
      if (entry && this.#live(entry)) entry.expiresAtMs = this.#now() + ttlMs;
    }
  }

  async removeSession(sessionId: string, epoch: number): Promise<boolean> {
    const current = this.#live(this.#sessions.get(sessionId));
    if (!current || current.epoch !== epoch) return false;
    this.#sessions.delete(sessionId);
    return true;
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

  async setPresence(room: string, presence: PresenceRecord, ttlMs: number): Promise<void> {
    let map = this.#presence.get(room);
    if (!map) {
      map = new Map();
      this.#presence.set(room, map);
    }
    map.set(presence.peerId, { value: presence, expiresAtMs: this.#now() + ttlMs });
  }

  async removePresence(room: string, peerId: string): Promise<void> {
    this.#presence.get(room)?.delete(peerId);
  }

  async presence(room: string): Promise<PresenceRecord[]> {
    return this.#values(this.#presence.get(room));
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
