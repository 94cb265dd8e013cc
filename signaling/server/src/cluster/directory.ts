/**
 * The cluster-wide directory: which pod holds each session, the live devices of each user (so a
 * call rings on every pod), room presence, the ring version each pod applied, and rate-limit
 * counters that must hold across pods. Redis in cluster mode; memory in one process. Every entry
 * expires (TTL), so a dead pod leaves nothing behind for long.
 */

/** Where a session lives. */
export interface SessionRecord {
  readonly sessionId: string;
  readonly userId: string;
  readonly peerId: string;
  /** The edge pod holding (or last holding) the socket. */
  readonly edge: string;
  /** Incremented on every takeover; fences the previous edge. */
  readonly epoch: number;
}

/** A device of a user, as calls need it. */
export interface DeviceRecord {
  readonly sessionId: string;
  readonly peerId: string;
  readonly edge: string;
}

/** A peer present in a room. */
export interface PresenceRecord {
  readonly peerId: string;
  readonly userId: string;
  readonly edge: string;
  readonly meta: Readonly<Record<string, unknown>>;
}

export interface Directory {
  /**
   * Takes a session for `edge`: epoch becomes the previous epoch + 1 (1 for a new session).
   * Resolves the new record and the previous one (null for a new session).
   */
  claimSession(record: Omit<SessionRecord, "epoch">, ttlMs: number): Promise<{ record: SessionRecord; previous: SessionRecord | null }>;
  getSession(sessionId: string): Promise<SessionRecord | null>;
  /** Extends the TTL of sessions still held. */
  refreshSessions(sessionIds: readonly string[], ttlMs: number): Promise<void>;
  /** Forgets a session, but only if `epoch` is still current (a newer edge keeps it). */
  removeSession(sessionId: string, epoch: number): Promise<boolean>;

  addDevice(userId: string, device: DeviceRecord, ttlMs: number): Promise<void>;
  removeDevice(userId: string, sessionId: string): Promise<void>;
  devices(userId: string): Promise<DeviceRecord[]>;

  setPresence(room: string, presence: PresenceRecord, ttlMs: number): Promise<void>;
  removePresence(room: string, peerId: string): Promise<void>;
  presence(room: string): Promise<PresenceRecord[]>;

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
