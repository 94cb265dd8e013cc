import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import type { JWK } from "jose";
import { createAuthenticator, type AuthConfigInput } from "./authenticator.ts";
import { AUDIENCE, expectRejection, HS_SECRET, ISSUER, keyPair, recordingLogger, startJwksServer, type TestKeyPair } from "./fixtures.ts";
import { issueToken } from "./token-issuer.ts";

const keyA = keyPair("rsa");
const keyB = keyPair("rsa");
const keyEc = keyPair("ec");

function jwk(pair: TestKeyPair, kid: string, alg = "RS256"): JWK {
  return { ...pair.publicJwk, kid, alg, use: "sig" };
}

function sign(pair: TestKeyPair, kid: string | undefined, alg: "RS256" | "ES256" = "RS256"): Promise<string> {
  return issueToken({
    key: pair.privatePem,
    alg,
    ...(kid === undefined ? {} : { kid }),
    sub: `user-${kid ?? "none"}`,
    grants: ["join"],
    aud: AUDIENCE,
    iss: ISSUER,
    expiresInSec: 300,
  });
}

function jwksAuth(t: TestContext, jwksUrl: string, config: Partial<AuthConfigInput> = {}) {
  const log = recordingLogger();
  const auth = createAuthenticator({ mode: "jwt", audience: AUDIENCE, issuer: ISSUER, jwksUrl, jwksCooldownMs: 0, ...config }, log);
  t.after(() => auth.close());
  return { auth, log };
}

