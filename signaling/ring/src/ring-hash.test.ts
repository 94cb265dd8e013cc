import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { MEMBER_HASH_SEEDS, memberTokens, murmur3, murmur3String, roomHash } from "./ring-hash.ts";

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

describe("murmur3", () => {
  test("matches the published MurmurHash3 x86_32 vectors", () => {
    // SMHasher / Wikipedia vectors: a port that differs here is not MurmurHash3.
    const vectors: Array<[string, number, number]> = [
      ["", 0, 0],
      ["", 1, 0x514e28b7],
      ["", 0xffffffff, 0x81f16f39],
      ["a", 0, 0x3c2569b2],
      ["abc", 0, 0xb3dd93fa],
      ["aaaa", 0x9747b28c, 0x5a97808a],
      ["hello", 0, 0x248bfa47],
      ["Hello, world!", 0x9747b28c, 0x24884cba],
      ["The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723],
      ["ππππππππ", 0x9747b28c, 0xd58063c1],
    ];
    for (const [text, seed, want] of vectors) {
      assert.equal(murmur3(utf8(text), seed), want, `bytes of ${JSON.stringify(text)}`);
      assert.equal(murmur3String(text, seed), want, `string ${JSON.stringify(text)}`);
    }
  });

  test("murmur3String equals murmur3 of the UTF-8 bytes, for any string", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.string({ unit: "grapheme" })), fc.integer(), (text, seed) => {
        assert.equal(murmur3String(text, seed), murmur3(utf8(text), seed));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("roomHash", () => {
  test("is stable: golden values (a change here moves every room in every cluster)", () => {
    assert.equal(roomHash("lobby"), 0xe2376723);
    assert.equal(roomHash("room-1"), 0x8dd99b39);
    assert.equal(roomHash("team:standup"), 0x28fefd89);
    assert.equal(roomHash("user@example.com"), 0x41cf9c5c);
  });
});

describe("memberTokens", () => {
  test("token i is murmur3 of le32(i) ‖ le32(a) ‖ le32(b), as documented", () => {
    const name = "switchboard-7";
    const a = murmur3(utf8(name), MEMBER_HASH_SEEDS[0]);
    const b = murmur3(utf8(name), MEMBER_HASH_SEEDS[1]);
    const out = new Uint32Array(70);
    memberTokens(name, 64, out, 6);
    for (let i = 0; i < 64; i++) {
      const bytes = new Uint8Array(12);
      const view = new DataView(bytes.buffer);
      view.setUint32(0, i, true);
      view.setUint32(4, a, true);
      view.setUint32(8, b, true);
      assert.equal(out[6 + i], murmur3(bytes, 0));
    }
    assert.deepEqual([...out.subarray(0, 6)], [0, 0, 0, 0, 0, 0]);
  });

  test("golden tokens", () => {
    const out = new Uint32Array(3);
    memberTokens("switchboard-0", 3, out, 0);
    assert.deepEqual([...out], [0x8739455c, 0x849b5004, 0x08376047]);
  });
});
