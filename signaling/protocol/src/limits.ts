/**
 * Defaults of every limit the pod enforces. The pod's configuration overrides them; the values in
 * force are sent to the client in `welcome.limits`.
 */

/** Largest accepted frame, in bytes. Larger frames close the socket with 1009. @default 65536 */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
/** Server heartbeat period. @default 25000 */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 25_000;
/** A socket is dead after this many heartbeats without a pong. @default 2 */
export const DEFAULT_HEARTBEAT_MISSED_LIMIT = 2;
/** How long a session outlives its socket. @default 30000 */
export const DEFAULT_RESUME_WINDOW_MS = 30_000;
/** Bytes buffered for one socket before it is closed as a slow consumer. @default 1 MiB */
export const DEFAULT_MAX_OUTBOUND_BYTES = 1024 * 1024;
/** Unacknowledged events kept per session for replay, in bytes. @default 1 MiB */
export const DEFAULT_MAX_REPLAY_BYTES = 1024 * 1024;
/**
 * The SDK's acknowledgement policy. An acknowledgement only lets the pod free replayed events, so
 * it rides on the client's next message when there is one; otherwise a separate `ack` is sent at
 * most every {@link DEFAULT_ACK_INTERVAL_MS}, or at once when {@link DEFAULT_ACK_AFTER_EVENTS}
 * events or {@link DEFAULT_ACK_AFTER_BYTES} of them are unacknowledged (busy rooms keep the pod's
 * replay buffer small). Each separate `ack` is a frame the pod reads, parses and applies: at one per
 * event it was half of a relaying pod's inbound frames. @default 5000
 */
export const DEFAULT_ACK_INTERVAL_MS = 5_000;
/** @see DEFAULT_ACK_INTERVAL_MS @default 64 */
export const DEFAULT_ACK_AFTER_EVENTS = 64;
/** Characters of unacknowledged event frames. @see DEFAULT_ACK_INTERVAL_MS @default 65536 */
export const DEFAULT_ACK_AFTER_BYTES = 64 * 1024;
/** Token-bucket refill rate per socket, messages per second. @default 50 */
export const DEFAULT_RATE_PER_SECOND = 50;
/** Token-bucket burst per socket, messages. @default 200 */
export const DEFAULT_RATE_BURST = 200;
/** Peers in one room. @default 100 */
export const DEFAULT_MAX_PEERS_PER_ROOM = 100;
/** Rooms one session may be in at once. @default 16 */
export const DEFAULT_MAX_ROOMS_PER_SESSION = 16;
/** Time allowed between the upgrade and a valid `hello`/`resume`. @default 10000 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Invalid messages tolerated per socket before it is closed for abuse. @default 10 */
export const DEFAULT_MAX_INVALID_MESSAGES = 10;
/** Ring timeout of a call. @default 60000 */
export const DEFAULT_CALL_RING_TIMEOUT_MS = 60_000;
/** Time the caller has to confirm an accepted call. @default 32000 */
export const DEFAULT_CALL_CONFIRM_TIMEOUT_MS = 32_000;

/** Limits announced to a client in `welcome`. */
export interface SessionLimits {
  readonly maxMessageBytes: number;
  readonly ratePerSecond: number;
  readonly rateBurst: number;
  readonly maxPeersPerRoom: number;
  readonly maxRoomsPerSession: number;
  readonly maxOutboundBytes: number;
}
