import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import type { SignalingServer } from "@switchboard/server";
import { mintTurnCredentials } from "@switchboard/server";
import { startCoturn, type Coturn } from "./coturn.ts";
import { demoCall, launchChromium, openDemo, waitForSnapshot, type DemoSnapshot } from "./chromium.ts";
import { admin, startPod } from "./pod.ts";

let browser: Browser;
before(async () => {
  browser = await launchChromium();
});
after(() => browser.close());

const inCallWithMedia = (s: DemoSnapshot): boolean =>
  s.peers.length === 1 &&
  (s.peers[0]?.ice === "connected" || s.peers[0]?.ice === "completed") &&
  s.peers[0]?.chat === "open" &&
  (s.peers[0]?.remoteTracks.includes("video") ?? false);

async function pod(t: { after(fn: () => unknown): void }, config = {}): Promise<SignalingServer> {
  const server = await startPod(config);
  t.after(() => server.close());
  return server;
}

test("A calls user B on two devices: both ring, one accepts, the other hears answered elsewhere, media flows, hangup ends both", async (t) => {
  const server = await pod(t);
  const a = await openDemo(browser, server.httpUrl, "alice");
  const b1 = await openDemo(browser, server.httpUrl, "bob");
  const b2 = await openDemo(browser, server.httpUrl, "bob");
  t.after(() => Promise.all([a.context.close(), b1.context.close(), b2.context.close()]));

  const started = performance.now();
  const callId = await demoCall<string>(a.page, "callUser", "bob");
  await waitForSnapshot(b1.page, (s) => s.incoming?.callId === callId);
  await waitForSnapshot(b2.page, (s) => s.incoming?.callId === callId);
  await waitForSnapshot(a.page, (s) => s.call?.state === "ringing");

  await demoCall(b1.page, "acceptCall");
  const b2After = await waitForSnapshot(b2.page, (s) => s.incoming === null && s.lastCallEnd === "answered-elsewhere");
  assert.equal(b2After.peers.length, 0, "the device that only rang never gets a peer connection");

  await waitForSnapshot(a.page, inCallWithMedia);
  const mediaAtMs = performance.now() - started;
  await waitForSnapshot(b1.page, inCallWithMedia);
  console.log(`# invite → media (caller has ICE connected, chat open and the callee's video track): ${mediaAtMs.toFixed(0)} ms`);

  await demoCall(a.page, "sendChat", "over the call");
  await waitForSnapshot(b1.page, (s) => s.chatReceived.includes("over the call"));

  await demoCall(a.page, "hangUp");
  await waitForSnapshot(a.page, (s) => s.call === null && s.lastCallEnd === "hangup" && s.peers.length === 0);
  await waitForSnapshot(b1.page, (s) => s.call === null && s.lastCallEnd === "hangup" && s.peers.length === 0);
  assert.deepEqual([...a.errors, ...b1.errors, ...b2.errors], []);
});

test("the pod drops the caller's signaling socket mid-call: the SDK resumes, the call goes on, an ICE restart renegotiates", async (t) => {
  const server = await pod(t);
  const a = await openDemo(browser, server.httpUrl, "carol");
  const b = await openDemo(browser, server.httpUrl, "dave");
  t.after(() => Promise.all([a.context.close(), b.context.close()]));

  const callId = await demoCall<string>(a.page, "callUser", "dave");
  await waitForSnapshot(b.page, (s) => s.incoming?.callId === callId);
  await demoCall(b.page, "acceptCall");
  const before = await waitForSnapshot(a.page, inCallWithMedia);
  await waitForSnapshot(b.page, inCallWithMedia);
  const ufragBefore = before.peers[0]?.localUfrag;
  assert.ok(ufragBefore);

  const peerId = before.session?.peerId as string;
  const dropped = await admin(server, "POST", `/admin/peers/${peerId}/disconnect`);
  assert.equal(dropped.status, 200);

  // Same session (peer id), new ICE credentials, ICE connected again, the call still up.
  const after = await waitForSnapshot(
    a.page,
    (s) => s.signaling === "open" && s.session?.peerId === peerId && s.peers[0]?.localUfrag !== ufragBefore && inCallWithMedia(s),
  );
  assert.equal(after.call?.callId, callId);
  await demoCall(b.page, "sendChat", "still here");
  await waitForSnapshot(a.page, (s) => s.chatReceived.includes("still here"));
  const log = await a.page.evaluate(() => (window as unknown as { demo: { log: string[] } }).demo.log);
  assert.ok(log.some((l) => l.includes("session resumed")), "the SDK resumed the session");
  assert.ok(!log.some((l) => l.includes("session lost")), "the session was never lost");

  await demoCall(b.page, "hangUp");
  await waitForSnapshot(a.page, (s) => s.call === null && s.lastCallEnd === "hangup");
});

test("with coturn on loopback, relay-only pages connect with the pod's TURN credentials and fail with expired ones", async (t) => {
  const secret = "e2e-turn-shared-secret-0123456789";
  const turn: Coturn = await startCoturn(secret);
  t.after(() => turn.close());
  const server = await pod(t, { turn: { secret, urls: [turn.url], ttlSec: 600 } });

  const a = await openDemo(browser, server.httpUrl, "erin", "loopbackOnly=1&relay=1");
  const b = await openDemo(browser, server.httpUrl, "frank", "loopbackOnly=1&relay=1");
  t.after(() => Promise.all([a.context.close(), b.context.close()]));
  const callId = await demoCall<string>(a.page, "callUser", "frank");
  await waitForSnapshot(b.page, (s) => s.incoming?.callId === callId);
  await demoCall(b.page, "acceptCall");
  await waitForSnapshot(a.page, inCallWithMedia, 40_000);
  const pairs = await demoCall<Array<{ localType: string; local: string }>>(a.page, "selectedCandidatePairs");
  assert.ok(pairs.length >= 1 && pairs.every((p) => p.localType === "relay" && p.local === "127.0.0.1"), JSON.stringify(pairs));
  await demoCall(a.page, "hangUp");

  // Credentials that expired an hour ago, minted exactly as the pod mints them: coturn refuses them.
  const expired = mintTurnCredentials({ secret, userId: "gina", ttlSec: 600, urls: [turn.url], now: Date.now() - 3600_000 });
  const query = `loopbackOnly=1&relay=1&iceServers=${encodeURIComponent(JSON.stringify(expired.iceServers))}`;
  const c = await openDemo(browser, server.httpUrl, "gina", query);
  const d = await openDemo(browser, server.httpUrl, "hank", query);
  t.after(() => Promise.all([c.context.close(), d.context.close()]));
  const call2 = await demoCall<string>(c.page, "callUser", "hank");
  await waitForSnapshot(d.page, (s) => s.incoming?.callId === call2);
  await demoCall(d.page, "acceptCall");
  const refused = await waitForSnapshot(c.page, (s) => s.iceErrors.includes(401), 40_000);
  assert.ok(!refused.peers.some((p) => p.ice === "connected" || p.ice === "completed"));
});
