import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { HS_SECRET, keyPair } from "./fixtures.ts";
import { DEFAULT_TOKEN_TTL_SEC, issueToken } from "./token-issuer.ts";

const NOW_MS = 1_900_000_000_500;
const base = { key: HS_SECRET, alg: "HS256", sub: "alice", aud: "switchboard", iss: "https://issuer.test", nowMs: NOW_MS } as const;

describe("issueToken", () => {
  test("writes the Switchboard claims and header", async () => {
    const jwt = await issueToken({ ...base, kid: "k1", rooms: ["a-*"], grants: ["join", "call"], jti: "j1", notBeforeInSec: -1 });
    assert.deepEqual(decodeProtectedHeader(jwt), { alg: "HS256", typ: "JWT", kid: "k1" });
    assert.deepEqual(decodeJwt(jwt), {
      sub: "alice",
      aud: "switchboard",
      iss: "https://issuer.test",
      iat: 1_900_000_000,
      exp: 1_900_000_000 + DEFAULT_TOKEN_TTL_SEC,
      nbf: 1_899_999_999,
      rooms: ["a-*"],
      grants: ["join", "call"],
      jti: "j1",
    });
  });

  test("expiresInSec: null omits exp; absent rooms/grants are omitted", async () => {
    const claims = decodeJwt(await issueToken({ ...base, expiresInSec: null }));
    assert.equal("exp" in claims, false);
    assert.equal("rooms" in claims, false);
    assert.equal("grants" in claims, false);
  });

  test("extra claims override and remove", async () => {
    const claims = decodeJwt(await issueToken({ ...base, claims: { sub: undefined, custom: 1 } }));
    assert.equal("sub" in claims, false);
    assert.equal(claims["custom"], 1);
  });

  test("signs with PKCS#8 PEM private keys for the asymmetric algorithms", async () => {
    for (const [alg, pair] of [
      ["RS256", keyPair("rsa")],
      ["ES256", keyPair("ec")],
      ["EdDSA", keyPair("ed25519")],
    ] as const) {
      const jwt = await issueToken({ ...base, alg, key: pair.privatePem });
      assert.equal(decodeProtectedHeader(jwt).alg, alg);
    }
  });

  test("rejects a key that does not fit the algorithm", async () => {
    await assert.rejects(issueToken({ ...base, alg: "ES256", key: keyPair("rsa").privatePem }));
  });
});
