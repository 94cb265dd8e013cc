/**
 * The consistent-hash ring that maps a room to its owner pod.
 *
 * Scheme: a token ring (Karger et al.; Cortex/Mimir, Envoy's ring hash) with nearest-token
 * ownership. Each ACTIVE member puts {@link DEFAULT_RING_VNODES} virtual nodes ("tokens") on a
 * 32-bit circle at positions that depend only on its name ({@link memberTokens}). A room belongs
 * to the member with the token nearest to the room's hash ({@link roomHash}) in either direction
 * around the circle; on an exact tie the token at or after the hash wins, and two members on one
 * position go to the name that sorts first.
 *
 * The owner is the member that minimises "distance from the room to my nearest token", a score
 * that each member computes from its own tokens alone. Hence:
 *
 * - adding a member moves only the rooms it takes (about 1/(N+1) of them), all to it;
 * - removing a member (or taking it out of ACTIVE) moves only its own rooms;
 * - the owner does not depend on the order of members in the document.
 *
 * Why nearest rather than the usual successor: a member's share is the sum of its tokens' cells.
 * With successor ownership a cell is one gap between random tokens (relative spread
 * 1/sqrt(vnodes)); with nearest ownership it is half of two independent gaps, which halves the
 * variance, so the same balance needs half the tokens, half the memory and half the build. With
 * 1 000 members the largest share sits about 3.3 standard deviations above the mean, so
 * max/mean ≈ 1 + 3.3 × sqrt(0.5/vnodes + members/rooms): with 10 M rooms, 1.08 at 1 024 vnodes
 * per member and 1.06 at 2 048, where 1.10 is over 5 standard deviations away, so unlucky name
 * sets stay under it too. The plain successor ring needs 4 096 vnodes for that; DESIGN §8's md5
 * ring reaches only 1.10 at 1 024. `ring-bench.ts` prints measured figures.
 *
 * Not chosen: Maglev balances better but also moves rooms between members that stay; jump hash
 * can only remove the last member; rendezvous hashing costs O(members) per lookup; bounded loads
 * need shared state; multi-probe hashing needs several probes per lookup for the same balance.
 *
 * Cost: 8 bytes per token plus a 4-byte index entry per 4-8 tokens: about 17 MB for 1 000
 * members at 2 048 vnodes, built in a few hundred milliseconds once per ring version (the build
 * blocks the event loop that long; keep the previous ring until the new one is built). A lookup
 * is one MurmurHash3 of the room id, one index read and a short scan of adjacent entries: no
 * search, no allocation, nothing cached per room.
 *
 * @module
 */
import { memberTokens, roomHash } from "./ring-hash.ts";
import type { RingDocument, RingMember } from "./ring-document.ts";

/** Virtual nodes per member when the document does not say; see the module comment for why. */
export const DEFAULT_RING_VNODES = 2048;

/**
 * Most tokens (ACTIVE members × vnodes) a ring may hold: 2²⁵, i.e. 268 MB of tables. A document
 * that passes the schema can still ask for more (10 000 members × 16 384 vnodes); refuse it
 * rather than exhaust the heap.
 */
export const MAX_RING_TOKENS = 2 ** 25;

// Aim for 4-8 tokens per bucket of the lookup index: a scan of a few adjacent entries costs
// less than a binary search over millions, and the index stays small enough to stay in cache.
const TOKENS_PER_BUCKET = 4;
const MAX_INDEX_BITS = 24;

/** The lookup tables of a ring; see {@link buildTable}. */
interface RingTable {
  /**
   * Pairs `[token, owner]`: token positions strictly ascending, owner the index of the member in
   * name order. Interleaved so that a lookup's tokens and owners share cache lines.
   */
  readonly entries: Uint32Array;
  /** `bucketStart[b]` is the pair index of the first token whose top bits are ≥ b; one extra entry at the end. */
  readonly bucketStart: Uint32Array;
  /** 32 minus the index bits: `hash >>> shift` is the bucket. */
  readonly shift: number;
}

/**
 * Builds the sorted token table of members (given in name order). O(members × vnodes): tokens
 * are uniform, so a counting sort on their top bits leaves buckets of a few entries, finished by
 * insertion sort; the same counts become the lookup index.
 */
