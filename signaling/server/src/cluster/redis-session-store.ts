import type { Redis } from "ioredis";
import { MAX_LOG_FRAMES, type AppendResult, type ClaimedSession, type LogAppend, type SessionStore, type StoredIdentity } from "./session-store.ts";
import { RedisKeys } from "./redis-keys.ts";

// A session is a hash `sb:<c>:s:<id>` {id, edge, epoch, first, last, src, rooms, calls} and a list
// `sb:<c>:l:<id>` of frames (index 0 has seq `first`). Every write is one Lua script, so it is atomic.

const APPEND = `
local e = redis.call('HGET', KEYS[1], 'epoch')
if not e then return -1 end
if tonumber(e) ~= tonumber(ARGV[1]) then return 0 end
local n = tonumber(ARGV[8])
local last = tonumber(redis.call('HGET', KEYS[1], 'last'))
local first = tonumber(redis.call('HGET', KEYS[1], 'first'))
if n > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 9, 8 + n))
  last = last + n
end
local keepFrom = first
local acked = tonumber(ARGV[4])
if acked + 1 > keepFrom then keepFrom = acked + 1 end
local cap = tonumber(ARGV[5])
if last - keepFrom + 1 > cap then keepFrom = last - cap + 1 end
if keepFrom > last + 1 then keepFrom = last + 1 end
if keepFrom > first then
  redis.call('LTRIM', KEYS[2], keepFrom - first, -1)
  first = keepFrom
end
redis.call('HSET', KEYS[1], 'last', last, 'first', first)
local src = tonumber(ARGV[3])
if src > tonumber(redis.call('HGET', KEYS[1], 'src') or '0') then redis.call('HSET', KEYS[1], 'src', src) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'rooms', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'calls', ARGV[7]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1`;

const CLAIM = `
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return false end
if cjson.decode(id)['resumeTokenHash'] ~= ARGV[3] then return 'bad-token' end
local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local prev = redis.call('HGET', KEYS[1], 'edge')
redis.call('HSET', KEYS[1], 'edge', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'id', 'first', 'last', 'src', 'rooms', 'calls')
return {e, prev, h[1], h[2], h[3], h[4] or '0', h[5] or '[]', h[6] or '[]', redis.call('LRANGE', KEYS[2], 0, -1)}`;

const REMOVE = `
local e = redis.call('HGET', KEYS[1], 'epoch')
if e and tonumber(e) == tonumber(ARGV[1]) then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1`;

/** The session store on Redis (docs/cluster.md). Keys are prefixed by the cluster name and expire. */
export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis;
  readonly #names: RedisKeys;

  /** Uses `redis` (owned by the caller) with keys under `sb:<cluster>:`. */
  constructor(redis: Redis, cluster: string) {
    this.#redis = redis;
    this.#names = new RedisKeys(cluster);
    redis.defineCommand("sbAppend", { numberOfKeys: 2, lua: APPEND });
    redis.defineCommand("sbClaim", { numberOfKeys: 2, lua: CLAIM });
    redis.defineCommand("sbRemove", { numberOfKeys: 2, lua: REMOVE });
  }

  async create(identity: StoredIdentity, edge: string, ttlMs: number): Promise<void> {
    const [h, l] = this.#keys(identity.sessionId);
    await this.#redis.multi().del(l).hset(h, { id: JSON.stringify(identity), edge, epoch: 1, first: 1, last: 0, src: 0 }).pexpire(h, ttlMs).exec();
  }

  async append(appends: readonly LogAppend[], ttlMs: number): Promise<AppendResult[]> {
    if (appends.length === 0) return [];
    const p = this.#redis.pipeline();
    for (const a of appends) {
      const [h, l] = this.#keys(a.sessionId);
      const args = [a.epoch, ttlMs, a.src, a.acked, MAX_LOG_FRAMES, a.rooms ? JSON.stringify(a.rooms) : "", a.calls ? JSON.stringify(a.calls) : "", a.frames.length, ...a.frames];
      (p as unknown as Record<string, (...x: unknown[]) => void>)["sbAppend"]?.(h, l, ...args);
    }
    const results = (await p.exec()) ?? [];
    return results.map(([err, v]) => {
      if (err) throw err;
      return v === 1 ? "stored" : v === 0 ? "fenced" : "gone";
    });
  }

  async claim(sessionId: string, edge: string, ttlMs: number, resumeTokenHash: string): Promise<ClaimedSession | null | "bad-token"> {
    const [h, l] = this.#keys(sessionId);
    const r = (await (this.#redis as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>)["sbClaim"]?.(h, l, edge, ttlMs, resumeTokenHash)) as
      | [number, string, string, string, string, string, string, string, string[]]
      | "bad-token"
      | null;
    if (r === "bad-token") return r;
    if (!r) return null;
    const [epoch, previousEdge, id, first, last, src, rooms, calls, frames] = r;
    return {
      identity: JSON.parse(id) as StoredIdentity,
      epoch: Number(epoch),
      previousEdge,
      frames,
      firstSeq: Number(first),
      lastSeq: Number(last),
      src: Number(src),
      rooms: JSON.parse(rooms) as string[],
      calls: JSON.parse(calls) as string[],
    };
  }

  async locate(sessionId: string): Promise<{ edge: string; epoch: number } | null> {
    const [edge, epoch] = await this.#redis.hmget(this.#keys(sessionId)[0], "edge", "epoch");
    return edge && epoch ? { edge, epoch: Number(epoch) } : null;
  }

  async refresh(sessionIds: readonly string[], ttlMs: number): Promise<void> {
    if (sessionIds.length === 0) return;
    const p = this.#redis.pipeline();
    for (const id of sessionIds) for (const k of this.#keys(id)) p.pexpire(k, ttlMs);
    await p.exec();
  }

  async remove(sessionId: string, epoch: number): Promise<void> {
    const [h, l] = this.#keys(sessionId);
    await (this.#redis as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>)["sbRemove"]?.(h, l, epoch);
  }

  async close(): Promise<void> {
    // The Redis connection belongs to the caller.
  }

  #keys(sessionId: string): [string, string] {
    return [this.#names.session(sessionId), this.#names.sessionLog(sessionId)];
  }
}
