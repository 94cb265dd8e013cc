import type * as z from "zod";
import { CLIENT_MESSAGE_TYPES, ClientMessage } from "./client-messages.ts";
import type { ErrorCode } from "./errors.ts";
import { ServerMessage } from "./server-messages.ts";
import { PROTOCOL_VERSION } from "./version.ts";

/** Why a frame was refused, with the stable code and the first bad field. */
export interface DecodeFailure {
  readonly ok: false;
  readonly code: Extract<ErrorCode, "SIG_ERR_BAD_JSON" | "SIG_ERR_BAD_MESSAGE" | "SIG_ERR_UNKNOWN_TYPE" | "SIG_ERR_UNSUPPORTED_VERSION">;
  readonly message: string;
  /** Dotted path of the first invalid field. */
  readonly field?: string;
  /** The request id, when the frame had a usable one, so the error can echo it. */
  readonly id?: string;
}
export type DecodeResult<T> = { readonly ok: true; readonly message: T } | DecodeFailure;

const clientTypes = new Set<string>(CLIENT_MESSAGE_TYPES);

/**
 * Parses and validates one text frame from a client. Never throws: every failure is a
 * {@link DecodeFailure} with a stable code. This is the only place untrusted input is parsed.
 */
export function decodeClientMessage(text: string): DecodeResult<ClientMessage> {
  return decodeWith(text, ClientMessage, clientTypes);
}

const serverTypes = new Set<string>(ServerMessage.options.map((o) => o.shape.type.value));

/** Parses and validates one text frame from the server (used by the SDK). Never throws. */
export function decodeServerMessage(text: string): DecodeResult<ServerMessage> {
  return decodeWith(text, ServerMessage, serverTypes);
}

function decodeWith<T>(text: string, schema: z.ZodType<T>, knownTypes: ReadonlySet<string>): DecodeResult<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: "SIG_ERR_BAD_JSON", message: "frame is not valid JSON" };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, code: "SIG_ERR_BAD_MESSAGE", message: "message must be a JSON object", field: "" };
  }
  const record = raw as Record<string, unknown>;
  const id = typeof record["id"] === "string" && record["id"].length > 0 && record["id"].length <= 64 ? record["id"] : undefined;
  const withId = id === undefined ? {} : { id };
  const type = record["type"];
  if (typeof type !== "string") {
    return { ok: false, code: "SIG_ERR_BAD_MESSAGE", message: "type: expected a string", field: "type", ...withId };
  }
  if (!knownTypes.has(type)) {
    return { ok: false, code: "SIG_ERR_UNKNOWN_TYPE", message: `unknown message type "${type.slice(0, 64)}"`, ...withId };
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, message: parsed.data };
  // A handshake of another protocol version may have another shape: the version is the answer
  // then, not the first field that version does differently (a v1 client at a v2 pod must hear
  // SIG_ERR_UNSUPPORTED_VERSION, not SIG_ERR_BAD_MESSAGE; e2e/src/sdk/compat.test.ts).
  const v = record["v"];
  if ((type === "hello" || type === "resume") && Number.isSafeInteger(v) && v !== PROTOCOL_VERSION && knownTypes === clientTypes) {
    return { ok: false, code: "SIG_ERR_UNSUPPORTED_VERSION", message: `protocol version ${String(v).slice(0, 32)} is not supported (use ${PROTOCOL_VERSION})`, field: "v", ...withId };
  }
  const issue = parsed.error.issues[0];
  const field = issue ? issue.path.map(String).join(".") : "";
  const detail = issue ? issue.message : "invalid message";
  return { ok: false, code: "SIG_ERR_BAD_MESSAGE", message: `${type}: ${field || "message"}: ${detail}`, field, ...withId };
}
