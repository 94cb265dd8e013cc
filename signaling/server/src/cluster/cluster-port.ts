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
  /**
   * Sends a room command to the room's owner; resolves once JetStream stored it. Rejects with
   * `SIG_ERR_UNAVAILABLE` when the owner cannot be reached (no owner, NATS down, breaker open).
   */
  forward(command: RoomCommand): Promise<void>;
  /** Sends an event to a session on `edge`; resolves once stored. */
  deliverRemote(edge: string, envelope: EventEnvelope): Promise<void>;
}
