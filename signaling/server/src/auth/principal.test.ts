import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { isSignalingError } from "../errors.ts";
import {
  assertGrant,
  assertRoomAccess,
  createPrincipal,
  GRANTS,
  hasGrant,
  matchesRoomPattern,
  mayAccessRoom,
  principalFromClaims,
  TokenClaimsSchema,
} from "./principal.ts";

/** An independent oracle: the glob as an escaped, anchored, dotAll regular expression. */
function oracle(pattern: string, room: string): boolean {
  const body = pattern
    .split("*")
    .map((piece) => piece.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`, "s").test(room);
}

/** Characters that make the matcher's corner cases likely: metacharacters, `*`, a few letters. */
const alphabet = fc.constantFrom("a", "b", "-", ".", "*", "(", ")", "[", "]", "+", "?", "^", "$", "\\", "|", "{", "}", "\n", "é");
const patternArb = fc.string({ unit: alphabet, maxLength: 12 });
const roomArb = fc.string({ unit: alphabet.filter((c) => c !== "*"), maxLength: 16 });

describe("matchesRoomPattern", () => {
  test("examples", () => {
    const cases: [string, string, boolean][] = [
      ["lobby", "lobby", true],
      ["lobby", "lobby2", false],
      ["lobby", "Lobby", false],
      ["*", "anything", true],
      ["*", "", true],
      ["team-*", "team-red", true],
      ["team-*", "team-", true],
      ["team-*", "xteam-red", false],
      ["team-*", "team", false],
      ["*-prod", "eu-prod", true],
      ["*-prod", "eu-prod-2", false],
      ["a*b*c", "abc", true],
      ["a*b*c", "a-x-b-y-c", true],
      ["a*b*c", "acb", false],
      ["a**b", "ab", true],
      ["a*a", "a", false],
      ["a*a", "aa", true],
      ["a*a", "aba", true],
      ["*ab*ab*", "abab", true],
      ["*ab*ab*", "aab", false],
    ];
    for (const [pattern, room, expected] of cases) assert.equal(matchesRoomPattern(pattern, room), expected, `${pattern} vs ${room}`);
  });

  test("regex metacharacters are literal", () => {
    assert.equal(matchesRoomPattern("room.1", "room.1"), true);
    assert.equal(matchesRoomPattern("room.1", "roomX1"), false);
    assert.equal(matchesRoomPattern("a+b", "aab"), false);
    assert.equal(matchesRoomPattern("a+b", "a+b"), true);
    assert.equal(matchesRoomPattern("(.*)", "anything"), false);
    assert.equal(matchesRoomPattern("(.*)", "(.*)"), true);
    assert.equal(matchesRoomPattern("[abc]", "a"), false);
    assert.equal(matchesRoomPattern("^$", ""), false);
    assert.equal(matchesRoomPattern("\\d", "1"), false);
    assert.equal(matchesRoomPattern(".*", "x"), false);
    assert.equal(matchesRoomPattern(".*", ".x"), true);
    assert.equal(matchesRoomPattern("a|b", "a"), false);
  });

  test("hostile patterns finish (no backtracking blow-up)", () => {
    const pattern = `${"*a".repeat(60)}*b`;
    assert.equal(matchesRoomPattern(pattern, "a".repeat(128)), false);
    assert.equal(matchesRoomPattern(pattern, `${"a".repeat(127)}b`), true);
  });

  test("property: a pattern without * matches exactly itself", () => {
    fc.assert(
      fc.property(roomArb, roomArb, (pattern, room) => {
        assert.equal(matchesRoomPattern(pattern, room), pattern === room);
        assert.equal(matchesRoomPattern(pattern, pattern), true);
      }),
    );
  });

  test("property: * matches everything", () => {
    fc.assert(fc.property(fc.string(), (room) => matchesRoomPattern("*", room)));
  });

  test("property: prefix* matches every extension of the prefix", () => {
    fc.assert(fc.property(roomArb, fc.string(), (prefix, rest) => matchesRoomPattern(`${prefix}*`, prefix + rest)));
  });

  test("property: agrees with an escaped-regex oracle", () => {
    fc.assert(
      fc.property(patternArb, roomArb, (pattern, room) => {
        assert.equal(matchesRoomPattern(pattern, room), oracle(pattern, room), `${JSON.stringify(pattern)} vs ${JSON.stringify(room)}`);
      }),
      { numRuns: 2000 },
    );
  });

  test("property: a room built from the pattern by filling each * matches", () => {
    fc.assert(
      fc.property(patternArb, fc.array(roomArb, { minLength: 12, maxLength: 12 }), (pattern, fills) => {
        let i = 0;
        const room = pattern.replace(/\*/g, () => fills[i++] ?? "");
        assert.equal(matchesRoomPattern(pattern, room), true);
      }),
    );
  });
});

describe("Principal", () => {
  const alice = createPrincipal({ userId: "alice", roomPatterns: ["team-*", "lobby"], grants: ["join", "signal"], expiresAt: 1_000, tokenId: "t1" });

  test("createPrincipal builds a frozen principal with defaults", () => {
    const p = createPrincipal({ userId: "u" });
    assert.equal(Object.isFrozen(p), true);
    assert.equal(Object.isFrozen(p.roomPatterns), true);
    assert.deepEqual(p.roomPatterns, []);
    assert.equal(p.grants.size, 0);
    assert.equal(p.expiresAt, null);
    assert.equal("tokenId" in p, false);
    assert.equal(alice.tokenId, "t1");
  });

  test("mayAccessRoom checks every pattern", () => {
    assert.equal(mayAccessRoom(alice, "team-a"), true);
    assert.equal(mayAccessRoom(alice, "lobby"), true);
    assert.equal(mayAccessRoom(alice, "lobby-2"), false);
    assert.equal(mayAccessRoom(createPrincipal({ userId: "u" }), "lobby"), false);
  });

  test("hasGrant: grants are independent, admin implies nothing", () => {
    assert.equal(hasGrant(alice, "join"), true);
    assert.equal(hasGrant(alice, "broadcast"), false);
    const admin = createPrincipal({ userId: "root", grants: ["admin"] });
    for (const g of GRANTS) assert.equal(hasGrant(admin, g), g === "admin");
  });

  test("assertGrant and assertRoomAccess throw SIG_ERR_FORBIDDEN", () => {
    assert.doesNotThrow(() => assertGrant(alice, "signal"));
    assert.doesNotThrow(() => assertRoomAccess(alice, "team-x"));
    assert.throws(
      () => assertGrant(alice, "call"),
      (err) => isSignalingError(err) && err.code === "SIG_ERR_FORBIDDEN",
    );
    assert.throws(
      () => assertRoomAccess(alice, "secret"),
      (err) => isSignalingError(err) && err.code === "SIG_ERR_FORBIDDEN" && err.field === "room",
    );
  });
});

describe("principalFromClaims", () => {
  test("maps the claims", () => {
    const p = principalFromClaims({ sub: "alice", rooms: ["a-*"], grants: ["join", "call", "join"], exp: 1_700_000_000, jti: "j", extra: { x: 1 } });
    assert.equal(p.userId, "alice");
    assert.deepEqual(p.roomPatterns, ["a-*"]);
    assert.deepEqual([...p.grants].sort(), ["call", "join"]);
    assert.equal(p.expiresAt, 1_700_000_000_000);
    assert.equal(p.tokenId, "j");
  });

  test("absent rooms and grants mean none; absent exp means no expiry", () => {
    const p = principalFromClaims({ sub: "alice" });
    assert.deepEqual(p.roomPatterns, []);
    assert.equal(p.grants.size, 0);
    assert.equal(p.expiresAt, null);
    assert.equal(p.tokenId, undefined);
  });

  test("bad claims fail with SIG_ERR_AUTH_FAILED naming the claim, never its value", () => {
    const cases: [unknown, string][] = [
      [{}, "sub"],
      [{ sub: "" }, "sub"],
      [{ sub: "x".repeat(257) }, "sub"],
      [{ sub: 42 }, "sub"],
      [{ sub: "a", grants: ["join", "sudo-secret-grant"] }, "grants.1"],
      [{ sub: "a", grants: "join" }, "grants"],
      [{ sub: "a", rooms: "lobby" }, "rooms"],
      [{ sub: "a", rooms: [""] }, "rooms.0"],
      [{ sub: "a", rooms: Array.from({ length: 257 }, (_, i) => `r${i}`) }, "rooms"],
      [{ sub: "a", jti: 7 }, "jti"],
      [null, ""],
    ];
    for (const [claims, field] of cases) {
      assert.throws(
        () => principalFromClaims(claims),
        (err) => {
          assert.ok(isSignalingError(err));
          assert.equal(err.code, "SIG_ERR_AUTH_FAILED");
          assert.equal(err.field, field, JSON.stringify(claims).slice(0, 80));
          assert.ok(!err.message.includes("sudo-secret-grant"));
          return true;
        },
      );
    }
  });

  test("TokenClaimsSchema keeps unknown claims", () => {
    const parsed = TokenClaimsSchema.parse({ sub: "a", custom: true });
    assert.equal(parsed["custom"], true);
  });
});
