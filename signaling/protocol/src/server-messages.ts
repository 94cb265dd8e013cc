import * as z from "zod";
import { ALL_ERROR_CODES } from "./errors.ts";
import {
  AppData,
  CallEndReason,
  CallId,
  IceCandidate,
  IceServer,
  Meta,
  PeerId,
  PeerInfo,
  PeerLeftReason,
  RequestId,
  RoomId,
  Sdp,
  Seq,
  UserId,
} from "./common.ts";

/**
 * Messages the server sends. Everything in a session's stream carries `seq` (strictly increasing,
 * no gaps) and is replayed on resume; only the handshake replies (`welcome`, `resumed`,
 * `resume-failed`), `pong` and errors outside a session carry none.
 */
const event = { seq: Seq };
const reply = { seq: Seq, id: RequestId.optional() };

export const Limits = z.object({
  maxMessageBytes: z.number().int(),
  ratePerSecond: z.number(),
  rateBurst: z.number().int(),
  maxPeersPerRoom: z.number().int(),
  maxRoomsPerSession: z.number().int(),
  maxOutboundBytes: z.number().int(),
});

export const Welcome = z.object({
  type: z.literal("welcome"),
  id: RequestId.optional(),
  v: z.number().int(),
  sessionId: z.string(),
  resumeToken: z.string(),
  peerId: PeerId,
  userId: UserId,
  /** Token expiry (epoch ms), or null for tokens without `exp`. Refresh before it. */
  expiresAt: z.number().nullable(),
  heartbeatIntervalMs: z.number().int(),
  resumeWindowMs: z.number().int(),
  limits: Limits,
  iceServers: z.array(IceServer),
  /** Seconds the ICE server credentials stay valid, when TURN is configured. */
  iceServersTtlSec: z.number().int().optional(),
  /** The pod's JSEP capabilities. */
  trickleIce: z.literal(true),
  pod: z.string(),
});

export const Resumed = z.object({
  type: z.literal("resumed"),
  id: RequestId.optional(),
  sessionId: z.string(),
  peerId: PeerId,
  /** How many events follow as replay before the stream goes live. */
  replayCount: z.number().int().nonnegative(),
  /** The highest seq assigned so far (replay ends at it). */
  lastSeq: Seq,
  expiresAt: z.number().nullable(),
  pod: z.string(),
});

export const ResumeFailed = z.object({
  type: z.literal("resume-failed"),
  id: RequestId.optional(),
  code: z.literal("SIG_ERR_RESUME_FAILED"),
  reason: z.enum(["unknown-session", "bad-token", "expired", "gap", "kicked", "auth"]),
  message: z.string(),
});

/**
 * The pod's heartbeat, sent to a session that said `textHeartbeat` when the client was silent for
 * a heartbeat period; answer with `pong` at once. Not sequenced.
 */
export const HeartbeatPing = z.object({ type: z.literal("ping") });
export const Pong = z.object({ type: z.literal("pong"), id: RequestId.optional(), ts: z.number().optional(), serverTime: z.number() });

export const ErrorMessage = z.object({
  type: z.literal("error"),
  id: RequestId.optional(),
  seq: Seq.optional(),
  code: z.enum(ALL_ERROR_CODES as [string, ...string[]]),
  message: z.string(),
  retryable: z.boolean(),
  /** Dotted path of the first invalid field, for schema errors. */
  field: z.string().optional(),
});

/** Generic success reply of a request that returns nothing else. */
export const Ok = z.object({ type: z.literal("ok"), ...reply });

export const Refreshed = z.object({
  type: z.literal("refreshed"),
  ...reply,
  expiresAt: z.number().nullable(),
  iceServers: z.array(IceServer),
  iceServersTtlSec: z.number().int().optional(),
});

export const Joined = z.object({
  type: z.literal("joined"),
  ...reply,
  room: RoomId,
  self: PeerInfo,
  /** The room snapshot: every other peer, in join order. */
  peers: z.array(PeerInfo),
});

export const PeerJoined = z.object({ type: z.literal("peer-joined"), ...event, room: RoomId, peer: PeerInfo });
export const PeerLeft = z.object({ type: z.literal("peer-left"), ...event, room: RoomId, peerId: PeerId, reason: PeerLeftReason });
export const PeerUpdated = z.object({ type: z.literal("peer-updated"), ...event, room: RoomId, peer: PeerInfo });
export const RoomClosed = z.object({ type: z.literal("room-closed"), ...event, room: RoomId, reason: z.string() });

