import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Redis } from "ioredis";
import { parseRingDocument, type RingDocument } from "@switchboard/ring";
import { RedisKeys } from "./redis-keys.ts";

/** Where a pod reads the ring document from; it calls `onChange` with every new version. */
export interface RingSource {
  /** Starts watching; resolves with the current document (rejects if there is none or it is invalid). */
  start(onChange: (doc: RingDocument) => void, onError: (err: Error) => void): Promise<RingDocument>;
  /** Stops watching. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Calls `onChange` only for versions newer than the last one delivered: sources may report the
 * same document twice (file events, pub/sub plus polling, a relist) and must never go back.
 *
 * @returns `deliver`, which passes on a newer version and drops the rest, and `last`, the last
 *   version passed on (-1 before the first)
 */
export function monotonic(onChange: (doc: RingDocument) => void): { deliver(doc: RingDocument): void; last(): number } {
  let last = -1;
  return {
    deliver(doc) {
      if (doc.version <= last) return;
      last = doc.version;
      onChange(doc);
    },
    last: () => last,
  };
}

/**
 * The ring from a file (a mounted ConfigMap key, or a file written by hand or by tests). Watches
 * the file and its directory (ConfigMap updates swap a symlink) and re-reads every `pollMs` as a
 * backstop, so a change is seen in well under 2 s.
 */
export class FileRingSource implements RingSource {
  readonly #path: string;
  readonly #pollMs: number;
  #watcher: FSWatcher | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(path: string, options: { pollMs?: number } = {}) {
    this.#path = path;
    this.#pollMs = options.pollMs ?? 500;
  }

  async start(onChange: (doc: RingDocument) => void, onError: (err: Error) => void): Promise<RingDocument> {
    const m = monotonic(onChange);
    const first = parseRingDocument(await readFile(this.#path, "utf8"));
    m.deliver(first);
    const reread = () => {
      readFile(this.#path, "utf8").then(
        (text) => {
          try {
            m.deliver(parseRingDocument(text));
          } catch (err) {
            onError(err as Error);
          }
        },
        (err: Error) => onError(err),
      );
    };
    try {
      this.#watcher = watch(this.#path, { persistent: false }, reread);
      this.#watcher.on("error", (err) => onError(err));
    } catch (err) {
      onError(err as Error);
    }
    this.#timer = setInterval(reread, this.#pollMs);
    this.#timer.unref();
    return first;
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
    this.#watcher = null;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}

/**
 * The ring from a Redis key (`sb:<cluster>:ring`), pushed over the pub/sub channel of the same
 * name and re-read every `pollMs` as a backstop (a missed message costs at most one poll).
 */
export class RedisRingSource implements RingSource {
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #key: string;
  readonly #pollMs: number;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(redis: Redis, cluster: string, options: { pollMs?: number } = {}) {
    this.#redis = redis;
    this.#subscriber = redis.duplicate();
    this.#subscriber.on("error", () => undefined);
    this.#key = new RedisKeys(cluster).ring;
    this.#pollMs = options.pollMs ?? 1000;
  }

  /** Publishes a ring document (what the operator, or a test playing it, does). */
  static async publish(redis: Redis, cluster: string, docText: string): Promise<void> {
    const key = new RedisKeys(cluster).ring;
    parseRingDocument(docText);
    await redis.set(key, docText);
    await redis.publish(key, docText);
  }

  async start(onChange: (doc: RingDocument) => void, onError: (err: Error) => void): Promise<RingDocument> {
    const m = monotonic(onChange);
    const read = async () => {
      const text = await this.#redis.get(this.#key);
      if (text === null) throw new Error(`no ring document at ${this.#key}`);
      m.deliver(parseRingDocument(text));
    };
    await read();
    this.#subscriber.on("message", (_channel: string, text: string) => {
      try {
        m.deliver(parseRingDocument(text));
      } catch (err) {
        onError(err as Error);
      }
    });
    await this.#subscriber.subscribe(this.#key);
    this.#timer = setInterval(() => void read().catch((err: Error) => onError(err)), this.#pollMs);
    this.#timer.unref();
    const text = (await this.#redis.get(this.#key)) as string;
    return parseRingDocument(text);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
  }
}
