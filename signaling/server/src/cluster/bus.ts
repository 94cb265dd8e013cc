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
  consume(name: string, filter: string, handler: BusHandler): Promise<BusConsumer>;
  /** The stored messages matching `filter` with `streamSeq >= fromSeq`, in order, up to now. */
  read(filter: string, fromSeq: number): Promise<BusMessage[]>;
  /** Stops every consumer and releases the connection. Idempotent. */
  close(): Promise<void>;
}
