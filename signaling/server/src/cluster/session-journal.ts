import type { Logger } from "../logger.ts";
import type { FrameJournal, Session } from "../sessions/session.ts";
import type { AppendResult, LogAppend, SessionStore } from "./session-store.ts";

/** Per-session bookkeeping of the journal. */
interface Journaled {
  readonly session: Session;
  /** The session's epoch in the store (this pod's claim). */
  readonly epoch: number;
  /** Frames waiting for the next write. */
  frames: string[];
  /** Per queued frame: true when it came from an event on the bus (it stays in the stream). */
  fromBus: boolean[];
  src: number;
  /** Highest bus stream sequence logged or queued (redeliveries at or below it are duplicates). */
  lastSrc: number;
  /** Acknowledgement last written. */
  ackedWritten: number;
  membershipDirty: boolean;
  /** The store refused or failed a write: frames now go straight to the socket (degraded). */
  broken: boolean;
  /** Frames taken so far, and frames written (or given up) so far. */
  enqueued: number;
  written: number;
  /** Callers waiting until `written` reaches their target. */
  waiters: Array<{ readonly target: number; readonly resolve: () => void }>;
}

/** Longest an acknowledgement waits for frames to ride with before it is written alone. */
export const ACK_WRITE_DELAY_MS = 1000;

/** How often due acknowledgements are looked for, and how many at least are written per tick when more are due. */
const ACK_TICK_MS = 20;
const ACK_BATCH = 64;

/** Options of {@link SessionJournal}. */
export interface SessionJournalOptions {
  readonly store: SessionStore;
  /** TTL of a session's entries (extended on every write). */
  readonly ttlMs: number;
  readonly log: Logger;
  /**
   * Another pod claimed the session: `unlogged` are the frames this pod made (not from the bus) and
   * sequenced but could not
   * store (the new edge must get them another way). The session is no longer journaled.
   */
  readonly onFenced: (session: Session, unlogged: readonly string[]) => Promise<void> | void;
}

/**
 * The edge's writer of session logs: frames are batched per tick, stored in one round trip for every
 * session, and only then written to the sockets — so whatever a client has seen is in the log, and
 * any pod can replay it. While the store is unreachable frames go out unlogged and the session is
 * marked broken (a resume on another pod then fails with `gap` instead of pretending).
 */
export class SessionJournal implements FrameJournal {
  readonly #o: SessionJournalOptions;
  readonly #sessions = new Map<string, Journaled>();
  #dirty = new Set<Journaled>();
  #flushing: Promise<void> | null = null;
  #scheduled = false;
  /**
   * Sessions whose acknowledgement advanced with no frames to carry it, with the time
   * (`performance.now()`) it is due by; in insertion order, which is due order.
   */
  readonly #ackDirty = new Map<Journaled, number>();
  #ackTimer: ReturnType<typeof setInterval> | null = null;

  constructor(options: SessionJournalOptions) {
    this.#o = options;
  }

  /** Starts journaling `session` at `epoch` (its record exists in the store). */
  track(session: Session, epoch: number, lastSrc = 0): void {
    this.#sessions.set(session.id, { session, epoch, frames: [], fromBus: [], src: 0, lastSrc, ackedWritten: session.ackedSeq, membershipDirty: false, broken: false, enqueued: 0, written: 0, waiters: [] });
    session.journal = this;
  }

  /**
   * Stops journaling (the session ended or moved). Returns the frames not yet written that this pod
   * made itself (events from the bus are still in the stream, where the session's next edge reads them).
   */
  untrack(sessionId: string): string[] {
    const j = this.#sessions.get(sessionId);
    if (!j) return [];
    this.#sessions.delete(sessionId);
    this.#dirty.delete(j);
    this.#ackDirty.delete(j);
    j.session.journal = null;
    for (const w of j.waiters.splice(0)) w.resolve();
    const flags = j.fromBus.splice(0);
    return j.frames.splice(0).filter((_, i) => flags[i] !== true);
  }

  epochOf(sessionId: string): number | undefined {
    return this.#sessions.get(sessionId)?.epoch;
  }

  /** True when an event from bus position `src` was already taken for this session (a redelivery). */
  seen(sessionId: string, src: number): boolean {
    const j = this.#sessions.get(sessionId);
    return j !== undefined && src > 0 && src <= j.lastSrc;
  }

  enqueue(session: Session, frame: string, src: number): void {
    const j = this.#sessions.get(session.id);
    if (!j || (j.broken && j.written === j.enqueued)) {
      // Not journaled (or degraded with nothing queued ahead of it): straight to the socket.
      if (j) {
        j.enqueued += 1;
        j.written += 1;
      }
      session.durableSeq = Math.max(session.durableSeq, session.lastSeq);
      session.socket?.send(frame);
      return;
    }
    j.frames.push(frame);
    j.fromBus.push(src > 0);
    j.enqueued += 1;
    if (src > j.src) j.src = src;
    if (src > j.lastSrc) j.lastSrc = src;
    this.#mark(j);
  }

  /** The session's rooms or calls changed: they are written with its next frames. */
  membershipChanged(session: Session): void {
    const j = this.#sessions.get(session.id);
    if (!j || j.broken) return;
    j.membershipDirty = true;
    this.#mark(j);
  }

