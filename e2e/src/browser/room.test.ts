import assert from "node:assert/strict";
import { test } from "node:test";
import { demoCall, launchChromium, openDemo, waitForSnapshot } from "./chromium.ts";
import { startPod } from "./pod.ts";

test("two pages join a room and connect a real RTCPeerConnection through the pod", async (t) => {
  const pod = await startPod();
  t.after(() => pod.close());
  const browser = await launchChromium();
  t.after(() => browser.close());

  const a = await openDemo(browser, pod.httpUrl, "alice");
  const b = await openDemo(browser, pod.httpUrl, "bob");
  await demoCall(a.page, "joinRoom", "e2e-room");
  await demoCall(b.page, "joinRoom", "e2e-room");

  const connected = (s: Awaited<ReturnType<typeof waitForSnapshot>>) =>
    s.peers.length === 1 && s.peers[0]?.ice === "connected" || s.peers[0]?.ice === "completed";
  const withMedia = (s: Awaited<ReturnType<typeof waitForSnapshot>>) =>
    connected(s) && s.peers[0]?.chat === "open" && (s.peers[0]?.remoteTracks.includes("video") ?? false);
  await waitForSnapshot(a.page, withMedia);
  await waitForSnapshot(b.page, withMedia);

  // A DataChannel message each way.
  assert.equal(await demoCall(a.page, "sendChat", "hello from alice"), 1);
  assert.equal(await demoCall(b.page, "sendChat", "hello from bob"), 1);
  await waitForSnapshot(b.page, (s) => s.chatReceived.includes("hello from alice"));
  await waitForSnapshot(a.page, (s) => s.chatReceived.includes("hello from bob"));

  // ICE stayed on loopback: the selected pair is 127.0.0.1 on both ends.
  const pairs = await demoCall<Array<{ local: string; remote: string }>>(a.page, "selectedCandidatePairs");
  assert.ok(pairs.length >= 1);
  for (const p of pairs) {
    assert.equal(p.local, "127.0.0.1");
    assert.equal(p.remote, "127.0.0.1");
  }
  assert.deepEqual([...a.errors, ...b.errors], []);
});
