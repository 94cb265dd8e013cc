import { Redis, type RedisOptions } from "ioredis";
import type { DeviceRecord, Directory } from "./directory.ts";
import { RedisKeys } from "./redis-keys.ts";

/** Options of {@link RedisDirectory}. */
export interface RedisDirectoryOptions {
  /** `redis://host:port/db` */
  readonly url: string;
  /** Every key starts with `sb:<cluster>:`. */
  readonly cluster: string;
  /** Extra ioredis options (tests shorten timeouts). */
  readonly redis?: RedisOptions;
}

const ALLOW = `
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** Hash fields carry their own expiry (Redis 7.0 has no per-field TTL); the key expires too. */
interface Stamped<T> {
  readonly v: T;
  readonly exp: number;
}

/**
 * The directory on Redis (ioredis): a user's devices (`sb:<c>:user:<user>`, a hash of stamped
 * entries with a key TTL), the ring versions the pods applied (`sb:<c>:ring-applied`) and the
 * cluster-wide rate limits (`sb:<c>:rl:<key>:<window>`, one Lua script each, so atomic); the keys
 * are `RedisKeys`'.
 */
export class RedisDirectory implements Directory {
  readonly redis: Redis;
  readonly #keys: RedisKeys;
  #closed: Promise<void> | null = null;

  constructor(options: RedisDirectoryOptions) {
    this.#keys = new RedisKeys(options.cluster);
    this.redis = new Redis(options.url, {
      lazyConnect: false,
      // Degrade, not hang: while disconnected, commands fail at once (no offline queue, no
      // retries) and a command Redis does not answer fails after 2 s; the callers' breaker does
      // the rest.
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2000,
      commandTimeout: 2000,
      // Capped exponential backoff with jitter; the cap bounds how long a returned Redis goes unnoticed.
      retryStrategy: (times) => Math.min(1000, 50 * 2 ** Math.min(times, 6)) * (0.5 + Math.random() / 2),
      ...options.redis,
    });
    this.redis.on("error", () => {
      // Reported through failing commands (and the breaker that wraps them); the client reconnects.
    });
  }

  /** Resolves once connected (rejects after `timeoutMs`). */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.redis.status === "ready") return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("redis not ready")), timeoutMs);
      this.redis.once("ready", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Resolves when Redis answers PING (a breaker's probe); rejects at once while disconnected. */
  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async addDevice(userId: string, device: DeviceRecord, ttlMs: number): Promise<void> {
    await this.#hset(this.#keys.user(userId), device.sessionId, device, ttlMs);
  }

  async removeDevice(userId: string, sessionId: string): Promise<void> {
    await this.redis.hdel(this.#keys.user(userId), sessionId);
  }

  async devices(userId: string): Promise<DeviceRecord[]> {
    return this.#hvalues<DeviceRecord>(this.#keys.user(userId));
  }

  async reportRingVersion(pod: string, version: number, ttlMs: number): Promise<void> {
    await this.#hset(this.#keys.ringApplied, pod, version, ttlMs);
  }

  async ringVersions(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.#keys.ringApplied);
    const now = Date.now();
    const out: Record<string, number> = {};
    for (const [pod, s] of Object.entries(raw)) {
      const st = JSON.parse(s) as Stamped<number>;
      if (st.exp > now) out[pod] = st.v;
    }
    return out;
  }

  async allow(key: string, limit: number, windowMs: number): Promise<boolean> {
    const slot = Math.floor(Date.now() / windowMs);
    return (await this.redis.eval(ALLOW, 1, this.#keys.rateLimit(key, slot), String(limit), String(windowMs))) === 1;
  }

  /** Deletes every key of this cluster (tests). */
  async deleteAll(): Promise<void> {
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", `${this.#keys.prefix}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await this.redis.del(...keys);
    } while (cursor !== "0");
  }

  close(): Promise<void> {
    this.#closed ??= this.redis.quit().then(
      () => undefined,
      () => this.redis.disconnect(),
    );
    return this.#closed;
  }

  async #hset(key: string, field: string, value: unknown, ttlMs: number): Promise<void> {
    const stamped: Stamped<unknown> = { v: value, exp: Date.now() + ttlMs };
    // The key lives as long as its longest-lived field could (fields expire on read).
    await this.redis.multi().hset(key, field, JSON.stringify(stamped)).pexpire(key, ttlMs, "GT").pexpire(key, ttlMs, "NX").exec();
  }

  async #hvalues<T>(key: string): Promise<T[]> {
    const raw = await this.redis.hgetall(key);
    const now = Date.now();
    const out: T[] = [];
    const stale: string[] = [];
    for (const [field, s] of Object.entries(raw)) {
      const st = JSON.parse(s) as Stamped<T>;
      if (st.exp > now) out.push(st.v);
      else stale.push(field);
    }
    if (stale.length > 0) await this.redis.hdel(key, ...stale);
    return out;
  }
}
