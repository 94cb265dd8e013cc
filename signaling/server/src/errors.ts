import { ERROR_CODES, type ErrorCode } from "@switchboard/protocol";

/**
 * The pod's one error class. Match on `code` (a stable {@link ErrorCode}), never on the message or
 * on `instanceof` across package copies. The message is safe to send to the client: it never
 * carries a token or internal detail; `cause` keeps the original error for the logs.
 */
export class SignalingError extends Error {
  override readonly name = "SignalingError";
  readonly code: ErrorCode;
  /** Dotted path of the offending field, for validation errors. */
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; field?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options?.field;
  }

  /** Whether the client may retry (from the error table). */
  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  /** The WebSocket close code this error closes with, or null when the socket stays open. */
  get closeCode(): number | null {
    return ERROR_CODES[this.code].close;
  }
}

/** True for a {@link SignalingError} (by shape, so it works across module copies). */
export function isSignalingError(err: unknown): err is SignalingError {
  return err instanceof Error && err.name === "SignalingError" && typeof (err as SignalingError).code === "string";
}

/**
 * Turns anything thrown into a {@link SignalingError}; unknown errors become `SIG_ERR_INTERNAL`
 * with the original kept as `cause` (logged, never sent).
 */
export function toSignalingError(err: unknown): SignalingError {
  if (isSignalingError(err)) return err;
  return new SignalingError("SIG_ERR_INTERNAL", "internal error", { cause: err });
}
