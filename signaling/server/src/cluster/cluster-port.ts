import type { EventEnvelope, RoomCommand } from "./wire.ts";

/**
 * What the hub needs of cluster mode: who owns a room, and durable transport of room commands to
 * their owner and of events to the edge of a session. Absent in single-node mode.
 */
export interface ClusterPort {
  /** This pod's name (the edge name in commands and member records). */
  readonly podName: string;
  /** True when this pod owns `room` on the ring. */
  ownsRoom(room: string): boolean;
  /** True when this pod owns the ring key (`room:<id>` or `call:<id>`). */
  owns(key: string): boolean;
  /** The live devices of a user on every pod (sessions that can take calls). */
  devicesOf(userId: string): Promise<Array<{ sessionId: string; peerId: string; userId: string; edge: string }>>;
  /** Registers a session that can take calls (a device of its user), until `sessionEnded`. */
  sessionOpened(session: { id: string; peerId: string; userId: string }): void;
  sessionEnded(session: { id: string; userId: string }): void;
  /**
   * Sends a command to the owner of its room or call; resolves once JetStream stored it. Rejects with
   * `SIG_ERR_UNAVAILABLE` when the owner cannot be reached (no owner, NATS down, breaker open).
   */
  forward(command: RoomCommand): Promise<void>;
  /** Sends an event to a session on `edge`; resolves once stored. */
  deliverRemote(edge: string, envelope: EventEnvelope): Promise<void>;
}
