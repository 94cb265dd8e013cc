import type { Session } from "./session.ts";

/**
 * Every session this pod holds, attached or waiting to resume, by session id, by peer id and by
 * user (the live devices that ring on a call).
 */
export class SessionRegistry {
  readonly #byId = new Map<string, Session>();
  readonly #byPeerId = new Map<string, Session>();
  /** A user's one session directly (the common case), a Set only once a second device appears. */
  readonly #byUser = new Map<string, Session | Set<Session>>();

  get size(): number {
    return this.#byId.size;
  }

  add(session: Session): void {
    this.#byId.set(session.id, session);
    this.#byPeerId.set(session.peerId, session);
    const devices = this.#byUser.get(session.userId);
    if (!devices) this.#byUser.set(session.userId, session);
    else if (devices instanceof Set) devices.add(session);
    else if (devices !== session) this.#byUser.set(session.userId, new Set([devices, session]));
  }

  remove(session: Session): void {
    this.#byId.delete(session.id);
    this.#byPeerId.delete(session.peerId);
    const devices = this.#byUser.get(session.userId);
    if (devices === session) this.#byUser.delete(session.userId);
    else if (devices instanceof Set) {
      devices.delete(session);
      if (devices.size === 0) this.#byUser.delete(session.userId);
    }
  }

  get(sessionId: string): Session | undefined {
    return this.#byId.get(sessionId);
  }

  byPeerId(peerId: string): Session | undefined {
    return this.#byPeerId.get(peerId);
  }

  /** The sessions (devices) of a user, attached or waiting to resume. */
  devicesOf(userId: string): ReadonlySet<Session> {
    const devices = this.#byUser.get(userId);
    if (!devices) return EMPTY;
    return devices instanceof Set ? devices : new Set([devices]);
  }

  values(): IterableIterator<Session> {
    return this.#byId.values();
  }
}

const EMPTY: ReadonlySet<Session> = new Set();