/** Where a relayed message came from: a peer in a room, or the other party of a call. */
const relaySource = { room: RoomId.optional(), callId: CallId.optional(), from: PeerId };

export const OfferEvent = z.object({ type: z.literal("offer"), ...event, ...relaySource, sdp: Sdp });
export const AnswerEvent = z.object({ type: z.literal("answer"), ...event, ...relaySource, sdp: Sdp });
export const CandidateEvent = z.object({ type: z.literal("candidate"), ...event, ...relaySource, candidate: IceCandidate });
export const EndOfCandidatesEvent = z.object({ type: z.literal("end-of-candidates"), ...event, ...relaySource });
export const RenegotiateEvent = z.object({
  type: z.literal("renegotiate"),
  ...event,
  ...relaySource,
  iceRestart: z.boolean().optional(),
});

export const BroadcastEvent = z.object({ type: z.literal("broadcast"), ...event, room: RoomId, from: PeerId, data: AppData });
export const MessageEvent = z.object({ type: z.literal("message"), ...event, room: RoomId, from: PeerId, data: AppData });

/** Reply to `call-invite`: the call exists and its devices are being rung. */
export const CallTrying = z.object({ type: z.literal("call-trying"), ...reply, callId: CallId, to: UserId, devices: z.number().int() });
/** To every device of the callee. */
export const CallIncoming = z.object({
  type: z.literal("call-incoming"),
  ...event,
  callId: CallId,
  from: z.object({ userId: UserId, peerId: PeerId }),
  meta: Meta,
});
/** To the caller, once, when the first device rings. */
export const CallRingingEvent = z.object({ type: z.literal("call-ringing"), ...event, callId: CallId, peerId: PeerId });
/**
 * To the caller when a device accepted (`peerId`) and to that device; `polite` is the role of the
 * receiver in perfect negotiation (the callee is polite).
 */
export const CallAccepted = z.object({
  type: z.literal("call-accepted"),
  ...event,
  callId: CallId,
  peerId: PeerId,
  polite: z.boolean(),
});
/** To the accepted device when the caller confirmed: the call is active. */
export const CallConfirmed = z.object({ type: z.literal("call-confirmed"), ...event, callId: CallId, polite: z.boolean() });
/** The call (or this device's leg of it) ended. */
export const CallEnded = z.object({
  type: z.literal("call-ended"),
  ...event,
  callId: CallId,
  reason: CallEndReason,
  /** True when only this device's leg ended and the call goes on elsewhere. */
  legOnly: z.boolean(),
});

/** The pod asks the client to reconnect (drain): wait `afterMs`, then resume on any pod. */
export const Reconnect = z.object({ type: z.literal("reconnect"), ...event, afterMs: z.number().int().nonnegative(), reason: z.string() });
/** The token expires soon: send `refresh` before `expiresAt`. */
export const TokenExpiring = z.object({ type: z.literal("token-expiring"), ...event, expiresAt: z.number() });

/** Every message the server may send. */
export const ServerMessage = z.discriminatedUnion("type", [
  Welcome,
  Resumed,
  ResumeFailed,
  HeartbeatPing,
  Pong,
  ErrorMessage,
  Ok,
  Refreshed,
  Joined,
  PeerJoined,
  PeerLeft,
  PeerUpdated,
  RoomClosed,
  OfferEvent,
  AnswerEvent,
  CandidateEvent,
  EndOfCandidatesEvent,
  RenegotiateEvent,
  BroadcastEvent,
  MessageEvent,
  CallTrying,
  CallIncoming,
  CallRingingEvent,
  CallAccepted,
  CallConfirmed,
  CallEnded,
  Reconnect,
  TokenExpiring,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type ServerMessageType = ServerMessage["type"];
/** The server message of one `type`. */
export type ServerMessageOf<T extends ServerMessageType> = Extract<ServerMessage, { type: T }>;

/** A server message before the session assigns its `seq`. */
export type Unsequenced<M> = M extends { seq: number } ? Omit<M, "seq"> : M;
/** Any event that travels in a session's ordered stream. */
export type StreamEvent = Extract<ServerMessage, { seq: number }>;
/** A stream event (or an error reply, which travels in the stream too) before the session assigns its `seq`. */
export type OutboundEvent = Unsequenced<StreamEvent> | Omit<z.infer<typeof ErrorMessage>, "seq">;
