import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import fc from "fast-check";
import { isSignalingError } from "../errors.ts";
import { AuthConfigSchema, createAuthenticator, MAX_TOKEN_LENGTH, type AuthConfigInput, type JwsAlgorithm } from "./authenticator.ts";
import { assertRejection, AUDIENCE, b64url, expectRejection, HS_SECRET, ISSUER, keyPair, recordingLogger, type TestKeyPair } from "./fixtures.ts";
import { hasGrant, mayAccessRoom, type Grant } from "./principal.ts";
import { issueToken, type IssueTokenOptions } from "./token-issuer.ts";

const NOW_MS = Date.UTC(2030, 0, 1, 12, 0, 0);
const NOW_SEC = NOW_MS / 1000;
const rsa = keyPair("rsa");
const rsa2 = keyPair("rsa");
const ec = keyPair("ec");
const ed = keyPair("ed25519");

/** An authenticator on a fixed clock, closed after the test. */
function jwtAuth(t: TestContext, config: Partial<AuthConfigInput> = {}) {
  const log = recordingLogger();
  const auth = createAuthenticator(
    { mode: "jwt", audience: AUDIENCE, issuer: ISSUER, hs256Secret: HS_SECRET, publicKeys: [rsa.publicPem, ec.publicPem, ed.publicPem], ...config },
    log,
    { now: () => NOW_MS },
  );
  t.after(() => auth.close());
  return { auth, log };
}

/** A valid token by default; every field can be overridden. */
function token(overrides: Partial<IssueTokenOptions> = {}): Promise<string> {
  return issueToken({
    key: HS_SECRET,
    alg: "HS256",
    sub: "alice",
    rooms: ["team-*", "lobby"],
    grants: ["join", "signal"],
    aud: AUDIENCE,
    iss: ISSUER,
    expiresInSec: 600,
    nowMs: NOW_MS,
    ...overrides,
  });
}

describe("AuthConfigSchema", () => {
  test("fills the defaults", () => {
    const c = AuthConfigSchema.parse({ audience: "a", issuer: "i", hs256Secret: HS_SECRET });
    assert.equal(c.mode, "jwt");
    assert.deepEqual(c.algorithms, ["HS256", "RS256", "ES256", "EdDSA"]);
    assert.equal(c.clockToleranceSec, 5);
    assert.equal(c.maxTokenLifetimeSec, undefined);
    assert.equal(c.jwksCooldownMs, 30_000);
  });

  test("jwt mode requires audience, issuer and a key source", () => {
    const r = AuthConfigSchema.safeParse({ mode: "jwt" });
    assert.equal(r.success, false);
    assert.deepEqual(r.error?.issues.map((i) => i.path.join(".")).sort(), ["audience", "hs256Secret", "issuer"]);
  });

  test("insecure-dev needs nothing else", () => {
    assert.equal(AuthConfigSchema.parse({ mode: "insecure-dev" }).mode, "insecure-dev");
  });

  test("refuses weak or misplaced secrets without echoing them", () => {
    for (const hs256Secret of ["too-short-secret", rsa.publicPem]) {
      const r = AuthConfigSchema.safeParse({ audience: "a", issuer: "i", hs256Secret });
      assert.equal(r.success, false);
      assert.ok(!JSON.stringify(r.error?.issues).includes(hs256Secret.slice(0, 16)));
    }
  });

  test("refuses alg none and non-http JWKS urls; coerces numbers", () => {
    assert.equal(AuthConfigSchema.safeParse({ audience: "a", issuer: "i", hs256Secret: HS_SECRET, algorithms: ["none"] }).success, false);
    assert.equal(AuthConfigSchema.safeParse({ audience: "a", issuer: "i", jwksUrl: "file:///etc/jwks.json" }).success, false);
    assert.equal(AuthConfigSchema.parse({ audience: "a", issuer: "i", hs256Secret: HS_SECRET, clockToleranceSec: "9" }).clockToleranceSec, 9);
  });

  test("createAuthenticator throws on an invalid configuration or key", () => {
    const log = recordingLogger();
    assert.throws(() => createAuthenticator({ mode: "jwt" }, log), /auth\.audience/);
    assert.throws(() => createAuthenticator({ audience: "a", issuer: "i", publicKeys: ["not a key"] }, log), /auth\.publicKeys\[0\]/);
    assert.throws(() => createAuthenticator({ audience: "a", issuer: "i", publicKeys: [rsa.privatePem] }, log), /auth\.publicKeys\[0\]/);
    assert.throws(
      () => createAuthenticator({ audience: "a", issuer: "i", publicKeys: [`kid=k ${rsa.publicPem}`, `kid=k ${rsa2.publicPem}`] }, log),
      /duplicate kid/,
    );
  });
});

