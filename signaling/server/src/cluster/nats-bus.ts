import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { createInbox, headers as natsHeaders, nanos, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  DEFAULT_MAX_HANDLER_ATTEMPTS,
  busConsumer,
  handlerRetryDelayMs,
  logHandlerFailure,
  type BusConsumer,
  type BusHandler,
  type BusLog,
  type BusMessage,
  type ClusterBus,
  type ConsumeOptions,
} from "./bus.ts";
import type { BusMetrics } from "./cluster-metrics.ts";
import { KeyedDispatch } from "./keyed-dispatch.ts";

/** Options of {@link NatsBus.connect}. */
export interface NatsBusOptions {
  /** NATS servers, e.g. `nats://127.0.0.1:4222`. */
  readonly servers: string | string[];
  /** Stream name (one per cluster). */
  readonly stream: string;
  /** Subjects the stream stores (e.g. `sb.<cluster>.>`). */
  readonly subjects: string[];
  /** How long messages are kept; at least the resume window. */
  readonly maxAgeMs: number;
  /** `file` survives a NATS restart; `memory` is faster. @default "file" */
  readonly storage?: "file" | "memory";
  /** Delay after a handler's first failure (it doubles with each further one, up to 5 s). @default 200 */
  readonly retryDelayMs?: number;
  /** Attempts at a message whose handler keeps failing before it is given up. @default 10 */
  readonly maxHandlerAttempts?: number;
  /** Where handler failures and the bus's own troubles are logged. @default console (warnings and errors) */
  readonly log?: BusLog;
  /** Connection name shown by the NATS server. */
  readonly name?: string;
  /** Where publishes and the backlog of the named consumers are reported; nothing is measured without it. */
  readonly metrics?: BusMetrics;
  /** How often the backlog of each named consumer is read (for `metrics`), in ms. @default 5000 */
  readonly pendingRefreshMs?: number;
}

/**
 * The bus on NATS JetStream: one stream (created or updated idempotently at connect, limits
 * retention so takeover can re-read), durable pull consumers with explicit acks, publishes that
 * resolve on the stream's ack.
 */
