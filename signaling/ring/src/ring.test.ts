import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { DEFAULT_RING_VNODES, HashRing, movedRooms } from "./ring.ts";
import type { RingDocument, RingMember, RingMemberState } from "./ring-document.ts";
import { memberTokens, roomHash } from "./ring-hash.ts";

function member(name: string, state: RingMemberState = "ACTIVE"): RingMember {
  return { name, address: `${name}:8080`, state };
}

function podNames(count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => `switchboard-${from + i}`);
}

function ringOf(members: RingMember[], vnodes?: number): HashRing {
  return new HashRing({ version: 1, members, ...(vnodes === undefined ? {} : { vnodes }) });
}

// 10 M room hashes, computed once and shared (about a second): the big tests look owners up by
// hash so that they measure the ring, and the string path is checked against it separately.
let hashes: Uint32Array | undefined;
function roomHashes(count: number): Uint32Array {
  if (hashes === undefined || hashes.length < count) {
    hashes = new Uint32Array(count);
    for (let i = 0; i < count; i++) hashes[i] = roomHash(`room-${i}`);
  }
  return hashes.subarray(0, count);
}

/** Rooms per ACTIVE member (indexed like `activeMembers`). */
function loads(ring: HashRing, roomCount: number): Uint32Array {
  const index = new Map(ring.activeMembers.map((m, i) => [m, i]));
  const counts = new Uint32Array(ring.activeMembers.length);
  for (const hash of roomHashes(roomCount)) counts[index.get(ring.ownerOfHash(hash)!)!]!++;
  return counts;
}

interface Movement {
  moved: number;
  /** Moved rooms whose old owner is not `from` (when given). */
  wrongFrom: number;
  /** Moved rooms whose new owner is not `to` (when given). */
  wrongTo: number;
}

function movement(prev: HashRing, next: HashRing, roomCount: number, expect: { from?: string; to?: string }): Movement {
  const result = { moved: 0, wrongFrom: 0, wrongTo: 0 };
  for (const hash of roomHashes(roomCount)) {
    const before = prev.ownerOfHash(hash)?.name;
    const after = next.ownerOfHash(hash)?.name;
    if (before === after) continue;
    result.moved++;
    if (expect.from !== undefined && before !== expect.from) result.wrongFrom++;
    if (expect.to !== undefined && after !== expect.to) result.wrongTo++;
  }
  return result;
}

/**
 * The documented rule, by brute force: the ACTIVE member with the token nearest to the hash;
 * ties go to the token at or after the hash, then to the name that sorts first.
 */
function oracle(doc: RingDocument, hash: number): string | undefined {
  const active = doc.members.filter((m) => m.state === "ACTIVE").sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const vnodes = doc.vnodes ?? DEFAULT_RING_VNODES;
  const tokens = new Uint32Array(vnodes);
  let best: [distance: number, side: number, rank: number] | undefined;
  active.forEach((m, rank) => {
    memberTokens(m.name, vnodes, tokens, 0);
    for (const token of tokens) {
      for (const candidate of [
        [(token - hash) >>> 0, 0, rank],
        [(hash - token) >>> 0, 1, rank],
      ] as const) {
        if (best === undefined || candidate[0] < best[0] || (candidate[0] === best[0] && (candidate[1] < best[1] || (candidate[1] === best[1] && candidate[2] < best[2])))) {
          best = [...candidate];
        }
      }
    }
  });
  return best === undefined ? undefined : active[best[2]]?.name;
}

const arbitraryName = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,10}$/);
const arbitraryState = fc.constantFrom<RingMemberState>("JOINING", "ACTIVE", "LEAVING");
/** Small rings (few vnodes) so that wrap-around, ties and one-token arcs are common. */
const arbitraryDocument: fc.Arbitrary<RingDocument> = fc.record({
  version: fc.nat(),
  vnodes: fc.integer({ min: 1, max: 48 }),
  members: fc.uniqueArray(
    fc.record({ name: arbitraryName, state: arbitraryState }).map(({ name, state }) => member(name, state)),
    { selector: (m) => m.name, maxLength: 8 },
  ),
});
const arbitraryHash = fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff), fc.nat({ max: 0xffffffff }));