function buildTable(names: readonly string[], vnodes: number): RingTable {
  const tokenCount = names.length * vnodes;
  const indexBits = Math.max(1, Math.min(MAX_INDEX_BITS, Math.floor(Math.log2(Math.max(2, tokenCount / TOKENS_PER_BUCKET)))));
  const bucketCount = 2 ** indexBits;
  const shift = 32 - indexBits;

  const raw = new Uint32Array(tokenCount);
  names.forEach((name, index) => memberTokens(name, vnodes, raw, index * vnodes));

  const counts = new Uint32Array(bucketCount + 1);
  for (let i = 0; i < tokenCount; i++) counts[(raw[i]! >>> shift) + 1]!++;
  for (let b = 1; b <= bucketCount; b++) counts[b]! += counts[b - 1]!;
  const next = counts.slice(0, bucketCount);
  const entries = new Uint32Array(2 * tokenCount);
  // Filled in member order, so equal tokens sit in ascending owner index, and the stable
  // insertion sort below keeps them so.
  for (let i = 0; i < tokenCount; i++) {
    const token = raw[i]!;
    const at = 2 * next[token >>> shift]!++;
    entries[at] = token;
    entries[at + 1] = Math.floor(i / vnodes);
  }
  for (let b = 0; b < bucketCount; b++) {
    const start = 2 * counts[b]!;
    const end = 2 * counts[b + 1]!;
    for (let i = start + 2; i < end; i += 2) {
      const token = entries[i]!;
      const owner = entries[i + 1]!;
      let j = i - 2;
      for (; j >= start && entries[j]! > token; j -= 2) {
        entries[j + 2] = entries[j]!;
        entries[j + 3] = entries[j + 1]!;
      }
      entries[j + 2] = token;
      entries[j + 3] = owner;
    }
  }

  // Two members on one position (about T²/2³³ of them: a few hundred at 2 M tokens): the one
  // whose name sorts first keeps it, whatever the document order; the other copy could never
  // win, so drop it and keep positions strictly ascending for the lookup.
  let unique = 0;
  for (let i = 0; i < tokenCount; i++) {
    if (unique > 0 && entries[2 * i] === entries[2 * unique - 2]) continue;
    entries[2 * unique] = entries[2 * i]!;
    entries[2 * unique + 1] = entries[2 * i + 1]!;
    unique++;
  }
  const bucketStart = new Uint32Array(bucketCount + 1);
  for (let i = 0; i < unique; i++) bucketStart[(entries[2 * i]! >>> shift) + 1]!++;
  for (let b = 1; b <= bucketCount; b++) bucketStart[b]! += bucketStart[b - 1]!;
  return { entries: unique === tokenCount ? entries : entries.slice(0, 2 * unique), bucketStart, shift };
}

