/**
 * The operator's error codes and its one error class. Match on `code` (and, for API answers, on
 * `status`), never on the message or on `instanceof` across module copies.
 *
 * @module
 */

/**
 * Error codes of the operator, each with whether retrying the same operation can help and a one
 * line summary. `OP_ERR_KUBE_STATUS` is retryable or not by its HTTP status (see
 * {@link OperatorError.retryable}).
 */
export const OP_ERR = {
  OP_ERR_CONFIG: {
    retryable: false,
    summary: "An option or the kubeconfig is unusable (no current cluster, an unsupported scheme or proxy, timings that contradict each other).",
  },
  OP_ERR_KUBE_REQUEST: {
    retryable: true,
    summary: "An API request failed without an answer: connection refused or reset, TLS failure, the stream cut short.",
  },
  OP_ERR_KUBE_TIMEOUT: {
    retryable: true,
    summary: "An API request got no complete answer within its timeout.",
  },
  OP_ERR_KUBE_STATUS: {
    retryable: false,
    summary: "The API server answered with a non-2xx status; the error carries `status`, the Status `reason` and the server's message.",
  },
  OP_ERR_KUBE_RESPONSE: {
    retryable: true,
    summary: "The API server's answer is not the JSON it should be.",
  },
  OP_ERR_WATCH: {
    retryable: true,
    summary: "A watch stream sent a line that is not a watch event, an ERROR event, or broke.",
  },
  OP_ERR_WATCH_STALLED: {
    retryable: true,
    summary: "A watch was silent for longer than its server-side timeout plus slack, and was aborted.",
  },
  OP_ERR_UNKNOWN_KIND: {
    retryable: false,
    summary: "An apiVersion/kind the operator does not manage (no REST path known for it).",
  },
  OP_ERR_INVALID_OBJECT: {
    retryable: false,
    summary: "An object lacks what the operation needs (apiVersion, kind, metadata.name, a namespace for a namespaced kind).",
  },
  OP_ERR_ABORTED: {
    retryable: false,
    summary: "The operation was aborted by its caller's signal or by stop()/close().",
  },
} as const;

/** One of the {@link OP_ERR} codes. */
export type OperatorErrorCode = keyof typeof OP_ERR;

/** Every error code, in table order (for docs and tests). */
export const ALL_OPERATOR_ERROR_CODES = Object.keys(OP_ERR) as OperatorErrorCode[];

/** HTTP statuses after which the same API request can succeed: conflicts, throttling, server trouble. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([409, 429, 500, 502, 503, 504]);

/** Details of an API answer carried by an {@link OperatorError}. */
export interface OperatorErrorOptions {
  readonly cause?: unknown;
  /** HTTP status of the API's answer. */
  readonly status?: number;
  /** `reason` of the API's Status object: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `Expired`, … */
  readonly reason?: string;
  /** `message` of the API's Status object, as the server wrote it. */
  readonly apiMessage?: string;
}

/**
 * The operator's one error class: a stable `code` from {@link OP_ERR}, the original error kept as
 * `cause`, and for API answers the HTTP `status` with the Status `reason` and `apiMessage`.
 */
export class OperatorError extends Error {
  override readonly name = "OperatorError";
  readonly code: OperatorErrorCode;
  /** HTTP status of the API's answer (`OP_ERR_KUBE_STATUS`, and `OP_ERR_WATCH` for an ERROR event's code). */
  readonly status: number | undefined;
  /** The Status object's `reason`. */
  readonly reason: string | undefined;
  /** The Status object's `message`, verbatim. */
  readonly apiMessage: string | undefined;

  constructor(code: OperatorErrorCode, message: string, options: OperatorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.reason = options.reason;
    this.apiMessage = options.apiMessage;
  }

  /**
   * Whether retrying the same operation can succeed: from the table, except that an API answer
   * is retryable for 409, 429 and 5xx (not for 400, 401, 403, 404, 410, 422).
   */
  get retryable(): boolean {
    if (this.code === "OP_ERR_KUBE_STATUS") return this.status !== undefined && RETRYABLE_STATUSES.has(this.status);
    return OP_ERR[this.code].retryable;
  }
}

/** True for an {@link OperatorError} (by shape, so it holds across module copies). */
export function isOperatorError(err: unknown): err is OperatorError {
  return err instanceof Error && err.name === "OperatorError" && typeof (err as OperatorError).code === "string";
}

/** True when `err` is an operator error with one of the given codes. */
export function hasCode(err: unknown, ...codes: readonly OperatorErrorCode[]): err is OperatorError {
  return isOperatorError(err) && codes.includes(err.code);
}

/**
 * True when `err` is the API's answer with this HTTP status (`OP_ERR_KUBE_STATUS`), e.g. 404 Not
 * Found, 409 Conflict/AlreadyExists, 410 Gone, 422 Invalid.
 */
export function isKubeStatus(err: unknown, status: number): err is OperatorError {
  return isOperatorError(err) && err.code === "OP_ERR_KUBE_STATUS" && err.status === status;
}
