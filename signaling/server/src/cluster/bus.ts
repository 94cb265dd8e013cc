/**
 * The durable message bus between pods: JetStream in cluster mode, an in-process stream in tests of
 * the contract. Messages are stored before `publish` resolves; consumers see them in stream order
 * and acknowledge each after handling it; stored messages can be re-read by subject and sequence
 * (session takeover).
 */

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
   * A failing handler is then retried in place (its key waits) instead of redelivered.
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

/** A running durable consumer. */
export interface BusConsumer {
  /** Stops delivering; resolves once the handler in flight (if any) finished. */
  stop(): Promise<void>;
}

export interface ClusterBus {
  /** Stores a message; resolves with its stream sequence once it is durable. */
  publish(subject: string, data: Uint8Array, headers?: Readonly<Record<string, string>>): Promise<number>;
  /**
   * Starts (or resumes) the durable consumer `name` over `filter`: every stored message matching the
   * filter and not yet acknowledged by that consumer is handed to `handler`, one at a time, in
   * stream order. A handler that throws is retried (the message is redelivered) after a delay.
   */
  consume(name: string, filter: string, handler: BusHandler, options?: ConsumeOptions): Promise<BusConsumer>;
  /**
   * Follows the stored messages matching `filter` from `fromSeq` on, in order, then every new one,
   * until stopped (nothing is acknowledged: a reader, not a consumer of record). A handler failure
   * is logged by the caller; the tail goes on.
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
