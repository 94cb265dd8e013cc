import { ERROR_CODES, isErrorCode, type ErrorCode } from "@switchboard/protocol";

/** Codes the SDK itself produces (never sent by the server). */
export type ClientErrorCode = ErrorCode | "SIG_CLIENT_TIMEOUT" | "SIG_CLIENT_CLOSED" | "SIG_CLIENT_SESSION_LOST";

/** An error the SDK rejects with: a server error (by code) or a client-side one. */
export class SwitchboardError extends Error {
  override readonly name = "SwitchboardError";
  readonly code: ClientErrorCode;
  readonly retryable: boolean;
  readonly field: string | undefined;

  constructor(code: ClientErrorCode, message: string, options: { retryable?: boolean; field?: string | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? (isErrorCode(code) ? ERROR_CODES[code].retryable : true);
    this.field = options.field;
  }
}
