import type { BusConsumer, BusHandler, BusMessage, ClusterBus } from "./bus.ts";
import { subjectMatches } from "./subjects.ts";

/** Options of {@link MemoryBus}. */
export interface MemoryBusOptions {
  /** Redelivery delay after a handler failure. @default 100 */
  readonly retryDelayMs?: number;
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
  readonly #running = new Set<{ stop(): Promise<void> }>();
  readonly #retryDelayMs: number;
  #closed = false;

  constructor(options: MemoryBusOptions = {}) {
    this.#retryDelayMs = options.retryDelayMs ?? 100;
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
    // One message at a time (a valid way to honour `keyOf`); a failing handler sees it again.
    return this.#follow(consumer.filter, consumer.ackFloor + 1, async (m) => {
      try {
        await handler(m);
        consumer.ackFloor = m.streamSeq;
        return true;
      } catch {
        await new Promise((r) => setTimeout(r, this.#retryDelayMs));
        return false;
      }
    });
  }

  async tail(filter: string, fromSeq: number, handler: (msg: BusMessage) => void): Promise<BusConsumer> {
    return this.#follow(filter, Math.max(1, fromSeq), async (m) => {
      try {
        handler(m);
      } catch {
        // the caller logs its own failures
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
   * waiting for new ones, until stopped; `take` resolves false to get the same message again.
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
    const running = {
      stop: async () => {
        stopped = true;
        wake?.();
        await loop;
      },
    };
    this.#running.add(running);
    return {
      stop: async () => {
        this.#running.delete(running);
        await running.stop();
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#running].map((r) => r.stop()));
    this.#running.clear();
  }
}
