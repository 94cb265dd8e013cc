/**
 * The SDK across an outage of the token issuer's key set (JWKS) while it is reconnecting: the pod
 * cannot check the fresh token of the resume and refuses it as retryable (SIG_ERR_UNAVAILABLE,
 * socket closed), so the client keeps its session and reconnects with backoff, and it resumes the
 * same session, with what it missed, once the keys are back. No `session-lost`, no fresh `hello`.
 * A real pod on port 0 and a real JWKS server on 127.0.0.1, stopped and restarted in the test.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createSignalingServer, issueToken } from "@switchboard/server";
import { keyPair, startJwksServer } from "@switchboard/server/testing";
import { SwitchboardClient, type ClientEvents } from "./client.ts";

const AUDIENCE = "switchboard";
const ISSUER = "https://issuer.sdk.test";

test("a JWKS outage during a resume: the SDK keeps its session, retries, and resumes it once the keys are back", { timeout: 30_000 }, async (t) => {
  const key = keyPair("ec");
  const jwk = { ...key.publicJwk, kid: "k1", alg: "ES256", use: "sig" };
  const jwks = await startJwksServer(t, [jwk]);
  const port = Number(new URL(jwks.url).port);
  const server = createSignalingServer({
    // Every verification fetches the key set (no cache), so the outage shows at the next token.
    config: { port: 0, logLevel: "silent", auth: { mode: "jwt", jwksUrl: jwks.url, audience: AUDIENCE, issuer: ISSUER, jwksCacheMaxAgeMs: 0, jwksCooldownMs: 0 } },
    defaultMetrics: false,
  });
  await server.listen();
  t.after(() => server.close());
  const token = (sub: string) => () => issueToken({ key: key.privatePem, alg: "ES256", kid: "k1", sub, aud: AUDIENCE, iss: ISSUER, rooms: ["*"], grants: ["join", "signal", "broadcast"], expiresInSec: 600 });
  const client = (sub: string) => {
    const c = new SwitchboardClient({ url: server.wsUrl, token: token(sub), reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 200 });
    t.after(() => c.close());
    return c;
  };
  const alice = client("alice");
  const bob = client("bob");
  const welcome = await alice.connect();
  await bob.connect();
  await alice.join("r");
  await bob.join("r");

  const seen: Array<keyof ClientEvents> = [];
  const errors: string[] = [];
  const closes: Array<{ code: number; willReconnect: boolean }> = [];
  alice.on("session-lost", () => seen.push("session-lost"));
  alice.on("session", () => seen.push("session"));
  alice.on("server-error", (e) => errors.push(e.code));
  alice.on("disconnected", (e) => closes.push({ code: e.code, willReconnect: e.willReconnect }));
  const refusedTwice = new Promise<void>((resolve) => {
    const off = alice.on("server-error", () => {
      if (errors.filter((c) => c === "SIG_ERR_UNAVAILABLE").length < 2) return;
      off();
      resolve();
    });
  });

  await jwks.close();
  alice.simulateDrop();
  // The pod refuses the resume while the keys are away; the client tries again after its backoff.
  await refusedTwice;
  const missed = bob.message("r", welcome.peerId, { n: 1 });
  const resumed = new Promise<ClientEvents["resumed"]>((resolve) => alice.once("resumed", resolve));
  const message = new Promise<ClientEvents["message"]>((resolve) => alice.once("message", resolve));
  await startJwksServer(t, [jwk], { port });
  const r = await resumed;
  await missed;

  assert.equal(r.sessionId, welcome.sessionId, "the same session");
  assert.deepEqual((await message).data, { n: 1 }, "what was sent meanwhile arrives");
  assert.deepEqual(seen, [], "no session lost, no new session");
  assert.ok(closes.length >= 3 && closes.every((c) => c.willReconnect), JSON.stringify(closes));
  assert.equal(alice.session?.sessionId, welcome.sessionId);
});
