import type { RoomMember } from "../rooms/room-service.ts";
import type { Session } from "../sessions/session.ts";
import type { RoomCommand } from "./wire.ts";

/**
 * What the cluster node needs of the rooms and calls this pod owns: commands arriving from other
 * pods, from a handoff or from the reaper of orphaned members are applied through it, and the
 * handoff moves room state in and out of it. Implemented by the pod (Hub over its RoomOwner).
 */
export interface OwnerHost {
  /**
   * Applies a command as the owner and carries its effects out; resolves once they are stored. A
   * refusal goes back to the sender (on its edge) as an error event.
   */
  applyCommand(cmd: RoomCommand): void | Promise<void>;
  /** Rooms held in memory here, and their members. */
  roomIds(): Iterable<string>;
  members(room: string): readonly RoomMember[] | undefined;
  hasRoom(room: string): boolean;
  /** A room taken over from the store (a handoff to this pod). */
  restoreRoom(room: string, members: readonly RoomMember[]): void;
  /** A room handed off to another pod. */
  forgetRoom(room: string): void;
}

/**
 * What the cluster node needs of this pod's sessions (the edge): events owners send to them,
 * joins an owner refused, and sessions another pod took over. Implemented by the pod (Hub).
 */
export interface EdgeHost {
  session(sessionId: string): Session | undefined;
  sessions(): Iterable<Session>;
  /** Pushes an owner's event into a local session's stream (`src`: its position on the bus). */
  deliverLocal(sessionId: string, eventJson: string, type: string, src: number): void;
  /** The owner refused a join: the room the session reserved is given back. */
  joinFailed(sessionId: string, room: string): void;
  /** The owner of `key` no longer has the session in that room or call (told during a takeover). */
  dropMembership(sessionId: string, key: string): void;
  /** Another pod took the session over: it is forgotten here without leaving anything (the socket closes as replaced). */
  forgetMoved(session: Session): void;
}

/** The two sides of the pod a cluster node serves. */
export interface ClusterHosts {
  readonly owner: OwnerHost;
  readonly edge: EdgeHost;
}
