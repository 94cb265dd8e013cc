import { MAX_LOG_FRAMES, type AppendResult, type ClaimedSession, type LogAppend, type SessionStore, type StoredIdentity } from "./session-store.ts";

interface Entry {
  readonly identity: StoredIdentity;
  edge: string;
  epoch: number;
  frames: string[];
  first: number;
  last: number;
  src: number;
  rooms: readonly string[];
  calls: readonly string[];
  expiresAt: number;
}

/** The session store in one process (tests of several pods in one process). Same contract as Redis's. */
export class MemorySessionStore implements SessionStore {
  readonly #entries = new Map<string, Entry>();

  async create(identity: StoredIdentity, edge: string, ttlMs: number): Promise<void> {
    this.#entries.set(identity.sessionId, { identity, edge, epoch: 1, frames: [], first: 1, last: 0, src: 0, rooms: [], calls: [], expiresAt: Date.now() + ttlMs });
  }

  async append(appends: readonly LogAppend[], ttlMs: number): Promise<AppendResult[]> {
    return appends.map((a): AppendResult => {
      const e = this.#live(a.sessionId);
      if (!e) return "gone";
      if (e.epoch !== a.epoch) return "fenced";
      e.frames.push(...a.frames);
      e.last += a.frames.length;
      let keepFrom = Math.max(e.first, a.acked + 1);
      if (e.last - keepFrom + 1 > MAX_LOG_FRAMES) keepFrom = e.last - MAX_LOG_FRAMES + 1;
      keepFrom = Math.min(keepFrom, e.last + 1);
      if (keepFrom > e.first) {
        e.frames = e.frames.slice(keepFrom - e.first);
        e.first = keepFrom;
      }
      e.src = Math.max(e.src, a.src);
      if (a.rooms) e.rooms = [...a.rooms];
      if (a.calls) e.calls = [...a.calls];
      e.expiresAt = Date.now() + ttlMs;
      return "stored";
    });
  }

  async claim(sessionId: string, edge: string, ttlMs: number, resumeTokenHash: string): Promise<ClaimedSession | null | "bad-token"> {
    const e = this.#live(sessionId);
    if (!e) return null;
    if (e.identity.resumeTokenHash !== resumeTokenHash) return "bad-token";
    const previousEdge = e.edge;
    e.epoch += 1;
    e.edge = edge;
    e.expiresAt = Date.now() + ttlMs;
    return { identity: e.identity, epoch: e.epoch, previousEdge, frames: [...e.frames], firstSeq: e.first, lastSeq: e.last, src: e.src, rooms: [...e.rooms], calls: [...e.calls] };
  }

  async locate(sessionId: string): Promise<{ edge: string; epoch: number } | null> {
    const e = this.#live(sessionId);
    return e ? { edge: e.edge, epoch: e.epoch } : null;
  }

  async refresh(sessionIds: readonly string[], ttlMs: number): Promise<void> {
    for (const id of sessionIds) {
      const e = this.#live(id);
      if (e) e.expiresAt = Date.now() + ttlMs;
    }
  }

  async remove(sessionId: string, epoch: number): Promise<void> {
    if (this.#entries.get(sessionId)?.epoch === epoch) this.#entries.delete(sessionId);
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }

  #live(sessionId: string): Entry | undefined {
    const e = this.#entries.get(sessionId);
    if (e && e.expiresAt <= Date.now()) {
      this.#entries.delete(sessionId);
      return undefined;
    }
    return e;
  }
}