export class NatsBus implements ClusterBus {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #o: NatsBusOptions;
  readonly #log: BusLog;
  /** The consumers and tails running, closed with the bus. */
  readonly #consumers = new Set<BusConsumer>();
  #closed: Promise<void> | null = null;
  /** False while the connection is down: publishes then fail at once rather than wait for their timeout. */
  #connected = true;
  readonly #statusLoop: Promise<void>;
  /** Publish acks awaited, by reply token (insertion order is deadline order). */
  readonly #acks = new Map<string, PendingAck>();
  /** Prefix of the reply subjects of publishes (one subscription takes every publish ack). */
  readonly #ackInbox: string;
  readonly #ackSub: Subscription;
  #ackToken = 0;
  readonly #ackTimer: ReturnType<typeof setInterval>;
  /** Publishes and consumer acks waiting for the end of this event-loop turn (sent together). */
  #out: Array<() => void> = [];
  #outScheduled = false;
  readonly #metrics: BusMetrics | undefined;
  /** Durable consumers reported in metrics: durable name by metrics name. */
  readonly #reported = new Map<string, string>();
  /** Their last known backlog by metrics name, read by the metrics at scrape time. */
  readonly #pending = new Map<string, number>();
  readonly #pendingTimer: ReturnType<typeof setInterval> | null;
  #pendingRun: Promise<void> | null = null;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, options: NatsBusOptions) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#o = options;
    this.#log = options.log ?? CONSOLE_LOG;
    this.#statusLoop = this.#watchStatus();
    this.#ackInbox = `${createInbox()}.`;
    this.#ackSub = nc.subscribe(`${this.#ackInbox}*`, { callback: (err, m) => this.#onAck(err, m) });
    this.#ackTimer = setInterval(() => this.#expireAcks(), 100);
    this.#ackTimer.unref();
    this.#metrics = options.metrics;
    this.#pendingTimer = null;
    if (this.#metrics) {
      this.#metrics.consumersPending(() => this.#pending);
      // A scrape must never wait on NATS: the backlogs are read in the background (one read at a
      // time) and the metrics take the last values.
      this.#pendingTimer = setInterval(() => {
        this.#pendingRun ??= this.#refreshPending().finally(() => {
          this.#pendingRun = null;
        });
      }, options.pendingRefreshMs ?? DEFAULT_PENDING_REFRESH_MS);
      this.#pendingTimer.unref();
    }
  }

  /** Reads the backlog of every reported consumer. */
  async #refreshPending(): Promise<void> {
    await Promise.all(
      [...this.#reported].map(async ([metricsName, durable]) => {
        try {
          const info = await this.#jsm.consumers.info(this.#o.stream, durable);
          if (this.#reported.get(metricsName) === durable) this.#pending.set(metricsName, backlog(info));
        } catch (err) {
          // Not known while JetStream does not answer (the breaker reports the outage) or once the
          // consumer is gone: the series goes away rather than show a stale count.
          this.#pending.delete(metricsName);
          if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) this.#log.debug({ err, consumer: durable }, "bus: reading a consumer's backlog failed");
        }
      }),
    );
  }

  /** JetStream acknowledged the publish. */
  #acked(pending: PendingAck, seq: number): void {
    this.#metrics?.publishAcked((performance.now() - pending.startedMs) / 1000);
    pending.resolve(seq);
  }

  /** The publish failed (refused, timed out, connection lost, bus closed). */
  #failed(pending: PendingAck, err: Error): void {
    this.#metrics?.publishFailed();
    pending.reject(err);
  }

  /** A publish ack (or a no-responders status) arrived. */
  #onAck(err: Error | null, m: Msg): void {
    if (err) {
      // The subscription itself failed (a permissions error): the acks waiting on it time out.
      this.#log.error({ err }, "bus: the publish-ack subscription failed");
      return;
    }
    const token = m.subject.slice(this.#ackInbox.length);
    const pending = this.#acks.get(token);
    if (!pending) return; // timed out already
    this.#acks.delete(token);
    if (m.headers?.code === 503) return this.#failed(pending, new Error(`no JetStream stream answers for ${pending.subject}`));
    let ack: { stream?: string; seq?: number; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = JSON.parse(decoder.decode(m.data)) as typeof ack;
    } catch (e) {
      return this.#failed(pending, new Error(`malformed publish ack for ${pending.subject}`, { cause: e }));
    }
    if (ack.error) return this.#failed(pending, new Error(`JetStream refused a publish to ${pending.subject}: ${ack.error.description ?? "error"} (${ack.error.err_code ?? ack.error.code ?? "?"})`));
    if (!ack.stream || typeof ack.seq !== "number") return this.#failed(pending, new Error(`invalid publish ack for ${pending.subject}`));
    this.#acked(pending, ack.seq);
  }

  /**
   * Runs `send` (a publish or a consumer ack) at the end of this event-loop turn, with every other
   * one queued in the turn. The client writes to its socket once per microtask checkpoint in which
   * something was sent: handlers finishing one by one would otherwise cost a write (a system call)
   * per ack and per publish. Order is kept (one queue).
   */
  #send(send: () => void): void {
    this.#out.push(send);
    if (this.#outScheduled) return;
    this.#outScheduled = true;
    setImmediate(this.#flushOut);
  }

  readonly #flushOut = (): void => {
    this.#outScheduled = false;
    const out = this.#out;
    this.#out = [];
    for (const send of out) send();
  };

  /** Rejects the publishes whose ack did not come within {@link PUBLISH_TIMEOUT_MS}. */
  #expireAcks(): void {
    const startedBefore = performance.now() - PUBLISH_TIMEOUT_MS;
    for (const [token, pending] of this.#acks) {
      if (pending.startedMs > startedBefore) break;
      this.#acks.delete(token);
      this.#failed(pending, new Error(`publish to ${pending.subject} not acknowledged within ${PUBLISH_TIMEOUT_MS} ms`));
    }
  }

  /** True while connected to a NATS server. */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Resolves when NATS and JetStream answer (a breaker's probe); rejects at once while the
   * connection is down, or when JetStream does not answer within 2 s.
   */
  async ping(): Promise<void> {
    if (!this.#connected) throw new Error("NATS connection is down");
    await this.#jsm.getAccountInfo();
  }

  async #watchStatus(): Promise<void> {
    // The iterator ends when the connection closes.
    for await (const s of this.#nc.status()) {
      if (s.type === "disconnect") {
        this.#connected = false;
        // Their acks will not come on this connection: fail them now rather than after the
        // publish timeout, so callers (and the breaker) learn of the outage at once.
        for (const pending of this.#acks.values()) this.#failed(pending, new Error(`NATS connection lost before the publish to ${pending.subject} was acknowledged`));
        this.#acks.clear();
      } else if (s.type === "reconnect") this.#connected = true;
    }
  }

  /** Connects, and creates or updates the stream. Rejects when NATS or JetStream is unavailable. */
  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    const nc = await connect({
      servers: options.servers,
      name: options.name ?? "switchboard",
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      timeout: 2000,
      // No stack captured per request (an Error per request otherwise: a large share of the CPU
      // the bus costs); the bus's own errors say what failed.
      noAsyncTraces: true,
    });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2000 });
      const config = {
        name: options.stream,
        subjects: options.subjects,
        retention: RetentionPolicy.Limits,
        storage: options.storage === "memory" ? StorageType.Memory : StorageType.File,
        max_age: nanos(options.maxAgeMs),
      };
      try {
        await jsm.streams.add(config);
      } catch (err) {
        // Adding is idempotent for the same configuration; a stream made with another one (older
        // subjects or max age) is updated to this one. Anything else is a failure to connect.
        if (!isApiError(err, STREAM_NAME_IN_USE)) throw err;
        await jsm.streams.update(options.stream, { subjects: config.subjects, max_age: config.max_age });
      }
      return new NatsBus(nc, jsm, options);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  /**
   * Publishes to the stream and resolves with the stored message's sequence once JetStream acked it.
   * The ack comes back on this bus's own reply subscription rather than through a request of the
   * client, which builds error objects and a timer per request (a fifth of a pod's CPU in the
   * cross-pod bench); a single timer expires acks that do not come within 2 s.
   */
  publish(subject: string, data: Uint8Array, headers: Readonly<Record<string, string>> = {}): Promise<number> {
    // While reconnecting, the client would buffer the publish and the caller would wait for the
    // whole timeout; failing now lets the breaker open after a few fast failures.
    if (!this.#connected) {
      this.#metrics?.publishFailed();
      return Promise.reject(new Error("NATS connection is down"));
    }
    let h: ReturnType<typeof natsHeaders> | undefined;
    for (const k in headers) {
      h ??= natsHeaders();
      h.set(k, headers[k] as string);
    }
    const token = (++this.#ackToken).toString(36);
    return new Promise<number>((resolve, reject) => {
      const pending: PendingAck = { subject, resolve, reject, startedMs: performance.now() };
      this.#acks.set(token, pending);
      this.#send(() => {
        // Failed meanwhile (the connection dropped): not sent, so it cannot be stored after the caller was told it failed.
        if (!this.#acks.has(token)) return;
        try {
          this.#nc.publish(subject, data, h ? { reply: this.#ackInbox + token, headers: h } : { reply: this.#ackInbox + token });
        } catch (err) {
          this.#acks.delete(token);
          this.#failed(pending, err as Error);
        }
      });
    });
  }

  async consume(name: string, filter: string, handler: BusHandler, options: ConsumeOptions = {}): Promise<BusConsumer> {
    const stream = this.#o.stream;
    const keyOf = options.keyOf;
    const maxAckPending = keyOf ? (options.maxInFlight ?? 256) : 1;
    let info: ConsumerInfo | null = null;
    try {
      info = await this.#jsm.consumers.info(stream, name);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    }
    if (info && info.config.max_ack_pending !== maxAckPending) info = await this.#jsm.consumers.update(stream, name, { max_ack_pending: maxAckPending });
    if (!info) {
      info = await this.#jsm.consumers.add(stream, {
        durable_name: name,
        filter_subject: filter,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: maxAckPending,
        ack_wait: nanos(30_000),
      });
    }
    const consumer = await this.#js.consumers.get(stream, name);
    const { metricsName } = options;
    if (this.#metrics && metricsName !== undefined) {
      this.#reported.set(metricsName, name);
      this.#pending.set(metricsName, backlog(info));
    }
    const retryDelayMs = this.#o.retryDelayMs ?? 200;
    const maxAttempts = this.#o.maxHandlerAttempts ?? DEFAULT_MAX_HANDLER_ATTEMPTS;
    // A message given up is terminated: JetStream never delivers it again and counts it as handled
    // (the ack floor passes it, so a takeover's backlog read does not replay it either). Without a
    // reason: servers before 2.10 ignore a `+TERM` that carries one (the message then stayed
    // pending until its ack wait).
    const giveUp = (m: { term(): void }) => this.#send(() => m.term());
    // Keyed: retried in place by the dispatcher (the message's lease is extended meanwhile).
    const dispatch = keyOf
      ? new KeyedDispatch({ limit: maxAckPending, maxAttempts, retryDelayMs: (failures) => handlerRetryDelayMs(failures, retryDelayMs) })
      : null;
    let messages: ConsumerMessages | null = null;
    let closed = false;
    /** Failures in a row to start or follow the consumer (logged once per run of them). */
    let pullFailures = 0;
    const loop = (async () => {
      while (!closed) {
        try {
          messages = await consumer.consume({ max_messages: keyOf ? Math.min(256, maxAckPending) : 64 });
          // Closed while the pull started: `close` found no iterator to close, so this one is closed here.
          if (closed) {
            await this.#closeMessages(messages, name);
            break;
          }
          for await (const m of messages) {
            pullFailures = 0;
            const msg: BusMessage = { subject: m.subject, data: m.data, headers: headersOf(m.headers), streamSeq: m.seq };
            const where = { consumer: name, subject: m.subject, streamSeq: m.seq };
            if (dispatch && keyOf) {
              // A redelivery of a message still being handled (after a reconnect) is skipped.
              if (dispatch.has(m.seq)) continue;
              await dispatch.admit();
              dispatch.push(m.seq, keyOf(msg), () => handler(msg), {
                done: () => this.#send(() => m.ack()),
                onError: (err, failures, givenUp) => logHandlerFailure(this.#log, err, where, failures, givenUp),
                working: () => this.#send(() => m.working()),
                givenUp: () => giveUp(m),
              });
            } else {
              try {
                await handler(msg);
                this.#send(() => m.ack());
              } catch (err) {
                // Redelivered by JetStream after the delay, in order (max_ack_pending 1 keeps it);
                // its delivery count tells the attempt.
                const failures = m.info.deliveryCount;
                const givenUp = failures >= maxAttempts;
                logHandlerFailure(this.#log, err, where, failures, givenUp);
                if (givenUp) giveUp(m);
                else this.#send(() => m.nak(handlerRetryDelayMs(failures, retryDelayMs)));
              }
            }
            if (closed) break;
          }
        } catch (err) {
          if (closed) break;
          pullFailures += 1;
          // While NATS is down this repeats every retry delay: the first failure of a run is a
          // warning, the rest are debug (the breaker reports the outage itself).
          if (pullFailures === 1) this.#log.warn({ err, consumer: name }, "bus: consuming failed; retrying");
          else this.#log.debug({ err, consumer: name, failures: pullFailures }, "bus: consuming failed again; retrying");
          await new Promise((r) => setTimeout(r, retryDelayMs));
        }
      }
      await dispatch?.close();
    })();
    const handle: BusConsumer = busConsumer(async () => {
      this.#consumers.delete(handle);
      if (metricsName !== undefined && this.#reported.get(metricsName) === name) {
        this.#reported.delete(metricsName);
        this.#pending.delete(metricsName);
      }
      closed = true;
      await this.#closeMessages(messages, name);
      await loop;
    });
    this.#consumers.add(handle);
    return handle;
  }

  async tail(filter: string, fromSeq: number, handler: (msg: BusMessage) => void): Promise<BusConsumer> {
    const consumer = await this.#js.consumers.get(this.#o.stream, {
      filter_subjects: filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
    });
    const messages = await consumer.consume({ max_messages: 256 });
    const loop = (async () => {
      try {
        for await (const m of messages) {
          try {
            handler({ subject: m.subject, data: m.data, headers: headersOf(m.headers), streamSeq: m.seq });
          } catch (err) {
            // The caller should have logged it itself; the tail goes on either way.
            this.#log.error({ err, filter, subject: m.subject, streamSeq: m.seq }, "bus: a tail's handler threw");
          }
        }
      } catch (err) {
        this.#log.warn({ err, filter }, "bus: a tail ended with an error");
      }
    })();
    const handle: BusConsumer = busConsumer(async () => {
      this.#consumers.delete(handle);
      await this.#closeMessages(messages, `tail ${filter}`);
      await loop;
    });
    this.#consumers.add(handle);
    return handle;
  }

  /** Stops a consumer's message iterator and waits for it; a failure to do so is logged, not thrown. */
  async #closeMessages(messages: ConsumerMessages | null, what: string): Promise<void> {
    if (!messages) return;
    try {
      // `close` (unlike `stop`) waits until the pull subscription is gone; it resolves with the
      // error it ended on, if any.
      const ended = await messages.close();
      if (ended instanceof Error) this.#log.debug({ err: ended, consumer: what }, "bus: a consumer ended on an error");
    } catch (err) {
      this.#log.warn({ err, consumer: what }, "bus: closing a consumer failed");
    }
  }

  async read(filter: string, fromSeq: number): Promise<BusMessage[]> {
    // An ephemeral consumer with a single filter subject (servers before 2.10 know no other kind).
    const ci = await this.#jsm.consumers.add(this.#o.stream, {
      filter_subject: filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
      ack_policy: AckPolicy.None,
      inactive_threshold: nanos(30_000),
      mem_storage: true,
    });
    const consumer = await this.#js.consumers.get(this.#o.stream, ci.name);
    const out: BusMessage[] = [];
    // The consumer knows how many stored messages match: fetch exactly those, never wait for more.
    let remaining = ci.num_pending;
    try {
      while (remaining > 0) {
        const batch = await consumer.fetch({ max_messages: Math.min(256, remaining), expires: 2000 });
        let got = 0;
        for await (const m of batch) {
          got += 1;
          remaining -= 1;
          out.push({ subject: m.subject, data: m.data, headers: headersOf(m.headers), streamSeq: m.seq });
        }
        if (got === 0) break;
      }
    } finally {
      // Left behind, it goes by itself after its inactivity threshold (30 s).
      await consumer.delete().catch((err: unknown) => this.#log.debug({ err, consumer: ci.name }, "bus: deleting a read's ephemeral consumer failed"));
    }
    return out;
  }

  /** Null only for a consumer that does not exist; rejects when JetStream does not answer. */
  async ackFloor(name: string): Promise<number | null> {
    try {
      const info = await this.#jsm.consumers.info(this.#o.stream, name);
      return info.ack_floor.stream_seq;
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.ConsumerNotFound)) return null;
      throw err;
    }
  }

  async position(): Promise<number> {
    return (await this.#jsm.streams.info(this.#o.stream)).state.last_seq;
  }

  /** 0 only for a consumer that does not exist; rejects when JetStream does not answer. */
  async pending(name: string): Promise<number> {
    try {
      const info = await this.#jsm.consumers.info(this.#o.stream, name);
      return backlog(info);
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.ConsumerNotFound)) return 0;
      throw err;
    }
  }

  /** Resolves once the consumer is gone (also when there was none); rejects when JetStream does not answer. */
  async deleteConsumer(name: string): Promise<void> {
    try {
      await this.#jsm.consumers.delete(this.#o.stream, name);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#pendingTimer) clearInterval(this.#pendingTimer);
      await this.#pendingRun;
      this.#reported.clear();
      this.#pending.clear();
      await Promise.all([...this.#consumers].map((c) => c.close()));
      this.#consumers.clear();
      this.#flushOut();
      clearInterval(this.#ackTimer);
      this.#ackSub.unsubscribe();
      for (const pending of this.#acks.values()) this.#failed(pending, new Error("NATS bus closed"));
      this.#acks.clear();
      try {
        await this.#nc.drain();
      } catch (err) {
        // Draining fails on a connection that is down or closing: close it without the drain.
        this.#log.warn({ err }, "bus: draining the NATS connection failed; closing it");
        await this.#nc.close();
      }
      await this.#statusLoop;
    })();
    return this.#closed;
  }

  /** Deletes the stream (tests clean up their own streams); resolves also when there was none. */
  async deleteStream(): Promise<void> {
    try {
      await this.#jsm.streams.delete(this.#o.stream);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    }
  }
}

/** JetStream's API error of a stream added under a name in use with another configuration. */
const STREAM_NAME_IN_USE = 10058;

/** True for JetStream's API error `code` (its `err_code`, e.g. consumer not found). */
function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** The bus's log when none is given: warnings and errors on the console, no debug. */
const CONSOLE_LOG: BusLog = {
  debug: () => undefined,
  warn: (obj, msg) => console.warn(msg, obj),
  error: (obj, msg) => console.error(msg, obj),
};

/** How long a publish waits for JetStream's ack. */
const PUBLISH_TIMEOUT_MS = 2000;

/** Period of the background read of the consumers' backlogs (metrics), in ms. */
const DEFAULT_PENDING_REFRESH_MS = 5000;

/** Messages of a consumer not yet delivered, plus those delivered and not yet acknowledged. */
function backlog(info: ConsumerInfo): number {
  return info.num_pending + info.num_ack_pending;
}

const decoder = new TextDecoder();

/** A publish waiting for its ack. */
interface PendingAck {
  readonly subject: string;
  readonly resolve: (seq: number) => void;
  readonly reject: (err: Error) => void;
  /** `performance.now()` when it was made (it fails {@link PUBLISH_TIMEOUT_MS} later). */
  readonly startedMs: number;
}

function headersOf(h: { keys(): string[]; get(k: string): string } | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.get(k);
  return out;
}
