import type { RoomMember, DeliveryTarget } from "../rooms/room-service.ts";

/**
 * What the owner of rooms and calls made happen, as values: the events to deliver, the local
 * sessions whose call membership changed, the rooms to persist and the session moves to announce,
 * in the order they happened, and the reply its sender waits for. The owner's host carries them
 * out (local delivery, JetStream publishes, Redis writes); the owner itself does no I/O.
 */
export type OwnerEffect =
  /** An event (serialized, without seq) for a session, on this pod or at its edge. */
  | { readonly k: "deliver"; readonly to: DeliveryTarget; readonly json: string; readonly type: string }
  /** A session became, or stopped being, a party to a call (its edge keeps `session.calls`). */
  | { readonly k: "call-membership"; readonly sessionId: string; readonly callId: string; readonly member: boolean }
  /** A room's membership to store before the reply (the next owner takes the room from there). */
  | { readonly k: "persist"; readonly room: string; readonly members: readonly RoomMember[] }
  /** A member's session moved to another edge: the old edge gets a `moved` marker (after its unlogged frames). */
  | { readonly k: "moved"; readonly sessionId: string; readonly previousEdge: string; readonly key: string; readonly moved: "yes" | "gone" };

/** Everything one command (or one timer, or one admin action) did. */
export interface OwnerEffects {
  /** The owner key the effects belong to (`room:<id>`, `call:<id>`): tags the events sent to other pods. Undefined for timers. */
  readonly key: string | undefined;
  readonly effects: OwnerEffect[];
  /** The `ok` a sender waits for: sent once the rest is durable (to a sender on this pod). */
  reply: { readonly to: DeliveryTarget; readonly json: string } | undefined;
}

/** An empty set of effects for `key`. */
export function noEffects(key: string | undefined): OwnerEffects {
  return { key, effects: [], reply: undefined };
}
