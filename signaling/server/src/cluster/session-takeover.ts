import type { Logger } from "../logger.ts";
import type { BusConsumer, BusMessage, ClusterBus } from "./bus.ts";
import { decodeEventEnvelope, type EventEnvelope } from "./wire.ts";

/** What the takeovers need of the pod. */
export interface TakeoverHost {
  readonly bus: ClusterBus;
  readonly log: Logger;
  /** Sequences an event into a local session (`src`: its bus position, 0 for an orphan). */
  take(env: EventEnvelope, src: number): void;
  /** The owner of `key` no longer has the session there. */
  dropMembership(sessionId: string, key: string): void;
}

/** A session being taken over by this pod. */
interface Takeover {
  readonly sessionId: string;
  /** Ring keys (rooms, calls) whose owner has not yet sent its `moved` marker. */
  readonly pending: Set<string>;
  /** Events routed here for a pending key, delivered after its marker. */
  readonly held: Map<string, Array<{ env: EventEnvelope; src: number }>>;
  tail: BusConsumer | null;
  timer: ReturnType<typeof setTimeout> | null;
  /** Told when every marker arrived. */
  readonly done: Array<() => void>;
}

/**
 * The sessions this pod is taking over from another edge (docs/cluster.md, "Resume on any pod"):
 * it reads the old edge's subject of each (events the old edge never logged, then each owner's
 * `moved` marker) and holds back events owners already route here for a key until that key's marker,
 * so nothing is lost or reordered across the move.
 */
export class SessionTakeovers {
  readonly #h: TakeoverHost;
  readonly #all = new Map<string, Takeover>();

  constructor(host: TakeoverHost) {
    this.#h = host;
  }

  /**
   * Starts a takeover: reads `oldSubject` from position `from` until every key in `keys` got its
   * marker, or `timeoutMs` passed (an owner that never answers does not hold the session forever).
   */
  async start(sessionId: string, keys: readonly string[], oldSubject: string, from: number, timeoutMs: number): Promise<void> {
    const t: Takeover = { sessionId, pending: new Set(keys), held: new Map(), tail: null, timer: null, done: [] };
    this.#all.set(sessionId, t);
    t.tail = await this.#h.bus.tail(oldSubject, from, (m) => this.#onOrphan(t, m));
    t.timer = setTimeout(() => this.#end(t), timeoutMs);
    t.timer.unref();
  }

  /** True (and the event kept for later) when it belongs to a key whose marker has not arrived yet. */
  hold(env: EventEnvelope, src: number): boolean {
    const t = this.#all.get(env.sessionId);
    if (!t || env.key === undefined || !t.pending.has(env.key)) return false;
    const held = t.held.get(env.key) ?? [];
    held.push({ env, src });
    t.held.set(env.key, held);
    return true;
  }

  /** Resolves once the session's takeover is complete (at once when there is none), or after `timeoutMs`. */
  settled(sessionId: string, timeoutMs: number): Promise<void> {
    const t = this.#all.get(sessionId);
    if (!t) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      t.done.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Ends every takeover (pod shutdown): held events are delivered. */
  stop(): void {
    for (const t of [...this.#all.values()]) this.#end(t);
  }

  #onOrphan(t: Takeover, m: BusMessage): void {
    let env: EventEnvelope;
    try {
      env = decodeEventEnvelope(m.data);
    } catch {
      return;
    }
    if (env.moved === undefined) {
      // An owner's last event on the old subject is its marker: nothing of a switched key follows.
      if (env.key !== undefined && !t.pending.has(env.key)) return;
      this.#h.take(env, 0);
      return;
    }
    if (env.key === undefined || !t.pending.delete(env.key)) return;
    if (env.moved === "gone") this.#h.dropMembership(env.sessionId, env.key);
    for (const h of t.held.get(env.key) ?? []) this.#h.take(h.env, h.src);
    t.held.delete(env.key);
    if (t.pending.size === 0) this.#end(t);
  }

  #end(t: Takeover): void {
    if (this.#all.get(t.sessionId) !== t) return;
    this.#all.delete(t.sessionId);
    if (t.timer) clearTimeout(t.timer);
    for (const [key, held] of t.held) {
      this.#h.log.warn({ session: t.sessionId, key }, "takeover: an owner sent no moved marker in time");
      for (const h of held) this.#h.take(h.env, h.src);
    }
    t.held.clear();
    void t.tail?.close();
    for (const d of t.done.splice(0)) d();
  }
}
