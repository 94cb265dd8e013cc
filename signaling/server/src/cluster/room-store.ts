import type { Meta } from "@switchboard/protocol";

/**
 * Where the owner of a room keeps the room's membership, so that the next owner can take the room
 * over — after a ring change, or when the owner died (docs/cluster.md, "Ring changes and handoff").
 * The owner rewrites a room's record after every membership change; an empty room has none.
 * Redis in cluster mode; memory in one process.
 */

/** A member as the store keeps it. */
export interface StoredMember {
  readonly sessionId: string;
  readonly peerId: string;
  readonly userId: string;
  readonly meta: Meta;
  /** The edge pod holding the member's session. */
  readonly edge: string;
  readonly connected: boolean;
}

export interface RoomStore {
  /** Replaces the record of `room` (members in join order); an empty list removes it. */
  save(room: string, members: readonly StoredMember[]): Promise<void>;
  /** The members of `room` in join order (empty when it has no record). */
  load(room: string): Promise<StoredMember[]>;
  /** Every room with a record. */
  rooms(): Promise<string[]>;
  /** Extends the life of the records of rooms still owned. */
  refresh(rooms: readonly string[], ttlMs: number): Promise<void>;
}

/** The room store in one process. */
export class MemoryRoomStore implements RoomStore {
  readonly #rooms = new Map<string, StoredMember[]>();

  async save(room: string, members: readonly StoredMember[]): Promise<void> {
    if (members.length === 0) this.#rooms.delete(room);
    else this.#rooms.set(room, members.map((m) => ({ ...m })));
  }

  async load(room: string): Promise<StoredMember[]> {
    return (this.#rooms.get(room) ?? []).map((m) => ({ ...m }));
  }

  async rooms(): Promise<string[]> {
    return [...this.#rooms.keys()];
  }

  async refresh(): Promise<void> {
    // Nothing expires in memory.
  }
}
