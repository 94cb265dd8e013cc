/**
 * The ring's hash functions. Their output is part of the cluster's wire contract: every pod, of
 * every version, must put a room on the same owner, so nothing here may change without moving
 * every room in every cluster. The golden tables in `ring-hash.test.ts` and `ring.test.ts` catch
 * an accidental change.
 *
 * The function is MurmurHash3 x86_32 (Austin Appleby, public domain), written with 32-bit integer
 * math (`Math.imul`, shifts) because a 64-bit hash through BigInt costs microseconds per call and
 * node:crypto's md5 costs a native call plus a Buffer per lookup. It is standard MurmurHash3, so a
 * tool in another language can compute owners with any MurmurHash3 library.
 *
 * @module
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** The seed of {@link roomHash}. */
export const ROOM_HASH_SEED = 0;
/** Seeds of the two 32-bit halves of a member's name hash (see {@link memberTokens}). */
export const MEMBER_HASH_SEEDS = [0x9747b28c, 0x5bd1e995] as const;

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixH(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * MurmurHash3 x86_32 of a byte string.
 *
 * @param bytes the input
 * @param seed a 32-bit seed
 * @returns an unsigned 32-bit integer
 */
export function murmur3(bytes: Uint8Array, seed: number): number {
  const len = bytes.length;
  const end = len & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < end; i += 4) {
    h = mixH(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  const rest = len & 3;
  if (rest !== 0) {
    let k = bytes[i]!;
    if (rest > 1) k |= bytes[i + 1]! << 8;
    if (rest > 2) k |= bytes[i + 2]! << 16;
    h ^= mixK(k);
  }
  return fmix(h ^ len);
}

const encoder = new TextEncoder();

/**
 * MurmurHash3 x86_32 of the UTF-8 bytes of `text`.
 *
 * Reads ASCII straight from the UTF-16 code units (where they equal the UTF-8 bytes), so the hot
 * path allocates nothing; any other text is encoded first. Lone surrogates encode as U+FFFD, as
 * `TextEncoder` does, so two ids that differ only there hash alike.
 *
 * @param text the input
 * @param seed a 32-bit seed
 * @returns an unsigned 32-bit integer, equal to `murmur3(utf8(text), seed)`
 */
export function murmur3String(text: string, seed: number): number {
  const len = text.length;
  const end = len & ~3;
  let h = seed | 0;
  // OR of every code unit: above 0x7f means the bytes are not the code units; start over.
  let wide = 0;
  let i = 0;
  for (; i < end; i += 4) {
    const c0 = text.charCodeAt(i);
    const c1 = text.charCodeAt(i + 1);
    const c2 = text.charCodeAt(i + 2);
    const c3 = text.charCodeAt(i + 3);
    wide |= c0 | c1 | c2 | c3;
    h = mixH(h, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24));
  }
  const rest = len & 3;
  if (rest !== 0) {
    const c0 = text.charCodeAt(i);
    const c1 = rest > 1 ? text.charCodeAt(i + 1) : 0;
    const c2 = rest > 2 ? text.charCodeAt(i + 2) : 0;
    wide |= c0 | c1 | c2;
    h ^= mixK(c0 | (c1 << 8) | (c2 << 16));
  }
  if (wide > 0x7f) return murmur3(encoder.encode(text), seed);
  return fmix(h ^ len);
}

/**
 * The ring position of a room: MurmurHash3 x86_32 of the room id's UTF-8 bytes, seed
 * {@link ROOM_HASH_SEED}. Stable across processes, platforms and versions.
 *
 * @param roomId the room id (any string; protocol room ids are ASCII)
 * @returns an unsigned 32-bit position on the ring
 */
export function roomHash(roomId: string): number {
  return murmur3String(roomId, ROOM_HASH_SEED);
}

/**
 * Writes the ring positions (tokens) of one member's virtual nodes into `out[offset…offset+count)`.
 *
 * Token `i` is MurmurHash3 x86_32, seed 0, of the 12 bytes `le32(i) ‖ le32(a) ‖ le32(b)` where
 * `a`, `b` = MurmurHash3 x86_32 of the UTF-8 name with the two {@link MEMBER_HASH_SEEDS}. Tokens
 * depend on the member's name only, never on the other members, which is what makes the ring
 * consistent: a member joining or leaving moves only the rooms it takes or gives up. The 64-bit
 * name hash keeps two names from sharing a whole token set (with 32 bits, 1 000 names would
 * collide once in ~9 000 clusters). The vnode index goes first so that all 64 bits reach every
 * token: hashed after the name, they would first be squeezed into one 32-bit state.
 *
 * @param name the member's name
 * @param count how many tokens (the ring's vnodes per member)
 * @param out where the tokens go
 * @param offset the first index written
 */
export function memberTokens(name: string, count: number, out: Uint32Array, offset: number): void {
  const a = murmur3String(name, MEMBER_HASH_SEEDS[0]);
  const b = murmur3String(name, MEMBER_HASH_SEEDS[1]);
  for (let i = 0; i < count; i++) {
    // Inlined murmur3 of three 4-byte blocks (no tail): the ring builds millions of these.
    let h = mixH(0, i);
    h = mixH(h, a);
    h = mixH(h, b);
    out[offset + i] = fmix(h ^ 12);
  }
}
