/**
 * The logging surface the Kubernetes I/O modules need: the subset of pino's `Logger` they call,
 * so that the operator's pino logger (or a test's recorder) fits without an adapter.
 *
 * @module
 */

/** A structured log call: fields first, then the message (pino's argument order). */
export type LogFn = (fields: Record<string, unknown>, message: string) => void;

/** What the Kubernetes I/O modules log through; pino's `Logger` satisfies it. */
export interface KubeLogger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

const noop: LogFn = () => undefined;

/** A logger that drops everything (the default where none is given). */
export const SILENT_LOGGER: KubeLogger = { debug: noop, info: noop, warn: noop, error: noop };

/** The fields worth logging of an error (message, code, HTTP status, reason), without its stack. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { err: String(err) };
  const e = err as Error & { code?: unknown; status?: unknown; reason?: unknown };
  return {
    err: e.message,
    ...(e.code === undefined ? {} : { code: e.code }),
    ...(e.status === undefined ? {} : { status: e.status }),
    ...(e.reason === undefined ? {} : { reason: e.reason }),
  };
}
