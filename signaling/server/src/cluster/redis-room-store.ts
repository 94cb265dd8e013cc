import type { Redis } from "ioredis";
import type { RoomStore, StoredMember } from "./room-store.ts";
import { RedisKeys } from "./redis-keys.ts";

/**
 * The room store on Redis: `sb:<c>:room:<id>` holds the members (JSON, with a TTL the owner
 * refreshes), and the set `sb:<c>:rooms` lists the rooms that have one (entries of expired records
 * are pruned when listed).
 */
export class RedisRoomStore implements RoomStore {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #ttlMs: number;

  /** Uses `redis` (owned by the caller); records live `ttlMs` unless refreshed. */
  constructor(redis: Redis, cluster: string, ttlMs: number) {
    this.#redis = redis;
    this.#keys = new RedisKeys(cluster);
    this.#ttlMs = ttlMs;
  }

  async save(room: string, members: readonly StoredMember[]): Promise<void> {
    const key = this.#key(room);
    if (members.length === 0) await this.#redis.multi().del(key).srem(this.#index(), room).exec();
    else await this.#redis.multi().set(key, JSON.stringify(members), "PX", this.#ttlMs).sadd(this.#index(), room).exec();
  }

  async load(room: string): Promise<StoredMember[]> {
    const s = await this.#redis.get(this.#key(room));
    return s ? (JSON.parse(s) as StoredMember[]) : [];
  }

  async rooms(): Promise<string[]> {
    const rooms = await this.#redis.smembers(this.#index());
    if (rooms.length === 0) return [];
    const exists = await Promise.all(rooms.map((r) => this.#redis.exists(this.#key(r))));
    const gone = rooms.filter((_, i) => exists[i] === 0);
    if (gone.length > 0) await this.#redis.srem(this.#index(), ...gone);
    return rooms.filter((_, i) => exists[i] === 1);
  }

  async refresh(rooms: readonly string[], ttlMs: number): Promise<void> {
    if (rooms.length === 0) return;
    const p = this.#redis.pipeline();
    for (const r of rooms) p.pexpire(this.#key(r), ttlMs);
    p.pexpire(this.#index(), ttlMs * 2);
    await p.exec();
  }

  #key(room: string): string {
    return this.#keys.room(room);
  }

  #index(): string {
    return this.#keys.rooms;
  }
}
