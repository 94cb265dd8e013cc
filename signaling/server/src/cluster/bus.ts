/**
 * The durable message bus between pods: JetStream in cluster mode, an in-process stream in tests of
 * the contract. Messages are stored before `publish` resolves; consumers see them in stream order
 * and acknowledge each after handling it; stored messages can be re-read by subject and sequence
 * (session takeover).
 *
 * A handler that throws is retried, after a delay that doubles from the bus's `retryDelayMs` up to
 * {@link MAX_HANDLER_RETRY_DELAY_MS}, until it succeeds or has failed `maxHandlerAttempts` times
 * ({@link DEFAULT_MAX_HANDLER_ATTEMPTS}); then the bus gives the message up: it is logged as an
 * error and acknowledged as terminated, so it is never delivered again, and the messages behind it
 * go on. A failure that lasts (a bug, a message no pod can apply) must not stall its room or
 * session, nor a slot of the consumer, for ever; the default lets a handler ride out a dependency
 * outage of about the resume window (0.2 + 0.4 + … + 5 s ≈ 26 s), past which the sessions the
 * message was for had to resume elsewhere or start again anyway. Every failure is logged (the
 * first and the last at `warn` and `error`, those in between at `debug`).
 */

/** Attempts a consumer makes at a message whose handler keeps failing, the first included. */
export const DEFAULT_MAX_HANDLER_ATTEMPTS = 10;

/** Longest wait between two attempts at a failing message, in ms. */
export const MAX_HANDLER_RETRY_DELAY_MS = 5000;

/** The wait after a message's `failures`-th failed attempt: `initialMs` doubling, capped. */
export function handlerRetryDelayMs(failures: number, initialMs: number): number {
  return Math.min(MAX_HANDLER_RETRY_DELAY_MS, initialMs * 2 ** Math.max(0, failures - 1));
}

/** What the buses need of a logger (a pino logger fits). */
export interface BusLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Logs one failed attempt of a consumer's handler: the first at `warn`, the last (the message is
 * given up) at `error`, the rest at `debug`.
 */
export function logHandlerFailure(log: BusLog, err: unknown, where: { consumer: string; subject: string; streamSeq: number }, failures: number, givenUp: boolean): void {
  const obj = { err, ...where, attempt: failures };
  if (givenUp) log.error(obj, "bus: handler failed on every attempt; the message is given up (terminated, never delivered again)");
  else if (failures === 1) log.warn(obj, "bus: handler failed; the message is retried");
  else log.debug(obj, "bus: handler failed again; the message is retried");
}

/** A stored message. */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  /** Position in the stream (1, 2, …; strictly increasing, gaps allowed across subjects). */
  readonly streamSeq: number;
}

/** Handles one message; the message is acknowledged when the promise resolves. */
export type BusHandler = (msg: BusMessage) => Promise<void> | void;

/** How a consumer may run handlers concurrently. */
export interface ConsumeOptions {
  /**
   * The ordering key of a message: handlers of different keys may run at the same time, those of
   * one key run one at a time in stream order; `null` is a full barrier. Without it, one at a time.
   * A failing handler is then retried in place (its key waits) instead of redelivered, within the
   * same bound on attempts.
   */
  readonly keyOf?: (msg: BusMessage) => string | null;
  /** Most messages in flight at once (with `keyOf`). @default 256 */
  readonly maxInFlight?: number;
  /**
   * The consumer's short name in metrics (the `consumer` label of its backlog), stable across pods,
   * e.g. `commands`. A consumer without one is not reported.
   */
  readonly metricsName?: string;
}

/** A running durable consumer (or tail). */
export interface BusConsumer extends AsyncDisposable {
  /** Stops delivering; resolves once the handlers in flight (if any) finished. Idempotent. */
  close(): Promise<void>;
}

export interface ClusterBus {
  /** Stores a message; resolves with its stream sequence once it is durable. */
  publish(subject: string, data: Uint8Array, headers?: Readonly<Record<string, string>>): Promise<number>;
  /**
   * Starts (or resumes) the durable consumer `name` over `filter`: every stored message matching the
   * filter and not yet acknowledged by that consumer is handed to `handler`, one at a time, in
   * stream order. A handler that throws is retried after a delay, a bounded number of times (see
   * the module's comment), then the message is given up.
   */
  consume(name: string, filter: string, handler: BusHandler, options?: ConsumeOptions): Promise<BusConsumer>;
  /**
   * Follows the stored messages matching `filter` from `fromSeq` on, in order, then every new one,
   * until closed (nothing is acknowledged: a reader, not a consumer of record). The handler should
   * not throw (the caller logs its own failures); if it does, the bus logs it and the tail goes on.
   */
  tail(filter: string, fromSeq: number, handler: (msg: BusMessage) => void): Promise<BusConsumer>;
  /** The stored messages matching `filter` with `streamSeq >= fromSeq`, in order, up to now. */
  read(filter: string, fromSeq: number): Promise<BusMessage[]>;
  /**
   * The stream sequence up to which durable consumer `name` acknowledged everything (0 for none), or
   * null when there is no such consumer. With `read`, another pod finds what a dead pod never handled.
   */
  ackFloor(name: string): Promise<number | null>;
  /** The stream's last position (0 when empty): everything stored so far is at or below it. */
  position(): Promise<number>;
  /** Messages matching durable consumer `name` not yet acknowledged by it (0 for an unknown consumer). */
  pending(name: string): Promise<number>;
  /** Removes a durable consumer (a dead pod's, once its heir took its backlog). */
  deleteConsumer(name: string): Promise<void>;
  /** Stops every consumer and releases the connection. Idempotent. */
  close(): Promise<void>;
}

/** A {@link BusConsumer} around `close`, which runs once however often the handle is closed. */
export function busConsumer(close: () => Promise<void>): BusConsumer {
  let closing: Promise<void> | null = null;
  const once = (): Promise<void> => (closing ??= close());
  return { close: once, [Symbol.asyncDispose]: once };
}
