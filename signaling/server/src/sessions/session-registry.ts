import type { Session } from "./session.ts";

/**
 * Every session this pod holds, attached or waiting to resume, by session id, by peer id and by
 * user (the live devices that ring on a call).
 */
export class SessionRegistry {
  readonly #byId = new Map<string, Session>();
  readonly #byPeerId = new Map<string, Session>();
  readonly #byUser = new Map<string, Set<Session>>();

  get size(): number {
    return this.#byId.size;
  }

  add(session: Session): void {
    this.#byId.set(session.id, session);
    this.#byPeerId.set(session.peerId, session);
    let devices = this.#byUser.get(session.userId);
    if (!devices) {
      devices = new Set();
      this.#byUser.set(session.userId, devices);
    }
    devices.add(session);
  }

  remove(session: Session): void {
    this.#byId.delete(session.id);
    this.#byPeerId.delete(session.peerId);
    const devices = this.#byUser.get(session.userId);
    devices?.delete(session);
    if (devices?.size === 0) this.#byUser.delete(session.userId);
  }

  get(sessionId: string): Session | undefined {
    return this.#byId.get(sessionId);
  }

  byPeerId(peerId: string): Session | undefined {
    return this.#byPeerId.get(peerId);
  }

  /** The sessions (devices) of a user, attached or waiting to resume. */
  devicesOf(userId: string): ReadonlySet<Session> {
    return this.#byUser.get(userId) ?? EMPTY;
  }

  values(): IterableIterator<Session> {
    return this.#byId.values();
  }
}

const EMPTY: ReadonlySet<Session> = new Set();
