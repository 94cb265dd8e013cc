/**
 * Every Redis key of one cluster, in one place (beside `subjects.ts` for NATS): all under
 * `sb:<cluster>:`, so a cluster's keys can be listed, and deleted, by that prefix (docs/operator.md,
 * "Deleting a cluster").
 *
 * | key | type | holds |
 * |---|---|---|
 * | `sb:<c>:ring` | string + pub/sub channel | the ring document (without Kubernetes or a ring file) |
 * | `sb:<c>:ring-applied` | hash pod → version | the ring version each pod applied |
 * | `sb:<c>:user:<user>` | hash session → device | a user's devices that can take calls |
 * | `sb:<c>:rl:<key>:<window>` | counter | cluster-wide rate limits |
 * | `sb:<c>:s:<session>`, `sb:<c>:l:<session>` | hash, list | a session's record and its log of frames |
 * | `sb:<c>:room:<room>`, `sb:<c>:rooms` | string (JSON), set | a room's members; the rooms that have a record |
 */
export class RedisKeys {
  /** `sb:<cluster>:`, the prefix of every key. */
  readonly prefix: string;

  constructor(cluster: string) {
    this.prefix = `sb:${cluster}:`;
  }

  get ring(): string {
    return `${this.prefix}ring`;
  }

  get ringApplied(): string {
    return `${this.prefix}ring-applied`;
  }

  user(userId: string): string {
    return `${this.prefix}user:${userId}`;
  }

  rateLimit(key: string, window: number): string {
    return `${this.prefix}rl:${key}:${window}`;
  }

  session(sessionId: string): string {
    return `${this.prefix}s:${sessionId}`;
  }

  sessionLog(sessionId: string): string {
    return `${this.prefix}l:${sessionId}`;
  }

  room(room: string): string {
    return `${this.prefix}room:${room}`;
  }

  get rooms(): string {
    return `${this.prefix}rooms`;
  }
}