describe("insecure-dev mode", () => {
  test("warns loudly, once", async (t) => {
    const log = recordingLogger();
    const auth = createAuthenticator({ mode: "insecure-dev" }, log);
    t.after(() => auth.close());
    await auth.verify("alice");
    await auth.verify("bob");
    const warnings = log.entries.filter((e) => e.level === "warn");
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.msg, "INSECURE DEV AUTH: anyone can connect as any user; never use in production");
  });

  test("the token is the user id, with every room and every grant but admin", async (t) => {
    const auth = createAuthenticator({ mode: "insecure-dev" }, recordingLogger());
    t.after(() => auth.close());
    const p = await auth.verify("alice.b@x-y_z");
    assert.equal(p.userId, "alice.b@x-y_z");
    assert.deepEqual(p.roomPatterns, ["*"]);
    assert.equal(mayAccessRoom(p, "any-room"), true);
    assert.deepEqual([...p.grants].sort(), ["broadcast", "call", "join", "signal"]);
    assert.equal(hasGrant(p, "admin"), false);
    assert.equal(p.expiresAt, null);
  });

  test("refuses ids outside [A-Za-z0-9._@-]{1,64}", async (t) => {
    const auth = createAuthenticator({ mode: "insecure-dev" }, recordingLogger());
    t.after(() => auth.close());
    for (const bad of ["", "has space", "x".repeat(65), "a/b", "a:b", "ünï", "line\nbreak"]) {
      await expectRejection(auth.verify(bad), "SIG_ERR_AUTH_FAILED", bad);
    }
  });
});

describe("jwt mode: valid tokens", () => {
  const signers: [JwsAlgorithm, TestKeyPair | null][] = [
    ["HS256", null],
    ["RS256", rsa],
    ["ES256", ec],
    ["EdDSA", ed],
  ];
  for (const [alg, pair] of signers) {
    test(`${alg} verifies`, async (t) => {
      const { auth, log } = jwtAuth(t);
      const jwt = await token({ alg, key: pair?.privatePem ?? HS_SECRET, jti: `id-${alg}` });
      const p = await auth.verify(jwt);
      assert.equal(p.userId, "alice");
      assert.deepEqual(p.roomPatterns, ["team-*", "lobby"]);
      assert.deepEqual([...p.grants].sort(), ["join", "signal"]);
      assert.equal(p.expiresAt, (NOW_SEC + 600) * 1000);
      assert.equal(p.tokenId, `id-${alg}`);
      assert.equal(log.entries.length, 0);
    });
  }

  test("a key given as a JWK JSON string verifies tokens with its kid", async (t) => {
    const { auth } = jwtAuth(t, { publicKeys: [JSON.stringify({ ...rsa.publicJwk, kid: "jwk-1", use: "sig" })] });
    const p = await auth.verify(await token({ alg: "RS256", key: rsa.privatePem, kid: "jwk-1" }));
    assert.equal(p.userId, "alice");
  });

  test("a kid-prefixed PEM verifies tokens with its kid", async (t) => {
    const { auth } = jwtAuth(t, { publicKeys: [`kid=rsa-a ${rsa.publicPem}`, `kid=rsa-b ${rsa2.publicPem}`] });
    await auth.verify(await token({ alg: "RS256", key: rsa.privatePem, kid: "rsa-a" }));
    await auth.verify(await token({ alg: "RS256", key: rsa2.privatePem, kid: "rsa-b" }));
  });

  test("with several keys and no kid, each candidate key is tried", async (t) => {
    const { auth } = jwtAuth(t, { publicKeys: [rsa.publicPem, rsa2.publicPem] });
    await auth.verify(await token({ alg: "RS256", key: rsa2.privatePem }));
    const stranger = keyPair("rsa");
    const jwt = await token({ alg: "RS256", key: stranger.privatePem });
    const err = await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt);
    assert.equal(err.message, "token signature invalid");
  });

  test("a configured key without kid also verifies tokens that carry a kid", async (t) => {
    const { auth } = jwtAuth(t, { publicKeys: [rsa.publicPem] });
    await auth.verify(await token({ alg: "RS256", key: rsa.privatePem, kid: "issuer-chose-this" }));
  });

  test("a token without exp has no expiry; absent rooms and grants mean none", async (t) => {
    const { auth } = jwtAuth(t);
    const p = await auth.verify(await token({ expiresInSec: null, rooms: undefined, grants: undefined }));
    assert.equal(p.expiresAt, null);
    assert.deepEqual(p.roomPatterns, []);
    assert.equal(p.grants.size, 0);
  });

  test("aud may be an array containing ours", async (t) => {
    const { auth } = jwtAuth(t);
    await auth.verify(await token({ aud: ["other", AUDIENCE] }));
  });

  test("a non-default algorithm verifies once allowed (PS256 with an RSA key)", async (t) => {
    const { auth } = jwtAuth(t, { algorithms: ["PS256"] });
    await auth.verify(await token({ alg: "PS256", key: rsa.privatePem }));
  });
});

