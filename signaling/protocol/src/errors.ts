/**
 * Every error code the pod sends, with the WebSocket close code it closes with (or `null` when the
 * socket stays open), whether the client may retry the same action, and the HTTP status used where
 * the error happens before the upgrade. Clients match on `code`; the text is for people.
 *
 * The table is the single source of truth: docs/errors.md is generated from it by
 * `npm run docs:errors` and a test checks that the two agree.
 */
export const ERROR_CODES = {
  SIG_ERR_BAD_JSON: { close: null, retryable: false, http: null, summary: "The frame is not valid JSON." },
  SIG_ERR_BAD_MESSAGE: { close: null, retryable: false, http: null, summary: "The message violates the schema; `field` names the first bad field." },
  SIG_ERR_UNKNOWN_TYPE: { close: null, retryable: false, http: null, summary: "The message `type` is not part of protocol v1." },
  SIG_ERR_BINARY_FRAME: { close: null, retryable: false, http: null, summary: "Binary frames are not part of protocol v1." },
  SIG_ERR_ABUSE: { close: 4009, retryable: false, http: null, summary: "Too many invalid messages on one socket; it is closed." },
  SIG_ERR_MESSAGE_TOO_BIG: { close: 1009, retryable: false, http: null, summary: "A frame exceeded the maximum message size." },
  SIG_ERR_UNSUPPORTED_VERSION: { close: 4002, retryable: false, http: null, summary: "The protocol version in `hello`/`resume` is not supported." },
  SIG_ERR_HANDSHAKE_REQUIRED: { close: null, retryable: false, http: null, summary: "The first message must be `hello` or `resume`." },
  SIG_ERR_HANDSHAKE_TIMEOUT: { close: 4008, retryable: true, http: null, summary: "No valid `hello` or `resume` arrived in time." },
  SIG_ERR_ALREADY_HANDSHAKEN: { close: null, retryable: false, http: null, summary: "`hello` or `resume` sent twice on one socket." },
  SIG_ERR_AUTH_FAILED: { close: 4001, retryable: false, http: 401, summary: "The token is missing, malformed, badly signed or not valid for this service." },
  SIG_ERR_TOKEN_EXPIRED: { close: 4003, retryable: true, http: 401, summary: "The token expired; refresh it (the `refresh` message) before it does." },
  SIG_ERR_FORBIDDEN: { close: null, retryable: false, http: 403, summary: "The token does not grant this action or room." },
  SIG_ERR_ORIGIN_FORBIDDEN: { close: null, retryable: false, http: 403, summary: "The upgrade's Origin is not on the allowlist." },
  SIG_ERR_TOO_MANY_CONNECTIONS: { close: null, retryable: true, http: 429, summary: "The client address holds too many sockets or upgrades too fast." },
  SIG_ERR_RATE_LIMITED: { close: null, retryable: true, http: null, summary: "The socket sends faster than its rate limit; the message was dropped." },
  SIG_ERR_SLOW_CONSUMER: { close: 4010, retryable: true, http: null, summary: "The socket did not read fast enough; it is closed and may resume." },
  SIG_ERR_HEARTBEAT_TIMEOUT: { close: 4011, retryable: true, http: null, summary: "No pong for too long; the socket is closed and may resume." },
  SIG_ERR_KICKED: { close: 4012, retryable: false, http: null, summary: "An administrator removed the session." },
  SIG_ERR_BANNED: { close: 4013, retryable: false, http: 403, summary: "The user is banned from this room or service." },
  SIG_ERR_SESSION_REPLACED: { close: 4004, retryable: false, http: null, summary: "The session was resumed on another socket." },
  SIG_ERR_RESUME_FAILED: { close: null, retryable: false, http: null, summary: "The session cannot be resumed exactly; send `hello` and rejoin." },
  SIG_ERR_DRAINING: { close: 1012, retryable: true, http: 503, summary: "The pod is shutting down; reconnect and resume elsewhere." },
  SIG_ERR_NOT_IN_ROOM: { close: null, retryable: false, http: null, summary: "The session is not a member of that room." },
  SIG_ERR_ALREADY_IN_ROOM: { close: null, retryable: false, http: null, summary: "The session is already a member of that room." },
  SIG_ERR_ROOM_FULL: { close: null, retryable: true, http: null, summary: "The room holds its maximum number of peers." },
  SIG_ERR_TOO_MANY_ROOMS: { close: null, retryable: false, http: null, summary: "The session is in its maximum number of rooms." },
  SIG_ERR_PEER_NOT_FOUND: { close: null, retryable: false, http: null, summary: "The target peer is not in the room." },
  SIG_ERR_ROOM_NOT_FOUND: { close: null, retryable: false, http: 404, summary: "No such room." },
  SIG_ERR_CALL_NOT_FOUND: { close: null, retryable: false, http: null, summary: "No such call, or the call ended." },
  SIG_ERR_CALL_STATE: { close: null, retryable: false, http: null, summary: "The call is not in a state that allows this action." },
  SIG_ERR_NOT_CALL_PARTY: { close: null, retryable: false, http: null, summary: "The session is not a party of that call." },
  SIG_ERR_UNAVAILABLE: { close: null, retryable: true, http: 503, summary: "A cluster dependency (NATS or Redis) is unreachable; retry shortly." },
  SIG_ERR_INTERNAL: { close: 1011, retryable: true, http: 500, summary: "An unexpected server error; details are logged, never sent." },
} as const satisfies Record<string, ErrorCodeSpec>;

/** One row of {@link ERROR_CODES}. */
export interface ErrorCodeSpec {
  /** WebSocket close code sent with the error, or null when the socket stays open. */
  readonly close: number | null;
  /** Whether repeating the action (after a delay or a reconnect) can succeed. */
  readonly retryable: boolean;
  /** HTTP status when the error happens before or outside the WebSocket. */
  readonly http: number | null;
  readonly summary: string;
}

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** All error codes, in table order. */
export const ALL_ERROR_CODES = Object.keys(ERROR_CODES) as ErrorCode[];

/** True when `code` is a known error code. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
