import { ERROR_CODES, isErrorCode, type ErrorCode } from "@switchboard/protocol";

/**
 * Codes an SDK error carries: the server's {@link ErrorCode}s, and the SDK's own (never sent by
 * the server):
 *
 * | code | when | retryable |
 * |---|---|---|
 * | `SIG_CLIENT_TIMEOUT` | no reply to a request within `requestTimeoutMs` | yes |
 * | `SIG_CLIENT_CLOSED` | the client was closed, or the pod closed it for good | no |
 * | `SIG_CLIENT_SESSION_LOST` | the session could not be resumed before a request's reply came | yes |
 * | `SIG_CLIENT_NO_WEBSOCKET` | no global `WebSocket` and no `options.WebSocket` | no |
 */
export type ClientErrorCode = ErrorCode | "SIG_CLIENT_TIMEOUT" | "SIG_CLIENT_CLOSED" | "SIG_CLIENT_SESSION_LOST" | "SIG_CLIENT_NO_WEBSOCKET";

/**
 * An error the SDK rejects with: a server error (by code) or a client-side one. Match on `code`,
 * not on the message or the class.
 */
export class SwitchboardError extends Error {
  override readonly name = "SwitchboardError";
  /** The stable code. */
  readonly code: ClientErrorCode;
  /** Whether repeating the action (after a delay or a reconnect) can succeed. */
  readonly retryable: boolean;
  /** The first invalid field, for `SIG_ERR_BAD_MESSAGE`. */
  readonly field: string | undefined;

  /** `retryable` defaults to the error table's value for server codes, else true. */
  constructor(code: ClientErrorCode, message: string, options: { retryable?: boolean; field?: string | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? (isErrorCode(code) ? ERROR_CODES[code].retryable : true);
    this.field = options.field;
  }
}