describe("HashRing", () => {
  test("golden owners: the same document gives the same owners in every process and version", () => {
    const ring = new HashRing({
      version: 3,
      members: podNames(5).map((name, i) => ({ name, address: `10.0.0.${i + 10}:8080`, state: "ACTIVE" })),
    });
    assert.equal(ring.vnodes, 2048);
    const golden: Record<string, string> = {
      lobby: "switchboard-1",
      "room-1": "switchboard-0",
      "room-2": "switchboard-3",
      "room-3": "switchboard-3",
      "team:standup": "switchboard-3",
      a: "switchboard-1",
      "user@example.com": "switchboard-2",
      ["x".repeat(128)]: "switchboard-1",
      "Q3-planning.2025": "switchboard-2",
      "0": "switchboard-3",
    };
    for (const [roomId, owner] of Object.entries(golden)) assert.equal(ring.ownerOf(roomId)?.name, owner, roomId);
  });

  test("exposes the document: version, vnodes, members sorted by name, frozen", () => {
    const ring = new HashRing({
      version: 9,
      vnodes: 16,
      members: [member("c", "LEAVING"), member("a"), member("b", "JOINING"), member("d")],
    });
    assert.equal(ring.version, 9);
    assert.equal(ring.vnodes, 16);
    assert.deepEqual(
      ring.members.map((m) => m.name),
      ["a", "b", "c", "d"],
    );
    assert.deepEqual(
      ring.activeMembers.map((m) => m.name),
      ["a", "d"],
    );
    assert.equal(ring.member("c")?.state, "LEAVING");
    assert.equal(ring.member("nope"), undefined);
    assert.ok(Object.isFrozen(ring) && Object.isFrozen(ring.members) && Object.isFrozen(ring.members[0]));
    assert.equal(ring.tokenCount, 32);
  });

  test("refuses a vnode count that is not a positive integer, or a ring too large to hold", () => {
    assert.throws(() => ringOf([member("a")], 0), RangeError);
    assert.throws(() => ringOf([member("a")], 1.5), RangeError);
    assert.throws(() => ringOf(podNames(3000).map((name) => member(name)), 16_384), /ring too large/);
  });

  test("no ACTIVE member: nobody owns anything; one ACTIVE member owns everything", () => {
    const none = ringOf([member("a", "JOINING"), member("b", "LEAVING")]);
    assert.equal(none.ownerOf("room-1"), undefined);
    assert.equal(none.ownerOfHash(0), undefined);
    assert.equal(ringOf([]).ownerOf("room-1"), undefined);
    const one = ringOf([member("a", "JOINING"), member("b"), member("c", "LEAVING")]);
    for (let i = 0; i < 100; i++) assert.equal(one.ownerOf(`room-${i}`)?.name, "b");
  });

  test("property: the owner is the documented nearest token (brute-force oracle)", () => {
    fc.assert(
      fc.property(arbitraryDocument, fc.array(arbitraryHash, { minLength: 1, maxLength: 20 }), (doc, hashList) => {
        const ring = new HashRing(doc);
        for (const hash of hashList) assert.equal(ring.ownerOfHash(hash)?.name, oracle(doc, hash), `hash ${hash}`);
      }),
      { numRuns: 400 },
    );
  });

  test("property: the oracle agrees on the edge cases: on a token, next to it, exactly between two", () => {
    const tinyDocument = fc.record({
      version: fc.nat(),
      vnodes: fc.integer({ min: 1, max: 4 }),
      members: fc.uniqueArray(
        fc.record({ name: arbitraryName, state: arbitraryState }).map(({ name, state }) => member(name, state)),
        { selector: (m) => m.name, maxLength: 4 },
      ),
    });
    fc.assert(
      fc.property(tinyDocument, (doc) => {
        const ring = new HashRing(doc);
        const all = new Uint32Array(doc.members.length * doc.vnodes);
        doc.members.forEach((m, i) => memberTokens(m.name, doc.vnodes, all, i * doc.vnodes));
        all.sort();
        const edges = new Set<number>([0, 0xffffffff]);
        all.forEach((token, i) => {
          const after = all[(i + 1) % all.length]!;
          const gap = (after - token) >>> 0;
          for (const hash of [token - 1, token, token + 1, token + Math.floor(gap / 2), token + Math.ceil(gap / 2)]) edges.add(hash >>> 0);
        });
        for (const hash of edges) assert.equal(ring.ownerOfHash(hash)?.name, oracle(doc, hash), `hash ${hash}`);
      }),
      { numRuns: 500 },
    );
  });

  test("two members on one position: the name that sorts first owns it, in any document order", () => {
    // Found by search: with one vnode these names hash to the same token (0xdec8a1eb).
    const [first, second] = ["pod-120900", "pod-50278"];
    const a = new Uint32Array(1);
    const b = new Uint32Array(1);
    memberTokens(first, 1, a, 0);
    memberTokens(second, 1, b, 0);
    assert.equal(a[0], b[0]);
    for (const order of [[first, second], [second, first]]) {
      const ring = ringOf(order.map((name) => member(name)), 1);
      assert.equal(ring.tokenCount, 1);
      for (const hash of [0, a[0]!, a[0]! + 1, 0xffffffff]) assert.equal(ring.ownerOfHash(hash)?.name, first);
    }
    const doc: RingDocument = { version: 1, vnodes: 1, members: [member(second), member("pod-0"), member(first)] };
    const three = new HashRing(doc);
    const withoutFirst = ringOf([member(second), member("pod-0")], 1);
    for (let i = 0; i < 200; i++) {
      const hash = (a[0]! + (i - 100) * 0x01000000) >>> 0;
      assert.equal(three.ownerOfHash(hash)?.name, oracle(doc, hash));
      const before = three.ownerOfHash(hash)?.name;
      if (before !== first) assert.equal(withoutFirst.ownerOfHash(hash)?.name, before);
    }
  });

  test("property: the owner is an ACTIVE member, and ownerOf is ownerOfHash of roomHash", () => {
    fc.assert(
      fc.property(arbitraryDocument, fc.array(fc.string({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 20 }), (doc, roomIds) => {
        const ring = new HashRing(doc);
        const anyActive = doc.members.some((m) => m.state === "ACTIVE");
        for (const roomId of roomIds) {
          const owner = ring.ownerOf(roomId);
          assert.equal(owner === undefined, !anyActive);
          if (owner !== undefined) assert.equal(owner.state, "ACTIVE");
          assert.equal(owner, ring.ownerOfHash(roomHash(roomId)));
        }
      }),
      { numRuns: 300 },
    );
  });

  test("property: member order in the document does not change any owner", () => {
    fc.assert(
      fc.property(arbitraryDocument, fc.func(fc.integer()), fc.array(arbitraryHash, { maxLength: 30 }), (doc, key, hashList) => {
        const shuffled = [...doc.members].sort((a, b) => key(a.name) - key(b.name) || (a.name < b.name ? -1 : 1));
        const ring = new HashRing(doc);
        const other = new HashRing({ ...doc, members: shuffled });
        for (const hash of hashList) assert.equal(other.ownerOfHash(hash)?.name, ring.ownerOfHash(hash)?.name);
      }),
      { numRuns: 300 },
    );
  });

  test("property: adding a member moves rooms only to it; removing one moves only its rooms", () => {
    fc.assert(
      fc.property(arbitraryDocument, arbitraryName, fc.array(arbitraryHash, { maxLength: 50 }), (doc, extra, hashList) => {
        fc.pre(!doc.members.some((m) => m.name === extra));
        const small = new HashRing(doc);
        const big = new HashRing({ ...doc, members: [...doc.members, member(extra)] });
        for (const hash of hashList) {
          const before = small.ownerOfHash(hash)?.name;
          const after = big.ownerOfHash(hash)?.name;
          // Read backwards, the same pair is the removal of `extra`.
          if (before !== after) assert.equal(after, extra);
        }
      }),
      { numRuns: 400 },
    );
  });

  test("balance: 10 M rooms over 1 000 members, max/mean ≤ 1.10", () => {
    const roomCount = 10_000_000;
    const ring = ringOf(podNames(1000).map((name) => member(name)));
    const index = new Map(ring.activeMembers.map((m, i) => [m, i]));
    const hashList = roomHashes(roomCount);
    // Owners kept per room, so the movement pass below looks up only the grown ring.
    const owners = new Uint16Array(roomCount);
    const counts = new Uint32Array(1000);
    for (let i = 0; i < roomCount; i++) counts[(owners[i] = index.get(ring.ownerOfHash(hashList[i]!)!)!)]!++;
    const mean = roomCount / 1000;
    const maxOverMean = Math.max(...counts) / mean;
    const minOverMean = Math.min(...counts) / mean;
    assert.ok(maxOverMean <= 1.1, `max/mean ${maxOverMean}`);
    assert.ok(minOverMean >= 0.9, `min/mean ${minOverMean}`);

    // Movement at the same scale: one more member takes ≤ 1.1/N of the rooms, all to itself.
    const grown = ringOf([...ring.members, member("switchboard-1000")]);
    let moved = 0;
    for (let i = 0; i < roomCount; i++) {
      const after = grown.ownerOfHash(hashList[i]!)!.name;
      if (after === ring.activeMembers[owners[i]!]!.name) continue;
      moved++;
      assert.equal(after, "switchboard-1000");
    }
    assert.ok(moved / roomCount <= 1.1 / 1000, `moved ${moved / roomCount}`);
  });

  for (const n of [1, 3, 10, 100]) {
    test(`movement: adding one member to ${n} moves ≤ 1.1/N of 1 M rooms, all to the new member`, () => {
      const names = podNames(n);
      const prev = ringOf(names.map((name) => member(name)));
      const next = ringOf([...names, "switchboard-new"].map((name) => member(name)));
      const { moved, wrongTo } = movement(prev, next, 1_000_000, { to: "switchboard-new" });
      assert.equal(wrongTo, 0);
      assert.ok(moved / 1_000_000 <= 1.1 / n, `moved ${moved / 1_000_000}`);
      assert.ok(moved > 0);
    });
  }

  test("removing a member, or marking it LEAVING or JOINING, moves exactly its rooms", () => {
    const names = podNames(10);
    const prev = ringOf(names.map((name) => member(name)));
    const owned = loads(prev, 1_000_000)[prev.activeMembers.findIndex((m) => m.name === "switchboard-4")]!;
    const variants = [
      names.filter((name) => name !== "switchboard-4").map((name) => member(name)),
      names.map((name) => member(name, name === "switchboard-4" ? "LEAVING" : "ACTIVE")),
      names.map((name) => member(name, name === "switchboard-4" ? "JOINING" : "ACTIVE")),
    ];
    for (const members of variants) {
      const { moved, wrongFrom } = movement(prev, ringOf(members), 1_000_000, { from: "switchboard-4" });
      assert.equal(wrongFrom, 0);
      assert.equal(moved, owned);
    }
  });

  test("a member's address does not place it: changing it moves nothing", () => {
    const prev = ringOf(podNames(5).map((name) => member(name)));
    const next = ringOf(podNames(5).map((name) => ({ ...member(name), address: `ws://${name}.new:9000` })));
    assert.equal(movement(prev, next, 100_000, {}).moved, 0);
  });
});

describe("movedRooms", () => {
  test("lists the rooms whose owner changes, with both owners", () => {
    const prev = ringOf(podNames(4).map((name) => member(name)));
    const next = ringOf(podNames(4).map((name) => member(name, name === "switchboard-2" ? "LEAVING" : "ACTIVE")));
    const roomIds = Array.from({ length: 2000 }, (_, i) => `room-${i}`);
    const moves = movedRooms(prev, next, roomIds);
    const expected = roomIds.filter((id) => prev.ownerOf(id)?.name === "switchboard-2");
    assert.deepEqual(
      moves.map((m) => m.roomId),
      expected,
    );
    for (const move of moves) {
      assert.equal(move.from?.name, "switchboard-2");
      assert.equal(move.to, next.ownerOf(move.roomId));
      assert.notEqual(move.to?.name, "switchboard-2");
    }
    assert.deepEqual(movedRooms(prev, prev, roomIds), []);
    const empty = ringOf([]);
    assert.deepEqual(
      movedRooms(prev, empty, ["lobby"]).map((m) => [m.from?.name, m.to]),
      [[prev.ownerOf("lobby")?.name, undefined]],
    );
  });
});
