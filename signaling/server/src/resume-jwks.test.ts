/**
 * A resume whose fresh token cannot be checked because the issuer's JWKS is unreachable: the pod
 * answers as it answers a `hello` in the same outage (SIG_ERR_UNAVAILABLE, retryable, the socket
 * closed), not `resume-failed` (`auth`), and leaves the session alone, so the same resume works
 * once the key set is back. A token that is checked and wrong is still `resume-failed` (`auth`).
 * Real sockets, a real JWKS server on 127.0.0.1, stopped and started again inside the test.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JWK } from "jose";
import type { ServerMessageOf } from "@switchboard/protocol";
import { keyPair, startJwksServer } from "./auth/fixtures.ts";
import { issueToken } from "./auth/index.ts";
import { closedWithin, startPod } from "./testing/pod.ts";

const AUDIENCE = "switchboard";
const ISSUER = "https://issuer.resume.test";
const key = keyPair("ec");
const otherKey = keyPair("ec");
const jwk: JWK = { ...key.publicJwk, kid: "k1", alg: "ES256", use: "sig" };

function token(sub: string, signer = key): Promise<string> {
  return issueToken({ key: signer.privatePem, alg: "ES256", kid: "k1", sub, aud: AUDIENCE, iss: ISSUER, rooms: ["*"], grants: ["join", "signal"], expiresInSec: 600 });
}

test("a JWKS outage during a resume is SIG_ERR_UNAVAILABLE (retryable), not resume-failed: the session is kept and resumes once the keys are back", async (t) => {
  const jwks = await startJwksServer(t, [jwk]);
  const port = Number(new URL(jwks.url).port);
  // Every verification fetches the key set (no cache), so an outage shows at the next token.
  const pod = await startPod(t, { auth: { mode: "jwt", jwksUrl: jwks.url, audience: AUDIENCE, issuer: ISSUER, jwksCacheMaxAgeMs: 0, jwksCooldownMs: 0 } });
  const alice = await pod.open(await token("alice"));
  const joined = await alice.client.request({ type: "join", room: "r" });
  assert.equal(joined.type, "joined");
  alice.client.drop();
  await closedWithin(alice.client);

  const resumeWith = async (jwt: string) => {
    const client = pod.connect();
    await client.opened();
    client.send({ type: "resume", v: 1, id: "res", sessionId: alice.welcome.sessionId, resumeToken: alice.welcome.resumeToken, lastSeq: 0, token: jwt });
    return { client, reply: await client.next((m) => m.type === "resumed" || m.type === "resume-failed" || m.type === "error") };
  };

  await jwks.close();
  const during = await resumeWith(await token("alice"));
  const refused = during.reply as ServerMessageOf<"error">;
  assert.equal(refused.type, "error", `got ${JSON.stringify(during.reply)}`);
  assert.equal(refused.code, "SIG_ERR_UNAVAILABLE");
  assert.equal(refused.retryable, true);
  assert.equal(refused.id, "res");
  assert.equal((await closedWithin(during.client)).reason, "SIG_ERR_UNAVAILABLE", "closed like a hello in the same outage");
  assert.ok(!during.client.received.some((m) => m.type === "resume-failed"));
  assert.equal(pod.server.hub.sessions.get(alice.welcome.sessionId)?.ended, false, "the session is untouched");

  const back = await startJwksServer(t, [jwk], { port });
  const after = await resumeWith(await token("alice"));
  const resumed = after.reply as ServerMessageOf<"resumed">;
  assert.equal(resumed.type, "resumed", `got ${JSON.stringify(after.reply)}`);
  assert.equal(resumed.sessionId, alice.welcome.sessionId);
  assert.ok(resumed.replayCount >= 1, "the join's reply is replayed");
  assert.ok(back.requests() >= 1);

  // With the keys reachable, a token the pod can check and refuse is still `auth`.
  after.client.drop();
  await closedWithin(after.client);
  const forged = await resumeWith(await token("alice", otherKey));
  const failed = forged.reply as ServerMessageOf<"resume-failed">;
  assert.equal(failed.type, "resume-failed", `got ${JSON.stringify(forged.reply)}`);
  assert.equal(failed.reason, "auth");
});
