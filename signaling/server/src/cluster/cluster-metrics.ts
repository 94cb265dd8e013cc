/**
 * What the cluster code reports about its dependencies (JetStream, Redis, the breakers), and the
 * timing wrappers of the Redis stores. The pod's metrics (observability/metrics.ts) implement these
 * interfaces over prom-client; the cluster code never imports prom-client.
 */
import type { BreakerState } from "./breaker.ts";
import type { Directory } from "./directory.ts";
import type { RoomStore } from "./room-store.ts";
import type { SessionStore } from "./session-store.ts";

/** Where the NATS bus reports its publishes and the backlog of its consumers. */
export interface BusMetrics {
  /** A publish was acknowledged by JetStream `seconds` after it was made. Called once per publish (hot path). */
  publishAcked(seconds: number): void;
  /** A publish failed: refused, not acknowledged in time, or not sent because the connection was down. */
  publishFailed(): void;
  /**
   * Where the backlog of each durable consumer is read at scrape time: `read` returns the last
   * known count (messages not yet delivered plus delivered but unacknowledged) by the consumer's
   * short name; it never waits on NATS. A consumer whose count is not known is absent.
   */
  consumersPending(read: () => ReadonlyMap<string, number>): void;
}

/** Timings of the calls to one dependency client (a Redis store). */
export interface CallMetrics {
  /** A call succeeded after `seconds`. */
  observed(seconds: number): void;
  /** A call failed (rejected, or timed out by the client). */
  failed(): void;
}

/** The Redis stores whose calls are timed (the `store` label). */
export type StoreName = "directory" | "sessions" | "rooms";

/** The dependencies that have a breaker (the `dependency` label). */
export type Dependency = "nats" | "redis";

/** Everything the cluster connection reports (built by `PodMetrics.cluster()`). */
export interface ClusterMetrics extends BusMetrics {
  /** The timings of one Redis store. */
  store(name: StoreName): CallMetrics;
  /** The breaker of `dependency` is now in `state` (at start, then on every change). */
  breakerState(dependency: Dependency, state: BreakerState): void;
}

/** Runs `call`, timing it into `m`; resolves or rejects as `call` does. */
export async function timed<T>(m: CallMetrics, call: () => Promise<T>): Promise<T> {
  const startedMs = performance.now();
  try {
    const result = await call();
    m.observed((performance.now() - startedMs) / 1000);
    return result;
  } catch (err) {
    m.failed();
    throw err;
  }
}

/** `directory` with every Redis call timed into `m` (`close` is not a call). */
export function timedDirectory(directory: Directory, m: CallMetrics): Directory {
  return {
    addDevice: (userId, device, ttlMs) => timed(m, () => directory.addDevice(userId, device, ttlMs)),
    removeDevice: (userId, sessionId) => timed(m, () => directory.removeDevice(userId, sessionId)),
    devices: (userId) => timed(m, () => directory.devices(userId)),
    reportRingVersion: (pod, version, ttlMs) => timed(m, () => directory.reportRingVersion(pod, version, ttlMs)),
    ringVersions: () => timed(m, () => directory.ringVersions()),
    allow: (key, limit, windowMs) => timed(m, () => directory.allow(key, limit, windowMs)),
    close: () => directory.close(),
  };
}

/** `sessions` with every Redis call timed into `m` (`close` is not a call). */
export function timedSessionStore(sessions: SessionStore, m: CallMetrics): SessionStore {
  return {
    create: (identity, edge, ttlMs) => timed(m, () => sessions.create(identity, edge, ttlMs)),
    append: (appends, ttlMs) => timed(m, () => sessions.append(appends, ttlMs)),
    claim: (sessionId, edge, ttlMs, resumeTokenHash) => timed(m, () => sessions.claim(sessionId, edge, ttlMs, resumeTokenHash)),
    locate: (sessionId) => timed(m, () => sessions.locate(sessionId)),
    refresh: (sessionIds, ttlMs) => timed(m, () => sessions.refresh(sessionIds, ttlMs)),
    remove: (sessionId, epoch) => timed(m, () => sessions.remove(sessionId, epoch)),
    close: () => sessions.close(),
  };
}

/** `rooms` with every Redis call timed into `m`. */
export function timedRoomStore(rooms: RoomStore, m: CallMetrics): RoomStore {
  return {
    save: (room, members) => timed(m, () => rooms.save(room, members)),
    load: (room) => timed(m, () => rooms.load(room)),
    rooms: () => timed(m, () => rooms.rooms()),
    refresh: (ids, ttlMs) => timed(m, () => rooms.refresh(ids, ttlMs)),
  };
}
