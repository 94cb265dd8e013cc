import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { mintTurnCredentials, TurnConfigSchema } from "./turn-credentials.ts";

const SECRET = "north-pole-secret-123";
const NOW_MS = 1_700_000_000_000;

describe("mintTurnCredentials", () => {
  test("matches a fixed vector (HMAC-SHA1 computed outside this code)", () => {
    const minted = mintTurnCredentials({ secret: SECRET, userId: "alice", ttlSec: 3600, urls: ["turn:turn.test:3478"], now: NOW_MS });
    // base64(HMAC-SHA1("north-pole-secret-123", "1700003600:alice")), computed with Python's hmac.
    assert.deepEqual(minted, {
      iceServers: [{ urls: ["turn:turn.test:3478"], username: "1700003600:alice", credential: "62IsNsXqVM4boAxayqsSoBCE8VQ=" }],
      ttlSec: 3600,
    });
  });

  test("agrees with node:crypto for user ids containing colons", () => {
    const minted = mintTurnCredentials({ secret: SECRET, userId: "user:with:colons", ttlSec: 3600, urls: ["turns:t.test:5349"], now: NOW_MS });
    const server = minted.iceServers[0];
    assert.equal(server?.username, "1700003600:user:with:colons");
    assert.equal(server?.credential, "4h6MrDPDjmQ959Fr0JaI3E5+sl0=");
    assert.equal(server?.credential, createHmac("sha1", SECRET).update("1700003600:user:with:colons").digest("base64"));
  });

  test("username is <expiry unix seconds>:<userId>, credential is 20 bytes of base64", () => {
    const now = 1_234_567_890_999; // the fractional second is dropped
    const minted = mintTurnCredentials({ secret: SECRET, userId: "bob@example.com", ttlSec: 600, urls: ["turn:a", "turn:b?transport=tcp"], now });
    const server = minted.iceServers[0];
    assert.ok(server);
    assert.match(server.username ?? "", /^\d+:bob@example\.com$/);
    assert.equal(server.username, `${1_234_567_890 + 600}:bob@example.com`);
    assert.match(server.credential ?? "", /^[A-Za-z0-9+/]{27}=$/);
    assert.equal(Buffer.from(server.credential ?? "", "base64").length, 20);
    assert.deepEqual(server.urls, ["turn:a", "turn:b?transport=tcp"]);
    assert.equal(minted.ttlSec, 600);
  });

  test("STUN urls come first and carry no credentials", () => {
    const minted = mintTurnCredentials({ secret: SECRET, userId: "u", ttlSec: 60, urls: ["turn:t"], stunUrls: ["stun:s1", "stun:s2"], now: NOW_MS });
    assert.deepEqual(minted.iceServers[0], { urls: ["stun:s1", "stun:s2"] });
    assert.equal(minted.iceServers.length, 2);
  });

  test("no TURN entry without TURN urls", () => {
    const minted = mintTurnCredentials({ secret: SECRET, userId: "u", ttlSec: 60, urls: [], stunUrls: ["stun:s"], now: NOW_MS });
    assert.deepEqual(minted.iceServers, [{ urls: ["stun:s"] }]);
  });

  test("different users and secrets give different credentials", () => {
    const a = mintTurnCredentials({ secret: SECRET, userId: "a", ttlSec: 60, urls: ["turn:t"], now: NOW_MS }).iceServers[0]?.credential;
    const b = mintTurnCredentials({ secret: SECRET, userId: "b", ttlSec: 60, urls: ["turn:t"], now: NOW_MS }).iceServers[0]?.credential;
    const c = mintTurnCredentials({ secret: `${SECRET}x`, userId: "a", ttlSec: 60, urls: ["turn:t"], now: NOW_MS }).iceServers[0]?.credential;
    assert.notEqual(a, b);
    assert.notEqual(a, c);
  });
});

describe("TurnConfigSchema", () => {
  test("defaults", () => {
    assert.deepEqual(TurnConfigSchema.parse({}), { urls: [], ttlSec: 3600, stunUrls: [] });
  });

  test("coerces ttlSec from the environment's strings", () => {
    assert.equal(TurnConfigSchema.parse({ ttlSec: "900" }).ttlSec, 900);
  });

  test("TURN urls need a secret", () => {
    const r = TurnConfigSchema.safeParse({ urls: ["turn:t"] });
    assert.equal(r.success, false);
    assert.deepEqual(r.error?.issues.map((i) => i.path.join(".")), ["secret"]);
  });

  test("refuses wrong schemes, short secrets and silly lifetimes", () => {
    for (const input of [
      { urls: ["http://t"], secret: SECRET },
      { stunUrls: ["turn:t"] },
      { secret: "short" },
      { ttlSec: 10 },
      { ttlSec: 86_401 },
    ]) {
      assert.equal(TurnConfigSchema.safeParse(input).success, false, JSON.stringify(input));
    }
  });

  test("issues never echo the secret", () => {
    const r = TurnConfigSchema.safeParse({ secret: "tiny-secret" });
    assert.equal(r.success, false);
    assert.ok(!JSON.stringify(r.error?.issues).includes("tiny-secret"));
  });
});
