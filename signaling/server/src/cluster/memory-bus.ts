import { DEFAULT_MAX_HANDLER_ATTEMPTS, busConsumer, handlerRetryDelayMs, logHandlerFailure, type BusConsumer, type BusHandler, type BusLog, type BusMessage, type ClusterBus } from "./bus.ts";
import { subjectMatches } from "./subjects.ts";

/** Options of {@link MemoryBus}. */
export interface MemoryBusOptions {
  /** Delay after a handler's first failure (it doubles with each further one, up to 5 s). @default 100 */
  readonly retryDelayMs?: number;
  /** Attempts at a message whose handler keeps failing before it is given up. @default 10 */
  readonly maxHandlerAttempts?: number;
  /** Where handler failures are logged. @default console (warnings and errors) */
  readonly log?: BusLog;
}

interface ConsumerState {
  readonly filter: string;
  /** Highest stream sequence acknowledged. */
  ackFloor: number;
}

/**
 * The bus in one process: a single ordered stream in memory. Several pods in one test process can
 * share one instance. Same contract as the JetStream bus (see bus.contract.test.ts).
 */
export class MemoryBus implements ClusterBus {
  readonly #messages: BusMessage[] = [];
  readonly #consumers = new Map<string, ConsumerState>();
  readonly #wakers = new Set<() => void>();
  readonly #running = new Set<BusConsumer>();
  readonly #retryDelayMs: number;
  readonly #maxAttempts: number;
  readonly #log: BusLog;
  #closed = false;

  constructor(options: MemoryBusOptions = {}) {
    this.#retryDelayMs = options.retryDelayMs ?? 100;
    this.#maxAttempts = options.maxHandlerAttempts ?? DEFAULT_MAX_HANDLER_ATTEMPTS;
    this.#log = options.log ?? { debug: () => undefined, warn: (obj, msg) => console.warn(msg, obj), error: (obj, msg) => console.error(msg, obj) };
  }

  async publish(subject: string, data: Uint8Array, headers: Readonly<Record<string, string>> = {}): Promise<number> {
    if (this.#closed) throw new Error("bus closed");
    const streamSeq = this.#messages.length + 1;
    this.#messages.push({ subject, data, headers: { ...headers }, streamSeq });
    for (const wake of [...this.#wakers]) wake();
    return streamSeq;
  }

  async consume(name: string, filter: string, handler: BusHandler): Promise<BusConsumer> {
    let state = this.#consumers.get(name);
    if (!state) {
      state = { filter, ackFloor: 0 };
      this.#consumers.set(name, state);
    }
    const consumer = state;
    // One message at a time (a valid way to honour `keyOf`); a failing handler sees it again,
    // until it has failed on every attempt (the message is then passed, as JetStream terminates it).
    let failures = 0;
    return this.#follow(consumer.filter, consumer.ackFloor + 1, async (m) => {
      try {
        await handler(m);
      } catch (err) {
        failures += 1;
        const givenUp = failures >= this.#maxAttempts;
        logHandlerFailure(this.#log, err, { consumer: name, subject: m.subject, streamSeq: m.streamSeq }, failures, givenUp);
        if (!givenUp) {
          await new Promise((r) => setTimeout(r, handlerRetryDelayMs(failures, this.#retryDelayMs)));
          return false;
        }
      }
      failures = 0;
      consumer.ackFloor = m.streamSeq;
      return true;
    });
  }

  async tail(filter: string, fromSeq: number, handler: (msg: BusMessage) => void): Promise<BusConsumer> {
    return this.#follow(filter, Math.max(1, fromSeq), async (m) => {
      try {
        handler(m);
      } catch (err) {
        // The caller should have logged it itself; the tail goes on either way.
        this.#log.error({ err, filter, subject: m.subject, streamSeq: m.streamSeq }, "bus: a tail's handler threw");
      }
      return true;
    });
  }

  async read(filter: string, fromSeq: number): Promise<BusMessage[]> {
    return this.#messages.filter((m) => m.streamSeq >= fromSeq && subjectMatches(filter, m.subject));
  }

  async ackFloor(name: string): Promise<number | null> {
    return this.#consumers.get(name)?.ackFloor ?? null;
  }

  async position(): Promise<number> {
    return this.#messages.length;
  }

  async pending(name: string): Promise<number> {
    const c = this.#consumers.get(name);
    if (!c) return 0;
    return this.#messages.filter((m) => m.streamSeq > c.ackFloor && subjectMatches(c.filter, m.subject)).length;
  }

  async deleteConsumer(name: string): Promise<void> {
    this.#consumers.delete(name);
  }

  /**
   * Hands the stored messages matching `filter` from position `from` on to `take`, one at a time,
   * waiting for new ones, until closed; `take` resolves false to get the same message again.
   */
  #follow(filter: string, from: number, take: (m: BusMessage) => Promise<boolean>): BusConsumer {
    let next = from;
    let stopped = false;
    let wake: (() => void) | null = null;
    const loop = (async () => {
      while (!stopped && !this.#closed) {
        const m = this.#messages.find((x) => x.streamSeq >= next && subjectMatches(filter, x.subject));
        if (!m) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            this.#wakers.add(resolve);
          });
          if (wake) this.#wakers.delete(wake);
          continue;
        }
        if (await take(m)) next = m.streamSeq + 1;
      }
    })();
    const handle: BusConsumer = busConsumer(async () => {
      this.#running.delete(handle);
      stopped = true;
      wake?.();
      await loop;
    });
    this.#running.add(handle);
    return handle;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#running].map((r) => r.close()));
    this.#running.clear();
  }
}
