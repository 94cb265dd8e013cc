/**
 * The PeerJS server wire protocol (peers/peerjs-server `src/enums.ts`, peers/peerjs
 * `lib/enums.ts`): a foreign protocol the pod speaks on its PeerJS face, so it lives here and not
 * in `@switchboard/protocol`. Every frame is `{type, src?, dst?, payload?}` JSON.
 */
import { z } from "zod";
import { MAX_TOKEN_LENGTH } from "../auth/index.ts";

/** Every message type of the PeerJS server protocol. */
export const PEERJS_MESSAGE_TYPES = ["OPEN", "LEAVE", "CANDIDATE", "OFFER", "ANSWER", "EXPIRE", "HEARTBEAT", "ID-TAKEN", "ERROR"] as const;
/** One PeerJS message type. */
export type PeerJsMessageType = (typeof PEERJS_MESSAGE_TYPES)[number];

/**
 * `payload.msg` of the `ERROR` messages. The first four are PeerJS server's own texts (peerjs-server
 * `src/enums.ts` `Errors`), so apps that match on them keep working; the rest are Switchboard's.
 */
export const PEERJS_ERRORS = {
  INVALID_KEY: "Invalid key provided",
  INVALID_TOKEN: "Invalid token provided",
  INVALID_WS_PARAMETERS: "No id, token, or key supplied to websocket server",
  CONNECTION_LIMIT_EXCEED: "Server has reached its concurrent user limit",
  TOKEN_EXPIRED: "Token expired",
  BANNED: "ID is banned",
  AUTH_UNAVAILABLE: "Authentication is temporarily unavailable",
} as const;
/** One `ERROR` text. */
export type PeerJsErrorText = (typeof PEERJS_ERRORS)[keyof typeof PEERJS_ERRORS];

/** Longest PeerJS id the face accepts (PeerJS server sets none). */
export const MAX_PEERJS_ID_LENGTH = 256;

/**
 * The query of the WebSocket upgrade, `{path}/peerjs?key=&id=&token=&version=`. A missing, empty
 * or over-long `key`, `id` or `token` fails the whole query (PeerJS server's
 * "No id, token, or key supplied" case). Other parameters (`version`) are ignored.
 */
export const PeerJsQuerySchema = z.object({
  key: z.string().min(1).max(256),
  id: z.string().min(1).max(MAX_PEERJS_ID_LENGTH),
  token: z.string().min(1).max(MAX_TOKEN_LENGTH),
});
/** A valid upgrade query. */
export type PeerJsQuery = z.infer<typeof PeerJsQuerySchema>;

const Dst = z.string().min(1).max(MAX_PEERJS_ID_LENGTH);

/**
 * A relayed message from a client. `src` is never read: the server writes the sender's id. The
 * payload (SDP, candidate, connection id, metadata) is opaque and forwarded untouched.
 */
const RelayedSchema = z.object({
  type: z.enum(["OFFER", "ANSWER", "CANDIDATE", "LEAVE", "EXPIRE"]),
  dst: Dst.optional(),
  payload: z.unknown().optional(),
});

/** Every message a PeerJS client may send. */
export const PeerJsClientMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("HEARTBEAT") }),
  RelayedSchema,
]);
/** A decoded client message. */
export type PeerJsClientMessage = z.infer<typeof PeerJsClientMessageSchema>;
/** A decoded relayed message (everything but `HEARTBEAT`). */
export type PeerJsRelayed = z.infer<typeof RelayedSchema>;

/** Every message the server sends; used by tests to check what goes over the wire. */
export const PeerJsServerMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("OPEN") }),
  z.object({ type: z.literal("ERROR"), payload: z.object({ msg: z.string() }) }),
  z.object({ type: z.literal("ID-TAKEN"), payload: z.object({ msg: z.string() }) }),
  z.object({ type: z.enum(["EXPIRE", "LEAVE"]), src: z.string(), dst: z.string() }),
  z.object({ type: z.enum(["OFFER", "ANSWER", "CANDIDATE"]), src: z.string(), dst: z.string(), payload: z.unknown().optional() }),
]);
/** A message sent by the server. */
export type PeerJsServerMessage = z.infer<typeof PeerJsServerMessageSchema>;

/** Result of {@link decodePeerJsMessage}. */
export type PeerJsDecoded =
  | { readonly ok: true; readonly message: PeerJsClientMessage }
  | { readonly ok: false; readonly code: "SIG_ERR_BAD_JSON" | "SIG_ERR_BAD_MESSAGE" | "SIG_ERR_UNKNOWN_TYPE" };

const KNOWN_CLIENT_TYPES: ReadonlySet<string> = new Set(["HEARTBEAT", "OFFER", "ANSWER", "CANDIDATE", "LEAVE", "EXPIRE"]);

/** Parses one frame of a PeerJS client, once; never throws. */
export function decodePeerJsMessage(text: string): PeerJsDecoded {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: "SIG_ERR_BAD_JSON" };
  }
  const parsed = PeerJsClientMessageSchema.safeParse(raw);
  if (parsed.success) return { ok: true, message: parsed.data };
  const type = typeof raw === "object" && raw !== null ? (raw as { type?: unknown }).type : undefined;
  return { ok: false, code: typeof type === "string" && !KNOWN_CLIENT_TYPES.has(type) ? "SIG_ERR_UNKNOWN_TYPE" : "SIG_ERR_BAD_MESSAGE" };
}

/** `{"type":"OPEN"}`: the id is registered. */
export const OPEN_FRAME = JSON.stringify({ type: "OPEN" });
/** `ID-TAKEN` with PeerJS server's text. */
export const ID_TAKEN_FRAME = JSON.stringify({ type: "ID-TAKEN", payload: { msg: "ID is taken" } });

/** An `ERROR` frame with one of the {@link PEERJS_ERRORS} texts. */
export function errorFrame(msg: PeerJsErrorText): string {
  return JSON.stringify({ type: "ERROR", payload: { msg } });
}

/** A relayed message as the receiver sees it: `src` is the authenticated sender. */
export function relayFrame(type: PeerJsRelayed["type"], src: string, dst: string, payload: unknown): string {
  return JSON.stringify({ type, src, dst, payload });
}

/** `EXPIRE` to `dst` (the sender of the lost messages) about `src` (the peer that never came). */
export function expireFrame(src: string, dst: string): string {
  return JSON.stringify({ type: "EXPIRE", src, dst });
}

/** `LEAVE` to `dst` about `src`, which is gone. */
export function leaveFrame(src: string, dst: string): string {
  return JSON.stringify({ type: "LEAVE", src, dst });
}