describe("remote JWKS", () => {
  test("key rotation: old kid valid, new kid verifies after a refetch, removed kid fails", async (t) => {
    const server = await startJwksServer(t, [jwk(keyA, "a")]);
    const { auth, log } = jwksAuth(t, server.url);
    const tokenA = await sign(keyA, "a");
    assert.equal((await auth.verify(tokenA)).userId, "user-a");
    assert.equal(server.requests(), 1);

    server.setKeys([jwk(keyB, "b")]);
    const tokenB = await sign(keyB, "b");
    assert.equal((await auth.verify(tokenB)).userId, "user-b");
    assert.equal(server.requests(), 2, "the unknown kid triggered one refetch");

    const err = await expectRejection(auth.verify(tokenA), "SIG_ERR_AUTH_FAILED", tokenA, log);
    assert.equal(err.message, "token signing key unknown");
    assert.equal(server.requests(), 3);
    assert.deepEqual(log.entries, []);
  });

  test("during the overlap both kids verify, from one cached fetch", async (t) => {
    const server = await startJwksServer(t, [jwk(keyA, "a"), jwk(keyB, "b")]);
    const { auth } = jwksAuth(t, server.url);
    await auth.verify(await sign(keyA, "a"));
    await auth.verify(await sign(keyB, "b"));
    await auth.verify(await sign(keyA, "a"));
    assert.equal(server.requests(), 1);
  });

  test("unknown kids cannot hammer the issuer: refetches wait for the cooldown", async (t) => {
    const server = await startJwksServer(t, [jwk(keyA, "a")]);
    const { auth } = jwksAuth(t, server.url, { jwksCooldownMs: 60_000 });
    await auth.verify(await sign(keyA, "a"));
    server.setKeys([jwk(keyB, "b")]);
    for (let i = 0; i < 20; i++) {
      const jwt = await sign(keyB, `b-${i}`);
      await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt);
    }
    // Even the rotated-in kid waits for the cooldown.
    const tokenB = await sign(keyB, "b");
    await expectRejection(auth.verify(tokenB), "SIG_ERR_AUTH_FAILED", tokenB);
    assert.equal(server.requests(), 1);
  });

  test("concurrent first verifications share one fetch", async (t) => {
    const server = await startJwksServer(t, [jwk(keyA, "a")]);
    const { auth } = jwksAuth(t, server.url);
    const jwt = await sign(keyA, "a");
    const results = await Promise.all(Array.from({ length: 10 }, () => auth.verify(jwt)));
    assert.equal(results.length, 10);
    assert.equal(server.requests(), 1);
  });

  test("a token without kid is tried against each key of its type", async (t) => {
    const server = await startJwksServer(t, [jwk(keyA, "a"), jwk(keyB, "b"), jwk(keyEc, "e", "ES256")]);
    const { auth } = jwksAuth(t, server.url);
    assert.equal((await auth.verify(await sign(keyB, undefined))).userId, "user-none");
    assert.equal((await auth.verify(await sign(keyEc, undefined, "ES256"))).userId, "user-none");
  });

  test("the JWKS is never consulted for HS tokens", async (t) => {
    const server = await startJwksServer(t, [jwk(keyA, "a")]);
    const { auth } = jwksAuth(t, server.url);
    const jwt = await issueToken({ key: HS_SECRET, alg: "HS256", kid: "a", sub: "m", aud: AUDIENCE, iss: ISSUER });
    assert.equal((await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt)).message, "token signing key unknown");
    assert.equal(server.requests(), 0);
  });

  test("a configured key with the token's kid is used without fetching", async (t) => {
    const server = await startJwksServer(t, [jwk(keyB, "b")]);
    const { auth } = jwksAuth(t, server.url, { publicKeys: [`kid=a ${keyA.publicPem}`] });
    await auth.verify(await sign(keyA, "a"));
    assert.equal(server.requests(), 0);
    await auth.verify(await sign(keyB, "b"));
    assert.equal(server.requests(), 1);
  });

  test("issuer down → SIG_ERR_UNAVAILABLE, logged once; recovers when it is back", async (t) => {
    const first = await startJwksServer(t, [jwk(keyA, "a")]);
    const port = Number(new URL(first.url).port);
    await first.close();
    const { auth, log } = jwksAuth(t, first.url);
    const jwt = await sign(keyA, "a");
    for (let i = 0; i < 3; i++) {
      const err = await expectRejection(auth.verify(jwt), "SIG_ERR_UNAVAILABLE", jwt, log);
      assert.equal(err.message, "token signing keys unavailable");
      assert.equal(err.retryable, true);
    }
    const errors = log.entries.filter((e) => e.level === "error");
    assert.equal(errors.length, 1, "repeated failures are throttled");
    assert.deepEqual((errors[0]?.obj as { jwksUrl?: string }).jwksUrl, first.url);

    const second = await startJwksServer(t, [jwk(keyA, "a")], { port });
    assert.equal((await auth.verify(jwt)).userId, "user-a");
    assert.equal(second.requests(), 1);
  });

  test("issuer hangs → SIG_ERR_UNAVAILABLE after jwksTimeoutMs", async (t) => {
    const server = await startJwksServer(t, [], { hang: true });
    const { auth, log } = jwksAuth(t, server.url, { jwksTimeoutMs: 100 });
    const jwt = await sign(keyA, "a");
    await expectRejection(auth.verify(jwt), "SIG_ERR_UNAVAILABLE", jwt, log);
    assert.equal(server.requests(), 1);
  });

  test("issuer serves garbage → SIG_ERR_UNAVAILABLE", async (t) => {
    const server = await startJwksServer(t, []);
    const { auth, log } = jwksAuth(t, server.url);
    const jwt = await sign(keyA, "a");
    for (const body of ["<html>oops</html>", JSON.stringify({ not: "a jwks" }), JSON.stringify({ keys: [{ ...keyA.privateKey.export({ format: "jwk" }), kid: "a" }] })]) {
      server.setBody(body);
      await expectRejection(auth.verify(jwt), "SIG_ERR_UNAVAILABLE", jwt, log);
    }
  });

  test("plain http to a non-local issuer is warned about", (t) => {
    const cases: [string, boolean][] = [
      ["http://idp.example.com/jwks.json", true],
      ["https://idp.example.com/jwks.json", false],
      ["http://127.0.0.1:9/jwks.json", false],
      ["http://auth.identity.svc.cluster.local/jwks.json", false],
    ];
    for (const [url, warns] of cases) {
      const { log } = jwksAuth(t, url);
      assert.equal(log.entries.some((e) => e.level === "warn" && e.msg.includes("not https")), warns, url);
    }
  });
});
