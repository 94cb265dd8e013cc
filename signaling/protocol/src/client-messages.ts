import * as z from "zod";
import { AppData, CallEndReason, CallId, IceCandidate, Meta, PeerId, RequestId, RoomId, Sdp, Seq, UserId } from "./common.ts";

/**
 * Messages a client sends. Every request may carry `id`; the reply echoes it. Any message may
 * carry `ack`, the highest `seq` the client has processed (piggybacked acknowledgement).
 */
const base = { id: RequestId.optional(), ack: Seq.optional() };

/** Token strings: compact JWS, bounded. */
const Token = z.string().min(1).max(8192);

export const Hello = z.object({
  type: z.literal("hello"),
  ...base,
  v: z.number().int(),
  /** Omitted when the token came in the `Sec-WebSocket-Protocol` header. */
  token: Token.optional(),
  /** A stable device id chosen by the client (e.g. kept in localStorage). */
  device: z.string().max(128).optional(),
  /**
   * The client answers the pod's heartbeat `ping` with `pong` (the SDK does): the pod's heartbeat
   * is then a text frame the client sees (a browser cannot see WebSocket pings), and the client
   * needs no ping timer of its own. Without it the pod sends WebSocket pings.
   */
  textHeartbeat: z.boolean().optional(),
});

export const Resume = z.object({
  type: z.literal("resume"),
  ...base,
  v: z.number().int(),
  sessionId: z.string().min(1).max(64),
  resumeToken: z.string().min(1).max(256),
  lastSeq: Seq,
  /** A fresh token, when the old one is about to expire. */
  token: Token.optional(),
  /** As in `hello`. */
  textHeartbeat: z.boolean().optional(),
});

export const Ping = z.object({ type: z.literal("ping"), ...base, ts: z.number().optional() });
/** The answer to the pod's heartbeat `ping` (sessions that said `textHeartbeat`); no reply. */
export const HeartbeatPong = z.object({ type: z.literal("pong"), ...base });
export const Ack = z.object({ type: z.literal("ack"), ...base, seq: Seq });
export const Refresh = z.object({ type: z.literal("refresh"), ...base, token: Token });
export const Bye = z.object({ type: z.literal("bye"), ...base, reason: z.string().max(256).optional() });

export const Join = z.object({ type: z.literal("join"), ...base, room: RoomId, meta: Meta.optional() });
export const Leave = z.object({ type: z.literal("leave"), ...base, room: RoomId });
export const Update = z.object({ type: z.literal("update"), ...base, room: RoomId, meta: Meta });

/**
 * Relay target: a peer in a room (`room` + `to`) or the other party of a call (`callId`).
 * Exactly one form must be given.
 */
const relayTarget = { room: RoomId.optional(), to: PeerId.optional(), callId: CallId.optional() };
function oneTarget(m: { room?: string | undefined; to?: string | undefined; callId?: string | undefined }): boolean {
  return m.callId !== undefined ? m.room === undefined && m.to === undefined : m.room !== undefined && m.to !== undefined;
}
const targetError = { message: "give either room and to, or callId", path: ["to"] };

export const Offer = z.object({ type: z.literal("offer"), ...base, ...relayTarget, sdp: Sdp }).refine(oneTarget, targetError);
export const Answer = z.object({ type: z.literal("answer"), ...base, ...relayTarget, sdp: Sdp }).refine(oneTarget, targetError);
export const Candidate = z
  .object({ type: z.literal("candidate"), ...base, ...relayTarget, candidate: IceCandidate })
  .refine(oneTarget, targetError);
export const EndOfCandidates = z
  .object({ type: z.literal("end-of-candidates"), ...base, ...relayTarget })
  .refine(oneTarget, targetError);
/** Asks the other side to start a new offer (e.g. an impolite peer wants an ICE restart). */
export const Renegotiate = z
  .object({ type: z.literal("renegotiate"), ...base, ...relayTarget, iceRestart: z.boolean().optional() })
  .refine(oneTarget, targetError);

export const Broadcast = z.object({ type: z.literal("broadcast"), ...base, room: RoomId, data: AppData });
export const Message = z.object({ type: z.literal("message"), ...base, room: RoomId, to: PeerId, data: AppData });

export const CallInvite = z.object({ type: z.literal("call-invite"), ...base, to: UserId, meta: Meta.optional() });
export const CallRinging = z.object({ type: z.literal("call-ringing"), ...base, callId: CallId });
export const CallAccept = z.object({ type: z.literal("call-accept"), ...base, callId: CallId });
export const CallConfirm = z.object({ type: z.literal("call-confirm"), ...base, callId: CallId });
export const CallReject = z.object({
  type: z.literal("call-reject"),
  ...base,
  callId: CallId,
  reason: z.enum(["declined", "busy"]),
});
export const CallDismiss = z.object({ type: z.literal("call-dismiss"), ...base, callId: CallId });
export const CallCancel = z.object({ type: z.literal("call-cancel"), ...base, callId: CallId });
export const CallHangup = z.object({
  type: z.literal("call-hangup"),
  ...base,
  callId: CallId,
  reason: CallEndReason.optional(),
});

/** Every message a client may send. */
export const ClientMessage = z.discriminatedUnion("type", [
  Hello,
  Resume,
  Ping,
  HeartbeatPong,
  Ack,
  Refresh,
  Bye,
  Join,
  Leave,
  Update,
  Offer,
  Answer,
  Candidate,
  EndOfCandidates,
  Renegotiate,
  Broadcast,
  Message,
  CallInvite,
  CallRinging,
  CallAccept,
  CallConfirm,
  CallReject,
  CallDismiss,
  CallCancel,
  CallHangup,
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type ClientMessageType = ClientMessage["type"];
/** The client message of one `type`. */
export type ClientMessageOf<T extends ClientMessageType> = Extract<ClientMessage, { type: T }>;

/** The `type` of every client message, for "unknown type" detection and metrics labels. */
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = ClientMessage.options.map((o) => o.shape.type.value);

/** Relay message types (carry SDP or ICE between peers). */
export const RELAY_TYPES = ["offer", "answer", "candidate", "end-of-candidates", "renegotiate"] as const;
export type RelayType = (typeof RELAY_TYPES)[number];
export type RelayMessage = ClientMessageOf<RelayType>;
