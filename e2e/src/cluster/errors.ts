/** Error codes of the local cluster harness, each with whether a retry can help. */
export const CLUSTER_ERR = {
  /** The API server answered with a non-2xx status. */
  CLUSTER_ERR_API: { retryable: true },
  /** A watch stream ended with an error or sent something that is not a watch event. */
  CLUSTER_ERR_WATCH: { retryable: true },
  /** A control plane binary or tool is missing: run `make cluster-build`. */
  CLUSTER_ERR_MISSING_BINARY: { retryable: false },
  /** Starting or stopping the control plane failed. */
  CLUSTER_ERR_LIFECYCLE: { retryable: false },
  /** A pod's spec asks for something the node agent cannot provide. */
  CLUSTER_ERR_POD_SPEC: { retryable: false },
  /** A wait ran out of time. */
  CLUSTER_ERR_TIMEOUT: { retryable: true },
} as const;

/** One of the {@link CLUSTER_ERR} codes. */
export type ClusterErrorCode = keyof typeof CLUSTER_ERR;

/** The harness's one error class; match on `code`, not on the class. */
export class ClusterError extends Error {
  readonly code: ClusterErrorCode;
  /** HTTP status of the API answer, for `CLUSTER_ERR_API`. */
  readonly status: number | undefined;
  /** The `reason` of the API's Status object (`NotFound`, `AlreadyExists`, `Conflict`, …). */
  readonly reason: string | undefined;

  constructor(
    code: ClusterErrorCode,
    message: string,
    options: { cause?: unknown; status?: number; reason?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClusterError';
    this.code = code;
    this.status = options.status;
    this.reason = options.reason;
  }

  /** Whether retrying the same operation can succeed. */
  get retryable(): boolean {
    return CLUSTER_ERR[this.code].retryable;
  }
}

/** Whether `err` is an API answer with the given HTTP status. */
export function isApiStatus(err: unknown, status: number): boolean {
  return err instanceof Error && (err as Partial<ClusterError>).code === 'CLUSTER_ERR_API' &&
    (err as ClusterError).status === status;
}
