/**
 * The consistent-hash ring that maps a room to its owner pod.
 *
 * Scheme: a classic token ring (Karger et al.; Cortex/Mimir, Envoy's ring hash). Each ACTIVE
 * member puts {@link DEFAULT_RING_VNODES} virtual nodes ("tokens") on a 32-bit circle at positions
 * that depend only on its name ({@link memberTokens}); a room belongs to the member whose token is
 * the first at or after the room's hash ({@link roomHash}), wrapping around. Because tokens depend
 * on nothing but the name:
 *
 * - adding a member moves only the rooms it takes (about 1/(N+1) of them) and all to it;
 * - removing a member (or taking it out of ACTIVE) moves only its own rooms;
 * - the owner does not depend on the order of members in the document.
 *
 * Why so many vnodes: a member's share is the sum of its arcs, whose relative spread is about
 * 1/sqrt(vnodes). With 1 000 members the largest share is about 3.3 standard deviations above the
 * mean, so max/mean ≈ 1 + 3.3 * sqrt(1/vnodes + members/rooms): 1.11 at 1 024 vnodes, 1.08 at
 * 2 048 and 1.06 at 4 096 with 10 M rooms. 4 096 keeps the worst member under 1.10 with margin for
 * unlucky name sets (see `ring-bench.ts` for measured figures). Maglev tables balance better but
 * also move rooms between members that stay, and jump hash can only remove the last member, so
 * neither fits a handoff that must move as little as possible.
 *
 * Cost: 6 bytes per token plus a 4-byte bucket index entry per ~4 tokens, i.e. about 28 MB and a
 * build of a few hundred milliseconds for 1 000 members; build once per ring version. A lookup is
 * one MurmurHash3 of the room id, one bucket read and a short scan (no search, no allocation).
 *
 * @module
 */
import { memberTokens, roomHash } from "./ring-hash.ts";
import type { RingDocument, RingMember } from "./ring-document.ts";

/** Virtual nodes per member when the document does not say; see the module comment for why. */
export const DEFAULT_RING_VNODES = 4096;

// Aim for about this many tokens per bucket of the lookup index: a scan of a few adjacent
// Uint32s costs less than a binary search over millions and the index stays a quarter the size.
const TOKENS_PER_BUCKET = 4;
const MAX_INDEX_BITS = 24;

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
  /** Token positions, ascending; equal positions in ascending owner index. */
  readonly #tokens: Uint32Array;
  /** `#owners[i]` is the index in `activeMembers` of the member that put `#tokens[i]`. */
  readonly #owners: Uint16Array;
  /** `#bucketStart[b]` is the index of the first token whose top bits are ≥ b; one extra entry at the end. */
  readonly #bucketStart: Uint32Array;
  /** 32 minus the index bits: `hash >>> #shift` is the bucket. */
  readonly #shift: number;

  /**
   * Builds the ring of one document version.
   *
   * @param doc a validated document (see `parseRingDocument`)
   */
  constructor(doc: RingDocument) {
    this.version = doc.version;
    this.vnodes = doc.vnodes ?? DEFAULT_RING_VNODES;
    this.members = Object.freeze(doc.members.map((m) => Object.freeze({ ...m })).sort(byName));
    this.activeMembers = Object.freeze(this.members.filter((m) => m.state === "ACTIVE"));
    this.#byName = new Map(this.members.map((m) => [m.name, m]));

    const memberCount = this.activeMembers.length;
    const tokenCount = memberCount * this.vnodes;
    const indexBits = Math.max(1, Math.min(MAX_INDEX_BITS, Math.floor(Math.log2(Math.max(2, tokenCount / TOKENS_PER_BUCKET)))));
    const bucketCount = 2 ** indexBits;
    const shift = 32 - indexBits;

    const raw = new Uint32Array(tokenCount);
    this.activeMembers.forEach((m, index) => memberTokens(m.name, this.vnodes, raw, index * this.vnodes));

    // Counting sort on the top bits (tokens are uniform, so buckets are small and even), which
    // also yields the lookup index; then insertion sort inside each bucket.
    // Counting sort on the top bits (tokens are uniform, so buckets are small and even), then an
    // insertion sort inside each bucket. Filled in member order, so equal tokens sit in ascending
    // owner index and the stable insertion sort keeps them so.
    const counts = new Uint32Array(bucketCount + 1);
    for (let i = 0; i < tokenCount; i++) counts[(raw[i]! >>> shift) + 1]!++;
    for (let b = 1; b <= bucketCount; b++) counts[b]! += counts[b - 1]!;
    const next = counts.slice(0, bucketCount);
    const sorted = new Uint32Array(tokenCount);
    const sortedOwners = new Uint16Array(tokenCount);
    for (let i = 0; i < tokenCount; i++) {
      const token = raw[i]!;
      const at = next[token >>> shift]!++;
      sorted[at] = token;
      sortedOwners[at] = Math.floor(i / this.vnodes);
    }
    for (let b = 0; b < bucketCount; b++) {
      const start = counts[b]!;
      const end = counts[b + 1]!;
      for (let i = start + 1; i < end; i++) {
        const token = sorted[i]!;
        const owner = sortedOwners[i]!;
        let j = i - 1;
        while (j >= start && sorted[j]! > token) {
          sorted[j + 1] = sorted[j]!;
          sortedOwners[j + 1] = sortedOwners[j]!;
          j--;
        }
        sorted[j + 1] = token;
        sortedOwners[j + 1] = owner;
      }
    }

    // Two members on one position (about T²/2³³ of them: a few hundred at 2 M tokens): the one
    // whose name sorts first keeps it, whatever the document order, and the other copy could
    // never win, so drop it and keep positions strictly ascending for the lookup.
    let unique = 0;
    for (let i = 0; i < tokenCount; i++) {
      if (unique > 0 && sorted[i] === sorted[unique - 1]) continue;
      sorted[unique] = sorted[i]!;
      sortedOwners[unique] = sortedOwners[i]!;
      unique++;
    }
    const tokens = sorted.slice(0, unique);
    const owners = sortedOwners.slice(0, unique);
    const bucketStart = new Uint32Array(bucketCount + 1);
    for (let i = 0; i < unique; i++) bucketStart[(tokens[i]! >>> shift) + 1]!++;
    for (let b = 1; b <= bucketCount; b++) bucketStart[b]! += bucketStart[b - 1]!;
    this.#tokens = tokens;
    this.#owners = owners;
    this.#bucketStart = bucketStart;
    this.#shift = shift;
    Object.freeze(this);
  }

  /**
   * The member that owns a room: the ACTIVE member whose token is the first at or after the
   * room's hash. Deterministic across processes; allocation-free for ASCII room ids.
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
    const tokens = this.#tokens;
    const last = tokens.length - 1;
    const bucket = hash >>> this.#shift;
    let next = this.#bucketStart[bucket]!;
    const end = this.#bucketStart[bucket + 1]!;
    while (next < end && tokens[next]! < hash) next++;
    // Past the bucket, tokens[end] is the successor: every later token is above this bucket.
    // Past the last token, wrap to the first; the predecessor wraps the other way.
    if (next > last) next = 0;
    const prev = next === 0 ? last : next - 1;
    // Circular distances in 32-bit arithmetic; on a tie the successor wins.
    const afterDistance = (tokens[next]! - hash) >>> 0;
    const beforeDistance = (hash - tokens[prev]!) >>> 0;
    return afterDistance <= beforeDistance ? this.#owners[next]! : this.#owners[prev]!;
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

  /** Number of tokens on the ring: ACTIVE members × vnodes. */
  get tokenCount(): number {
    return this.#tokens.length;
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
