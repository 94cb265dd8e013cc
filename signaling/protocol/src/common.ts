import * as z from "zod";

/** Room ids: 1–128 characters of letters, digits and `._:@-`. */
export const RoomId = z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/, "room id: 1-128 chars of A-Z a-z 0-9 . _ : @ -");
export type RoomId = z.infer<typeof RoomId>;

/** A peer id is public and names one session (one device) inside rooms and calls. */
export const PeerId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "peer id: 1-64 chars of A-Z a-z 0-9 _ -");
export type PeerId = z.infer<typeof PeerId>;

/** A user id (the token's `sub`). */
export const UserId = z.string().min(1).max(256);
export type UserId = z.infer<typeof UserId>;

/** Call ids are server-made, sortable and unique. */
export const CallId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "call id: 1-64 chars of A-Z a-z 0-9 _ -");
export type CallId = z.infer<typeof CallId>;

/** A client request id, echoed on the reply. */
export const RequestId = z.string().min(1).max(64);
export type RequestId = z.infer<typeof RequestId>;

/** Sequence number of a server event in a session's stream (starts at 1, no gaps). */
export const Seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Deepest nesting accepted in metadata and app data. */
export const MAX_JSON_DEPTH = 32;

/**
 * True for a JSON value nested at most {@link MAX_JSON_DEPTH} deep. Checked in place: the value is
 * passed on as parsed, never rebuilt (rebuilding costs a copy per relayed message, and assigning a
 * `"__proto__"` key would set a prototype instead of keeping the property).
 */
export function isJsonValue(v: unknown, depth = 0): v is JsonValue {
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v);
  if (depth >= MAX_JSON_DEPTH || typeof v !== "object") return false;
  if (Array.isArray(v)) return v.every((x) => isJsonValue(x, depth + 1));
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(v).every((x) => isJsonValue(x, depth + 1));
}

/** Free-form JSON metadata (display name, media state, …): an object, keys up to 128 characters. */
export const Meta = z.custom<{ [key: string]: JsonValue }>(
  (v) =>
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).every((k) => k.length <= 128) &&
    isJsonValue(v),
  { message: `expected an object of JSON values (keys up to 128 characters, nesting up to ${MAX_JSON_DEPTH})` },
);
export type Meta = z.infer<typeof Meta>;

/** Application payload of broadcasts and direct messages: any JSON value. */
export const AppData = z.custom<JsonValue>((v) => v !== undefined && isJsonValue(v), {
  message: `expected a JSON value (nesting up to ${MAX_JSON_DEPTH})`,
});
export type AppData = z.infer<typeof AppData>;

/** SDP text, carried opaque and never rewritten. */
export const Sdp = z.string().min(1);

/** An ICE candidate as `RTCIceCandidateInit` (the ufrag tells ICE restarts apart). */
export const IceCandidate = z.object({
  candidate: z.string().max(4096),
  sdpMid: z.string().max(256).nullable().optional(),
  sdpMLineIndex: z.number().int().nonnegative().max(1024).nullable().optional(),
  usernameFragment: z.string().max(256).nullable().optional(),
});
export type IceCandidate = z.infer<typeof IceCandidate>;

/** An `RTCIceServer`, with ephemeral TURN credentials when TURN is configured. */
export const IceServer = z.object({
  urls: z.union([z.string(), z.array(z.string())]),
  // Exact optionals (`username?: string`, never `undefined`), so that the type is an RTCIceServer
  // under exactOptionalPropertyTypes too: `new RTCPeerConnection({ iceServers })` needs no cast.
  username: z.string().exactOptional(),
  credential: z.string().exactOptional(),
});
export type IceServer = z.infer<typeof IceServer>;

/** A peer as others see it. */
export const PeerInfo = z.object({
  peerId: PeerId,
  userId: UserId,
  meta: Meta,
  /** False while the peer's socket is gone but its session may still resume. */
  connected: z.boolean(),
});
export type PeerInfo = z.infer<typeof PeerInfo>;

/** Why a peer left a room. */
export const PeerLeftReason = z.enum(["left", "closed", "timeout", "expired", "kicked", "room-closed"]);
export type PeerLeftReason = z.infer<typeof PeerLeftReason>;

/** Why a call, or one leg of it, ended. */
export const CallEndReason = z.enum([
  "hangup",
  "declined",
  "busy",
  "cancelled",
  "answered-elsewhere",
  "no-answer",
  "unavailable",
  "confirm-timeout",
  "replaced",
  "connection-lost",
  "dismissed",
  "failed",
]);
export type CallEndReason = z.infer<typeof CallEndReason>;

/** Call states (see docs/calls.md). */
export const CallState = z.enum(["inviting", "ringing", "answered", "active", "ended"]);
export type CallState = z.infer<typeof CallState>;
