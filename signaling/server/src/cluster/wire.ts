import { z } from "zod";
import { CallEndReason, Meta, PeerLeftReason } from "@switchboard/protocol";
import { callKey, roomKey, type OwnerKey } from "./owner-key.ts";

/**
 * Messages between pods (docs/cluster.md). Commands go from an edge to a room's owner; envelopes
 * carry one event from an owner to the edge of the session it is for. Parsed with zod on receipt,
 * like client input: another pod may run another version.
 */

/** The session a command comes from, and the pod that holds it. */
const Origin = z.object({ sessionId: z.string(), peerId: z.string(), userId: z.string(), edge: z.string(), id: z.string().optional() });

/** A callee device, as the caller's edge found it in the directory. */
const Device = z.object({ sessionId: z.string(), peerId: z.string(), userId: z.string(), edge: z.string() });

/** Commands to the owner of a room (routed by `room`) or of a call (routed by `callId`). */
export const RoomCommand = z.union([
  z.object({ k: z.literal("join"), room: z.string(), from: Origin, meta: Meta }),
  z.object({ k: z.literal("leave"), room: z.string(), from: Origin, reason: PeerLeftReason }),
  z.object({ k: z.literal("update"), room: z.string(), from: Origin, meta: Meta }),
  /** A relay or direct message: `json` is the event for the target, without seq. */
  z.object({ k: z.literal("send"), room: z.string(), from: Origin, to: z.string(), type: z.string(), json: z.string() }),
  z.object({ k: z.literal("broadcast"), room: z.string(), from: Origin, type: z.string(), json: z.string() }),
  z.object({ k: z.literal("connected"), room: z.string(), from: Origin, connected: z.boolean() }),
  z.object({ k: z.literal("call-invite"), callId: z.string(), from: Origin, to: z.string(), meta: Meta, devices: z.array(Device).optional() }),
  z.object({
    k: z.literal("call-op"),
    callId: z.string(),
    from: Origin,
    op: z.enum(["call-ringing", "call-accept", "call-confirm", "call-reject", "call-dismiss", "call-cancel", "call-hangup"]),
    reason: CallEndReason.optional(),
  }),
  z.object({ k: z.literal("call-relay"), callId: z.string(), from: Origin, type: z.string(), fields: z.record(z.string(), z.unknown()) }),
  z.object({ k: z.literal("call-gone"), callId: z.string(), from: Origin, reason: z.enum(["hangup", "connection-lost"]) }),
  /**
   * A session moved to the edge in `from` (a resume on another pod): the owner sends a `moved`
   * marker to the old edge's subject, then routes the session's events to the new edge.
   */
  z.object({ k: z.literal("reattach"), room: z.string(), from: Origin, prev: z.string() }),
  z.object({ k: z.literal("reattach"), callId: z.string(), from: Origin, prev: z.string() }),
]);
export type RoomCommand = z.infer<typeof RoomCommand>;

/**
 * Commands between pods about the ring (docs/cluster.md, "Ring changes and handoff"): `handoff`
 * says pod `from` released the rooms it no longer owns under `version` (sent by its heir when it
 * died); `barrier` marks a point in a pod's own command subject.
 */
export const ControlCommand = z.discriminatedUnion("k", [
  z.object({ k: z.literal("handoff"), from: z.string(), version: z.number().int() }),
  z.object({ k: z.literal("barrier"), id: z.string() }),
]);
export type ControlCommand = z.infer<typeof ControlCommand>;

/** The ring key a command is routed by: its room, or its call. */
export function commandKey(cmd: RoomCommand): OwnerKey {
  return "room" in cmd ? roomKey(cmd.room) : callKey(cmd.callId);
}

/** An event for one session, from an owner to the session's edge. */
export const EventEnvelope = z.object({
  sessionId: z.string(),
  type: z.string(),
  /** The event without seq (the edge sequences it). */
  json: z.string(),
  /** Bookkeeping for the edge: the session failed to join this room. */
  joinFailed: z.string().optional(),
  /** The ring key (room or call) of the owner that sent the event. */
  key: z.string().optional(),
  /**
   * The owner of `key` routes this session's events to another edge from now on (the last event of
   * that owner on this subject). `gone`: the owner no longer has the session in that room or call.
   */
  moved: z.enum(["yes", "gone"]).optional(),
});
export type EventEnvelope = z.infer<typeof EventEnvelope>;

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeWire(value: RoomCommand | ControlCommand | EventEnvelope): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

/** Parses a command; throws with the first bad field (the consumer logs and skips it). */
export function decodeRoomCommand(data: Uint8Array): RoomCommand {
  return RoomCommand.parse(JSON.parse(dec.decode(data)));
}

/** Parses what arrives on a pod's command subject: a room or call command, or a control command. */
export function decodeCommand(data: Uint8Array): RoomCommand | ControlCommand {
  const value: unknown = JSON.parse(dec.decode(data));
  const k = (value as { k?: unknown } | null)?.k;
  return k === "handoff" || k === "barrier" ? ControlCommand.parse(value) : RoomCommand.parse(value);
}

export function decodeEventEnvelope(data: Uint8Array): EventEnvelope {
  return EventEnvelope.parse(JSON.parse(dec.decode(data)));
}
