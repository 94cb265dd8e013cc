import type { RoomMember } from "../rooms/room-service.ts";
import type { Session } from "../sessions/session.ts";
import type { ClaimedSession } from "./session-store.ts";
import type { EventEnvelope, RoomCommand } from "./wire.ts";

/**
 * What the hub needs of cluster mode: who owns a room, durable transport of room commands to their
 * owner and of events to the edge of a session, and the session store that lets any pod resume a
 * session. Absent in single-node mode.
 */
export interface ClusterPort {
  /** This pod's name (the edge name in commands and member records). */
  readonly podName: string;
  /** True when this pod owns `room` on the ring. */
  ownsRoom(room: string): boolean;
  /** True when this pod owns the key (`room:<id>` by the ring, `call:<id>` by its creator). */
  owns(key: string): boolean;
  /** Runs the application of a command of an owned room now, or after the room's handover to this pod. */
  schedule(key: string, fn: () => void | Promise<void>): void | Promise<void>;
  /** Records a room's membership after a change (resolves once stored; failures are logged). */
  saveRoom(room: string, members: readonly RoomMember[]): Promise<void>;
  /** A call id naming this pod as the call's owner. */
  callId(base: string): string;
  /** False when the pod that owned the call left the ring (the call is over). */
  callOwnerAlive(callId: string): boolean;
  /** The live devices of a user on every pod (sessions that can take calls). */
  devicesOf(userId: string): Promise<Array<{ sessionId: string; peerId: string; userId: string; edge: string }>>;
  /**
   * Records a new session in the store and journals its frames; registers it as a device of its
   * user (calls ring on every pod). Resolves once the session can be resumed on any pod.
   */
  sessionOpened(session: Session): Promise<void>;
  /** The session ended here: for good, or `moved` to another pod (which keeps its records). */
  sessionEnded(session: { id: string; userId: string }, moved?: boolean): void;
  /** Claims a session held by another pod (resume here); fences the old edge. */
  claim(sessionId: string, resumeToken: string): Promise<ClaimedSession | "unknown-session" | "bad-token">;
  /** Serves a claimed session here (see ClusterNode.adopt). */
  adopt(session: Session, claimed: ClaimedSession, keys: readonly string[]): Promise<void>;
  /**
   * Counts one event against a cluster-wide limit (`limit` per `windowMs`); false once reached.
   * Allows when Redis is unreachable (degraded: limits then hold per pod only).
   */
  allow(key: string, limit: number, windowMs: number): Promise<boolean>;
  /** Resolves once the owners switched the session here (or after `timeoutMs`). */
  takeoverSettled(sessionId: string, timeoutMs: number): Promise<void>;
  /** True while the session's events, as seen by an owner on this pod, go to its new edge as orphans. */
  released(sessionId: string): boolean;
  /** A local session another pod took over: hands its unlogged frames on, then forgets it. */
  releaseLocal(sessionId: string): Promise<void>;
  /** False when another pod took the session over (it is then only forgotten here). */
  stillHeld(session: Session): Promise<boolean>;
  membershipChanged(session: Session): void;
  acked(session: Session): void;
  /**
   * Sends a command to the owner of its room or call; resolves once JetStream stored it. Rejects with
   * `SIG_ERR_UNAVAILABLE` when the owner cannot be reached (no owner, NATS down, breaker open).
   */
  forward(command: RoomCommand): Promise<void>;
  /** Sends an event to a session on `edge`; resolves once stored. */
  deliverRemote(edge: string, envelope: EventEnvelope): Promise<void>;
}