function byName(a: RingMember, b: RingMember): number {
  // Code-unit order, not locale order: every pod must sort the same way.
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * An immutable ring built from one {@link RingDocument} version.
 *
 * Building is O(ACTIVE members × vnodes) and allocates the token tables; lookups are cheap and
 * allocation-free. Rooms hash over ACTIVE members only; JOINING and LEAVING members are listed in
 * {@link HashRing.members} but own nothing.
 */
export class HashRing {
  /** The document version this ring was built from. */
  readonly version: number;
  /** Virtual nodes per member. */
  readonly vnodes: number;
  /** Every member of the document, sorted by name, frozen. */
  readonly members: readonly RingMember[];
  /** The members that own rooms (state ACTIVE), sorted by name, frozen. */
  readonly activeMembers: readonly RingMember[];

  readonly #byName: ReadonlyMap<string, RingMember>;
  readonly #entries: Uint32Array;
  readonly #bucketStart: Uint32Array;
  readonly #shift: number;

  /**
   * Builds the ring of one document version.
   *
   * @param doc a validated document (see `parseRingDocument`)
   * @throws {RangeError} when vnodes is not a positive integer or the ring would exceed
   *   {@link MAX_RING_TOKENS}
   */
  constructor(doc: RingDocument) {
    this.version = doc.version;
    this.vnodes = doc.vnodes ?? DEFAULT_RING_VNODES;
    if (!Number.isInteger(this.vnodes) || this.vnodes < 1) throw new RangeError(`ring vnodes must be a positive integer, got ${this.vnodes}`);
    this.members = Object.freeze(doc.members.map((m) => Object.freeze({ ...m })).sort(byName));
    this.activeMembers = Object.freeze(this.members.filter((m) => m.state === "ACTIVE"));
    this.#byName = new Map(this.members.map((m) => [m.name, m]));

    const tokenCount = this.activeMembers.length * this.vnodes;
    if (tokenCount > MAX_RING_TOKENS) {
      throw new RangeError(`ring too large: ${this.activeMembers.length} ACTIVE members × ${this.vnodes} vnodes > ${MAX_RING_TOKENS} tokens`);
    }
    const table = buildTable(
      this.activeMembers.map((m) => m.name),
      this.vnodes,
    );
    this.#entries = table.entries;
    this.#bucketStart = table.bucketStart;
    this.#shift = table.shift;
    Object.freeze(this);
  }

  /**
   * The member that owns a room: the ACTIVE member with the token nearest to the room's hash.
   * Deterministic across processes and versions; allocation-free for ASCII room ids.
   *
   * @param roomId the room id
   * @returns the owner, or undefined when no member is ACTIVE
   */
  ownerOf(roomId: string): RingMember | undefined {
    const active = this.activeMembers;
    if (active.length <= 1) return active[0];
    return active[this.#ownerIndexOfHash(roomHash(roomId))];
  }

  /**
   * The owner of a ring position; {@link HashRing.ownerOf} is `ownerOfHash(roomHash(roomId))`.
   *
   * @param hash an unsigned 32-bit position
   * @returns the owner, or undefined when no member is ACTIVE
   */
  ownerOfHash(hash: number): RingMember | undefined {
    const active = this.activeMembers;
    if (active.length <= 1) return active[0];
    return active[this.#ownerIndexOfHash(hash >>> 0)];
  }

  #ownerIndexOfHash(hash: number): number {
    const entries = this.#entries;
    const lastAt = entries.length - 2;
    const bucket = hash >>> this.#shift;
    let nextAt = 2 * this.#bucketStart[bucket]!;
    const endAt = 2 * this.#bucketStart[bucket + 1]!;
    while (nextAt < endAt && entries[nextAt]! < hash) nextAt += 2;
    // Past the bucket, the next entry is the successor: every later token is above this bucket.
    // Past the last token, wrap to the first; the predecessor wraps the other way.
    if (nextAt > lastAt) nextAt = 0;
    const prevAt = nextAt === 0 ? lastAt : nextAt - 2;
    // Circular distances in 32-bit arithmetic; on a tie the successor wins.
    const afterDistance = (entries[nextAt]! - hash) >>> 0;
    const beforeDistance = (hash - entries[prevAt]!) >>> 0;
    return afterDistance <= beforeDistance ? entries[nextAt + 1]! : entries[prevAt + 1]!;
  }

  /**
   * Looks a member up by name, whatever its state.
   *
   * @param name the pod name
   * @returns the member, or undefined when the document does not list it
   */
  member(name: string): RingMember | undefined {
    return this.#byName.get(name);
  }

  /** Number of distinct tokens on the ring: ACTIVE members × vnodes, less the few collisions. */
  get tokenCount(): number {
    return this.#entries.length / 2;
  }
}

/** A room whose owner differs between two rings. */
export interface RoomMove {
  readonly roomId: string;
  /** The owner in the earlier ring (undefined if it had no ACTIVE member). */
  readonly from: RingMember | undefined;
  /** The owner in the later ring (undefined if it has no ACTIVE member). */
  readonly to: RingMember | undefined;
}

/**
 * The rooms that change owner from one ring version to the next: what a handoff must move.
 * Owners are compared by name, so a member whose address changed keeps its rooms.
 *
 * @param prev the ring in force
 * @param next the ring being applied
 * @param roomIds the rooms to check (typically those this pod owns under `prev`)
 * @returns one entry per moved room, in input order
 */
export function movedRooms(prev: HashRing, next: HashRing, roomIds: Iterable<string>): RoomMove[] {
  const moves: RoomMove[] = [];
  for (const roomId of roomIds) {
    const from = prev.ownerOf(roomId);
    const to = next.ownerOf(roomId);
    if (from?.name !== to?.name) moves.push({ roomId, from, to });
  }
  return moves;
}