describe("jwt mode: time", () => {
  test("expired → SIG_ERR_TOKEN_EXPIRED", async (t) => {
    const { auth } = jwtAuth(t);
    const jwt = await token({ expiresInSec: -60 });
    const err = await expectRejection(auth.verify(jwt), "SIG_ERR_TOKEN_EXPIRED", jwt);
    assert.equal(err.message, "token expired");
    assert.equal(err.retryable, true);
  });

  test("exp within the clock tolerance is accepted; at the tolerance it is expired", async (t) => {
    const { auth } = jwtAuth(t, { clockToleranceSec: 5 });
    await auth.verify(await token({ expiresInSec: -4 }));
    const jwt = await token({ expiresInSec: -5 });
    await expectRejection(auth.verify(jwt), "SIG_ERR_TOKEN_EXPIRED", jwt);
  });

  test("nbf in the future → SIG_ERR_AUTH_FAILED; within tolerance is accepted", async (t) => {
    const { auth } = jwtAuth(t);
    const jwt = await token({ notBeforeInSec: 60 });
    const err = await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt);
    assert.equal(err.message, "token not yet valid");
    await auth.verify(await token({ notBeforeInSec: 5 }));
  });

  test("maxTokenLifetimeSec refuses long-lived tokens and tokens without exp", async (t) => {
    const { auth } = jwtAuth(t, { maxTokenLifetimeSec: 900 });
    await auth.verify(await token({ expiresInSec: 900 }));
    const long = await token({ expiresInSec: 3600 });
    assert.equal((await expectRejection(auth.verify(long), "SIG_ERR_AUTH_FAILED", long)).message, "token lifetime too long");
    const backdated = await token({ expiresInSec: 600, claims: { iat: NOW_SEC - 3600 } });
    assert.equal((await expectRejection(auth.verify(backdated), "SIG_ERR_AUTH_FAILED", backdated)).message, "token lifetime too long");
    const forever = await token({ expiresInSec: null });
    assert.equal((await expectRejection(auth.verify(forever), "SIG_ERR_AUTH_FAILED", forever)).message, "token has no valid expiry");
  });
});

