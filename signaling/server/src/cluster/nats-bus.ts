import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders, nanos, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { BusConsumer, BusHandler, BusMessage, ClusterBus, ConsumeOptions } from "./bus.ts";
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
  /** Redelivery delay after a handler failure. @default 200 */
  readonly retryDelayMs?: number;
  /** Connection name shown by the NATS server. */
  readonly name?: string;
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
  readonly #consumers = new Set<{ stop(): Promise<void> }>();
  #closed: Promise<void> | null = null;
  /** False while the connection is down: publishes then fail at once rather than wait for their timeout. */
  #connected = true;
  readonly #statusLoop: Promise<void>;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, options: NatsBusOptions) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#o = options;
    this.#statusLoop = this.#watchStatus();
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
      if (s.type === "disconnect") this.#connected = false;
      else if (s.type === "reconnect") this.#connected = true;
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
      } catch {
        await jsm.streams.update(options.stream, { subjects: config.subjects, max_age: config.max_age });
      }
      return new NatsBus(nc, jsm, options);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  async publish(subject: string, data: Uint8Array, headers: Readonly<Record<string, string>> = {}): Promise<number> {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    // While reconnecting, the client would buffer the publish and the caller would wait for the
    // whole timeout; failing now lets the breaker open after a few fast failures.
    if (!this.#connected) throw new Error("NATS connection is down");
    const ack = await this.#js.publish(subject, data, { headers: h, timeout: 2000 });
    return ack.seq;
  }

  async consume(name: string, filter: string, handler: BusHandler, options: ConsumeOptions = {}): Promise<BusConsumer> {
    const stream = this.#o.stream;
    const keyOf = options.keyOf;
    const maxAckPending = keyOf ? (options.maxInFlight ?? 256) : 1;
    try {
      const info = await this.#jsm.consumers.info(stream, name);
      if (info.config.max_ack_pending !== maxAckPending) await this.#jsm.consumers.update(stream, name, { max_ack_pending: maxAckPending });
    } catch {
      await this.#jsm.consumers.add(stream, {
        durable_name: name,
        filter_subject: filter,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: maxAckPending,
        ack_wait: nanos(30_000),
      });
    }
    const consumer = await this.#js.consumers.get(stream, name);
    const retryDelayMs = this.#o.retryDelayMs ?? 200;
    const dispatch = keyOf ? new KeyedDispatch({ limit: maxAckPending, retryDelayMs }) : null;
    let messages: ConsumerMessages | null = null;
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        try {
          messages = await consumer.consume({ max_messages: keyOf ? Math.min(256, maxAckPending) : 64 });
          for await (const m of messages) {
            const msg: BusMessage = { subject: m.subject, data: m.data, headers: headersOf(m.headers), streamSeq: m.seq };
            if (dispatch && keyOf) {
              // A redelivery of a message still being handled (after a reconnect) is skipped.
              if (dispatch.has(m.seq)) continue;
              await dispatch.admit();
              dispatch.push(
                m.seq,
                keyOf(msg),
                () => handler(msg),
                () => m.ack(),
                () => m.working(),
              );
            } else {
              try {
                await handler(msg);
                m.ack();
              } catch {
                // Redeliver later, in order (max_ack_pending 1 keeps the order).
                m.nak(retryDelayMs);
              }
            }
            if (stopped) break;
          }
        } catch {
          if (!stopped) await new Promise((r) => setTimeout(r, retryDelayMs));
        }
      }
      await dispatch?.stop();
    })();
    const running = {
      stop: async () => {
        stopped = true;
        messages?.stop();
        await loop;
      },
    };
    this.#consumers.add(running);
    return {
      stop: async () => {
        this.#consumers.delete(running);
        await running.stop();
      },
    };
  }

  async tail(filter: string, fromSeq: number, handler: (msg: BusMessage) => void): Promise<BusConsumer> {
    const consumer = await this.#js.consumers.get(this.#o.stream, {
      filter_subjects: filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
    });
    const messages = await consumer.consume({ max_messages: 256 });
    const loop = (async () => {
      for await (const m of messages) {
        try {
          handler({ subject: m.subject, data: m.data, headers: headersOf(m.headers), streamSeq: m.seq });
        } catch {
          // the caller logs its own failures
        }
      }
    })();
    const running = {
      stop: async () => {
        await messages.close().catch(() => undefined);
        await loop.catch(() => undefined);
      },
    };
    this.#consumers.add(running);
    return {
      stop: async () => {
        this.#consumers.delete(running);
        await running.stop();
      },
    };
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
      await consumer.delete().catch(() => undefined);
    }
    return out;
  }

  async ackFloor(name: string): Promise<number | null> {
    try {
      const info = await this.#jsm.consumers.info(this.#o.stream, name);
      return info.ack_floor.stream_seq;
    } catch {
      return null;
    }
  }

  async position(): Promise<number> {
    return (await this.#jsm.streams.info(this.#o.stream)).state.last_seq;
  }

  async pending(name: string): Promise<number> {
    try {
      const info = await this.#jsm.consumers.info(this.#o.stream, name);
      return info.num_pending + info.num_ack_pending;
    } catch {
      return 0;
    }
  }

  async deleteConsumer(name: string): Promise<void> {
    await this.#jsm.consumers.delete(this.#o.stream, name).catch(() => undefined);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#consumers].map((c) => c.stop()));
      this.#consumers.clear();
      await this.#nc.drain().catch(() => this.#nc.close());
      await this.#statusLoop;
    })();
    return this.#closed;
  }

  /** Deletes the stream (tests clean up their own streams). */
  async deleteStream(): Promise<void> {
    await this.#jsm.streams.delete(this.#o.stream).catch(() => undefined);
  }
}

function headersOf(h: { keys(): string[]; get(k: string): string } | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.get(k);
  return out;
}
