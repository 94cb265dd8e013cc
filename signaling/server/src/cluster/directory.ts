/**
 * The cluster-wide directory: the live devices of each user (so a call rings on every pod), the
 * ring version each pod applied, and rate-limit counters that must hold across pods (sessions and
 * rooms have stores of their own: session-store.ts, room-store.ts). Redis in cluster mode; memory
 * in one process. Every entry expires (TTL), so a dead pod leaves nothing behind for long.
 */

/** A device of a user, as calls need it. */
export interface DeviceRecord {
  readonly sessionId: string;
  readonly peerId: string;
  readonly edge: string;
}

export interface Directory {
  addDevice(userId: string, device: DeviceRecord, ttlMs: number): Promise<void>;
  removeDevice(userId: string, sessionId: string): Promise<void>;
  devices(userId: string): Promise<DeviceRecord[]>;

  /** Records the ring version `pod` applied. */
  reportRingVersion(pod: string, version: number, ttlMs: number): Promise<void>;
  /** The ring version each live pod applied. */
  ringVersions(): Promise<Record<string, number>>;

  /**
   * Counts one event against `key` in the current fixed window; false once `limit` events were
   * counted in it (the event is then not counted).
   */
  allow(key: string, limit: number, windowMs: number): Promise<boolean>;

  close(): Promise<void>;
}