describe("jwt mode: refused tokens", () => {
  const refusals: [string, () => Promise<string>, string][] = [
    ["wrong aud", () => token({ aud: "someone-else" }), "token audience mismatch"],
    ["missing aud", () => token({ claims: { aud: undefined } }), "token audience mismatch"],
    ["wrong iss", () => token({ iss: "https://evil.test" }), "token issuer mismatch"],
    ["missing iss", () => token({ claims: { iss: undefined } }), "token issuer mismatch"],
    ["wrong HMAC secret", () => token({ key: `${HS_SECRET}-but-different` }), "token signature invalid"],
    ["algorithm outside the allowed list (PS256)", () => token({ alg: "PS256", key: rsa.privatePem }), "token algorithm not allowed"],
    ["RS256 claimed but signed by an unknown key", () => token({ alg: "RS256", key: rsa2.privatePem }), "token signature invalid"],
  ];
  for (const [name, make, message] of refusals) {
    test(name, async (t) => {
      const { auth, log } = jwtAuth(t);
      const jwt = await make();
      const err = await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt, log);
      assert.equal(err.message, message);
    });
  }

  test("tampered payload → signature invalid", async (t) => {
    const { auth } = jwtAuth(t);
    const [h, , s] = (await token()).split(".");
    const forged = `${h}.${b64url({ sub: "admin", aud: AUDIENCE, iss: ISSUER, grants: ["admin"], rooms: ["*"] })}.${s}`;
    assert.equal((await expectRejection(auth.verify(forged), "SIG_ERR_AUTH_FAILED", forged)).message, "token signature invalid");
  });

  test("alg none (hand-crafted, any spelling) is refused", async (t) => {
    const { auth, log } = jwtAuth(t);
    const claims = b64url({ sub: "mallory", aud: AUDIENCE, iss: ISSUER, exp: NOW_SEC + 600, grants: ["admin"], rooms: ["*"] });
    for (const alg of ["none", "None", "NONE", "nOnE"]) {
      for (const sig of ["", "AAAA", (await token()).split(".")[2] ?? ""]) {
        const jwt = `${b64url({ alg, typ: "JWT" })}.${claims}.${sig}`;
        const err = await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt, log);
        assert.equal(err.message, "token algorithm not allowed", alg);
      }
    }
  });

  test("alg none is refused even when the token names a configured kid", async (t) => {
    const { auth } = jwtAuth(t, { publicKeys: [`kid=k1 ${rsa.publicPem}`] });
    const jwt = `${b64url({ alg: "none", kid: "k1" })}.${b64url({ sub: "m", aud: AUDIENCE, iss: ISSUER })}.`;
    await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt);
  });

  test("HS/RS confusion: HS256 signed with the RSA public PEM is refused", async (t) => {
    // The config holds only the RSA public key, and HS256 is an allowed algorithm: the key
    // lookup must refuse to use the public key as an HMAC secret.
    const { auth, log } = jwtAuth(t, { hs256Secret: undefined, publicKeys: [rsa.publicPem] });
    for (const secret of [rsa.publicPem, rsa.publicPem.trim(), JSON.stringify(rsa.publicJwk)]) {
      const jwt = await token({ alg: "HS256", key: secret, grants: ["admin"] });
      const err = await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt, log);
      assert.equal(err.message, "token signing key unknown");
    }
    // The same holds with a kid that names the RSA key.
    const { auth: keyed } = jwtAuth(t, { hs256Secret: undefined, publicKeys: [`kid=rsa ${rsa.publicPem}`] });
    const jwt = await token({ alg: "HS256", key: rsa.publicPem, kid: "rsa" });
    await expectRejection(keyed.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt);
  });

  test("HS/RS confusion with an HMAC secret also configured: signature invalid", async (t) => {
    const { auth } = jwtAuth(t, { publicKeys: [rsa.publicPem] });
    const jwt = await token({ alg: "HS256", key: rsa.publicPem });
    assert.equal((await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt)).message, "token signature invalid");
  });

  test("an asymmetric token is never checked against the HMAC secret", async (t) => {
    const { auth } = jwtAuth(t, { publicKeys: undefined });
    const jwt = await token({ alg: "RS256", key: rsa.privatePem });
    assert.equal((await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt)).message, "token signing key unknown");
  });

  test("a key only verifies its own algorithms (EC key, RS256 token)", async (t) => {
    const { auth } = jwtAuth(t, { hs256Secret: undefined, publicKeys: [ec.publicPem] });
    const jwt = await token({ alg: "RS256", key: rsa.privatePem });
    assert.equal((await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt)).message, "token signing key unknown");
  });

  test("unknown kid → signing key unknown; known kid with the wrong key → signature invalid", async (t) => {
    const { auth, log } = jwtAuth(t, { publicKeys: [`kid=k1 ${rsa.publicPem}`] });
    await auth.verify(await token({ alg: "RS256", key: rsa.privatePem, kid: "k1" }));
    const unknown = await token({ alg: "RS256", key: rsa2.privatePem, kid: "k2" });
    assert.equal((await expectRejection(auth.verify(unknown), "SIG_ERR_AUTH_FAILED", unknown, log)).message, "token signing key unknown");
    const wrong = await token({ alg: "RS256", key: rsa2.privatePem, kid: "k1" });
    assert.equal((await expectRejection(auth.verify(wrong), "SIG_ERR_AUTH_FAILED", wrong, log)).message, "token signature invalid");
    const injected = await token({ alg: "RS256", key: rsa2.privatePem, kid: "../../etc/passwd' OR '1'='1" });
    await expectRejection(auth.verify(injected), "SIG_ERR_AUTH_FAILED", injected, log);
  });

  test("bad claims: missing sub, unknown grant, bad rooms", async (t) => {
    const { auth } = jwtAuth(t);
    const cases: [Partial<IssueTokenOptions>, string][] = [
      [{ claims: { sub: undefined } }, "sub"],
      [{ sub: "" }, "sub"],
      [{ sub: "x".repeat(257) }, "sub"],
      [{ grants: ["join", "superuser" as Grant] }, "grants.1"],
      [{ claims: { rooms: "lobby" } }, "rooms"],
    ];
    for (const [overrides, field] of cases) {
      const jwt = await token(overrides);
      const err = await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt);
      assert.equal(err.field, field);
      assert.ok(!err.message.includes("superuser"));
    }
  });

  test("malformed strings → token malformed / missing / too large", async (t) => {
    const { auth, log } = jwtAuth(t);
    const good = await token();
    const [h, p] = good.split(".");
    const cases: [string, string][] = [
      ["", "token missing"],
      ["not-a-jwt-at-all", "token malformed"],
      ["aaaaaaaa.bbbbbbbb", "token malformed"],
      [`${good}.extra`, "token malformed"],
      [`${b64url("{not json")}.${p}.c2lnbmF0dXJl`, "token malformed"],
      [`${b64url([1, 2])}.${p}.c2lnbmF0dXJl`, "token malformed"],
      [`${h}.${b64url("[1,2]")}.c2lnbmF0dXJl`, "token signature invalid"],
      [`${h}.${p}.!!!not-base64url!!!`, "token malformed"],
      [`${b64url({ typ: "JWT" })}.${p}.c2lnbmF0dXJl`, "token malformed"],
      [`${b64url({ alg: 42 })}.${p}.c2lnbmF0dXJl`, "token malformed"],
      [`${good}${"A".repeat(MAX_TOKEN_LENGTH)}`, "token too large"],
    ];
    for (const [jwt, message] of cases) {
      const err = await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt, log);
      assert.equal(err.message, message, jwt.slice(0, 40));
    }
    await expectRejection(auth.verify(undefined as unknown as string), "SIG_ERR_AUTH_FAILED", "");
  });

  test("unknown critical header parameters are refused", async (t) => {
    const { auth } = jwtAuth(t);
    const [, p] = (await token()).split(".");
    const jwt = `${b64url({ alg: "HS256", crit: ["x-custom"], "x-custom": 1 })}.${p}.c2lnbmF0dXJl`;
    assert.equal((await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt)).message, "token header not supported");
  });

  test("fuzz: JWT-shaped garbage is always refused with AUTH_FAILED and never echoed", async (t) => {
    const { auth, log } = jwtAuth(t);
    const header = fc.oneof(
      fc.record({ alg: fc.constantFrom("HS256", "RS256", "ES256", "EdDSA", "none", "PS256", "HS512", ""), kid: fc.option(fc.string(), { nil: undefined }) }),
      fc.jsonValue(),
    );
    const payload = fc.oneof(fc.record({ sub: fc.string(), aud: fc.constant(AUDIENCE), iss: fc.constant(ISSUER), grants: fc.array(fc.string()) }), fc.jsonValue());
    const segment = fc.oneof(
      header.map((v) => b64url(v)),
      fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString("base64url")),
      fc.string(),
    );
    await fc.assert(
      fc.asyncProperty(fc.tuple(segment, payload.map((v) => b64url(v)), fc.uint8Array({ minLength: 8, maxLength: 300 })), async ([h, p, sig]) => {
        const jwt = `${h}.${p}.${Buffer.from(sig).toString("base64url")}`;
        await expectRejection(auth.verify(jwt), "SIG_ERR_AUTH_FAILED", jwt, log);
      }),
      { numRuns: 300 },
    );
    // Every failure was a known one: nothing fell through to the "unexpected" log line.
    assert.deepEqual(log.entries, []);
  });
});

describe("lifecycle", () => {
  test("close waits for verifications in flight, then refuses new ones; idempotent", async (t) => {
    const { auth } = jwtAuth(t);
    const pending = auth.verify(await token({ alg: "RS256", key: rsa.privatePem }));
    const closed = auth.close();
    assert.equal((await pending).userId, "alice");
    await closed;
    await auth.close();
    await auth[Symbol.asyncDispose]();
    const jwt = await token();
    const err = await expectRejection(auth.verify(jwt), "SIG_ERR_DRAINING", jwt);
    assert.ok(isSignalingError(err));
  });

  test("the error table maps: AUTH_FAILED closes 4001, TOKEN_EXPIRED 4003", async (t) => {
    const { auth } = jwtAuth(t);
    const bad = await token({ aud: "x" });
    const expired = await token({ expiresInSec: -100 });
    assert.equal((await expectRejection(auth.verify(bad), "SIG_ERR_AUTH_FAILED", bad)).closeCode, 4001);
    const err = await expectRejection(auth.verify(expired), "SIG_ERR_TOKEN_EXPIRED", expired);
    assert.equal(err.closeCode, 4003);
    assertRejection(err, "SIG_ERR_TOKEN_EXPIRED", expired);
  });
});