  /**
   * The client acknowledged more: the log may forget it. Written lazily — with the session's next
   * frames, or about {@link ACK_WRITE_DELAY_MS} later — so acknowledgements cost no write of their
   * own on a busy session. Each session's acknowledgement is due on its own clock, and a few due
   * ones ride with each write (every {@link ACK_TICK_MS}): flushing every session's acknowledgement
   * at once would put hundreds of writes in one batch, and the frames behind it would wait for all.
   */
  acked(session: Session): void {
    const j = this.#sessions.get(session.id);
    if (!j || j.broken || session.ackedSeq <= j.ackedWritten || this.#dirty.has(j) || this.#ackDirty.has(j)) return;
    this.#ackDirty.set(j, performance.now() + ACK_WRITE_DELAY_MS);
    if (this.#ackTimer) return;
    this.#ackTimer = setInterval(() => this.#ackTick(), ACK_TICK_MS);
    this.#ackTimer.unref();
  }

  /** Marks the acknowledgements that are due (at most {@link ACK_BATCH} a tick) for the next write. */
  #ackTick(): void {
    const now = performance.now();
    // A burst of due acknowledgements is spread over ticks, yet a backlog drains within a second.
    const cap = Math.max(ACK_BATCH, Math.ceil(this.#ackDirty.size / 50));
    let taken = 0;
    for (const [j, due] of this.#ackDirty) {
      if (due > now || taken >= cap) break;
      this.#ackDirty.delete(j);
      if (this.#sessions.get(j.session.id) !== j || j.session.ackedSeq <= j.ackedWritten) continue;
      this.#dirty.add(j);
      taken += 1;
    }
    if (taken > 0) this.#schedule();
    if (this.#ackDirty.size === 0 && this.#ackTimer) {
      clearInterval(this.#ackTimer);
      this.#ackTimer = null;
    }
  }

  /** Stops the acknowledgement timer (pod shutdown). */
  stop(): void {
    if (this.#ackTimer) clearInterval(this.#ackTimer);
    this.#ackTimer = null;
    this.#ackDirty.clear();
  }

  /** Resolves once every frame of the session queued before the call is stored and sent (or given up). */
  flushedSession(sessionId: string): Promise<void> {
    const j = this.#sessions.get(sessionId);
    if (!j || j.written >= j.enqueued) return Promise.resolve();
    const target = j.enqueued;
    return new Promise((resolve) => {
      j.waiters.push({ target, resolve });
      this.#schedule();
    });
  }

  /** Resolves once every frame queued before the call, of every session, is stored and sent. */
  async flushed(): Promise<void> {
    await Promise.all([...this.#sessions.keys()].map((id) => this.flushedSession(id)));
  }

  /** Writes what is queued now (for shutdown and tests). */
  async flush(): Promise<void> {
    await this.flushed();
  }

  #mark(j: Journaled): void {
    this.#dirty.add(j);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flushing = this.#write().finally(() => {
        this.#flushing = null;
        if (this.#dirty.size > 0) this.#schedule();
      });
    });
  }

  async #write(): Promise<void> {
    const batch = [...this.#dirty].slice(0, 2000);
    for (const j of batch) this.#dirty.delete(j);
    const appends: LogAppend[] = [];
    const taken: Array<{ j: Journaled; frames: string[]; fromBus: boolean[] }> = [];
    const unlogged: Array<{ j: Journaled; frames: string[] }> = [];
    for (const j of batch) {
      if (this.#sessions.get(j.session.id) !== j) continue;
      const frames = j.frames.splice(0, 500);
      const fromBus = j.fromBus.splice(0, frames.length);
      if (j.frames.length > 0) this.#dirty.add(j);
      if (j.broken) {
        unlogged.push({ j, frames });
        continue;
      }
      const s = j.session;
      appends.push({
        sessionId: s.id,
        epoch: j.epoch,
        frames,
        src: j.src,
        acked: s.ackedSeq,
        ...(j.membershipDirty ? { rooms: [...s.rooms], calls: [...s.calls] } : {}),
      });
      j.membershipDirty = false;
      j.ackedWritten = s.ackedSeq;
      this.#ackDirty.delete(j);
      taken.push({ j, frames, fromBus });
    }
    let results: AppendResult[] | null = null;
    try {
      results = await this.#o.store.append(appends, this.#o.ttlMs);
    } catch (err) {
      this.#o.log.warn({ err, sessions: appends.length }, "session log unavailable: frames go out unlogged");
    }
    for (const { j, frames } of unlogged) {
      j.written += frames.length;
      j.session.durableSeq += frames.length;
      for (const f of frames) j.session.socket?.send(f);
      this.#release(j);
    }
    for (let i = 0; i < taken.length; i++) {
      const { j, frames, fromBus } = taken[i] as { j: Journaled; frames: string[]; fromBus: boolean[] };
      const s = j.session;
      // Store unreachable, or its record lost (a restarted Redis): the session goes on unlogged.
      if (results === null || results[i] === "gone") j.broken = true;
      j.written += frames.length;
      if (results && results[i] === "fenced") {
        const later = this.untrack(s.id);
        try {
          await this.#o.onFenced(s, [...frames.filter((_, k) => fromBus[k] !== true), ...later]);
        } catch (err) {
          this.#o.log.warn({ err, session: s.id }, "handing over a fenced session's frames failed");
        }
        continue;
      }
      if (frames.length > 0) {
        // Frames are consecutive: the last one's seq is durableSeq + frames.length.
        s.durableSeq += frames.length;
        const socket = s.socket;
        if (socket) for (const f of frames) socket.send(f);
      }
      this.#release(j);
    }
  }

  /** Resolves the waiters whose frames are all written. */
  #release(j: Journaled): void {
    if (j.waiters.length === 0) return;
    const still = j.waiters.filter((w) => w.target > j.written);
    for (const w of j.waiters) if (w.target <= j.written) w.resolve();
    j.waiters = still;
  }
}
