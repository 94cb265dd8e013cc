/**
 * Drain (SIGTERM behaviour) on real sockets: not ready, new upgrades refused, paced reconnect
 * hints, nothing sent before the drain lost, and every socket closed by the deadline.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ServerMessageOf } from "@switchboard/protocol";
import { closedWithin, eventually, metricValue, type Peer, startPod, type TestPod } from "./testing/pod.ts";

const DRAIN = { timeoutMs: 2000, spreadMs: 200, batchSize: 2 };
const MESSAGES = 20;

/** Five members of room r; the first one broadcasts MESSAGES times and the pod handled them all. */
async function roomWithTraffic(pod: TestPod): Promise<Peer[]> {
  const peers: Peer[] = [];
  for (let i = 0; i < 5; i++) peers.push(await pod.member(`user${i}`, "r"));
  const sender = peers[0] as Peer;
  for (let n = 0; n < MESSAGES - 1; n++) sender.client.send({ type: "broadcast", room: "r", data: { n } });
  assert.equal((await sender.client.request({ type: "broadcast", room: "r", data: { n: MESSAGES - 1 } })).type, "ok");
  return peers;
}

/** Every broadcast a peer got before its reconnect hint, then the hint. */
async function untilReconnect(peer: Peer): Promise<{ counters: number[]; hint: ServerMessageOf<"reconnect"> }> {
  const counters: number[] = [];
  for (;;) {
    const m = await peer.client.next((f) => f.type === "broadcast" || f.type === "reconnect", 5000);
    if (m.type === "reconnect") return { counters, hint: m };
    if (m.type === "broadcast") counters.push((m.data as { n: number }).n);
  }
}

describe("drain", () => {
  test("every client is told to reconnect within the spread, readiness drops, new upgrades get 503, nothing is lost", async (t) => {
    const pod = await startPod(t, { drain: DRAIN });
    const peers = await roomWithTraffic(pod);
    assert.equal((await pod.http("/readyz")).status, 200);

    const draining = pod.server.drain();
    assert.equal(pod.server.ready, false);
    const readyz = await pod.http("/readyz");
    assert.equal(readyz.status, 503);
    assert.deepEqual(readyz.body, { status: "not-ready", draining: true });
    assert.equal(metricValue(await pod.metrics(), "switchboard_ready"), 0);
    await assert.rejects(pod.connect().opened(), { status: 503 });
    assert.equal((await pod.http("/healthz")).status, 200, "alive while draining");

    // Each client: every broadcast first, then one reconnect hint; then it goes away by itself.
    for (const [i, peer] of peers.entries()) {
      const { counters, hint } = await untilReconnect(peer);
      assert.deepEqual(counters, i === 0 ? [] : Array.from({ length: MESSAGES }, (_, n) => n), `peer ${i} got every broadcast before the hint`);
      assert.equal(hint.reason, "draining");
      assert.ok(Number.isInteger(hint.afterMs) && hint.afterMs >= 0 && hint.afterMs <= DRAIN.spreadMs, `afterMs ${hint.afterMs} within the spread`);
      await peer.client.close(4000);
    }
    const outcome = await draining;
    assert.equal(outcome?.closedAtDeadline, 0, "a clean drain: every client left before the deadline");
    assert.equal(outcome?.hinted, peers.length);
    assert.ok(outcome.durationMs < DRAIN.timeoutMs, `ended when the last client left (${outcome.durationMs} ms)`);
    assert.equal(await pod.server.drain(), undefined, "a second drain does nothing");
    assert.equal(pod.server.gateway.connectionCount, 0);
    for (const peer of peers) {
      assert.equal(peer.client.closeCode, 4000, "closed by the client, not by the deadline");
      assert.equal(peer.client.received.filter((m) => m.type === "reconnect").length, 1, "one hint per client");
    }
  });

  test("sockets still open at the deadline are closed with 1012 SIG_ERR_DRAINING", async (t) => {
    const pod = await startPod(t, { drain: DRAIN });
    const peers = await roomWithTraffic(pod);
    const stubborn = peers[4] as Peer;
    const draining = pod.server.drain();
    for (const peer of peers.slice(0, 4)) {
      await untilReconnect(peer);
      await peer.client.close(4000);
    }
    const { counters } = await untilReconnect(stubborn);
    assert.equal(counters.length, MESSAGES);
    // It ignores the hint: the pod closes it at the deadline.
    const err = await stubborn.client.nextOf("error", 5000);
    assert.equal(err.code, "SIG_ERR_DRAINING");
    assert.equal(err.retryable, true);
    assert.equal((await closedWithin(stubborn.client)).code, 1012);
    const outcome = await draining;
    assert.equal(outcome?.closedAtDeadline, 1, "the drain says it passed its deadline, with one socket left");
    assert.equal(outcome?.hinted, 5);
    // drain() starts the closing handshakes at the deadline; they complete right after.
    await eventually(() => pod.server.gateway.connectionCount === 0, "every socket closed");
    // The session survives the close, for a resume on another pod (or this one, were it to stay).
    assert.equal(pod.server.hub.sessions.get(stubborn.welcome.sessionId)?.detachCause, "draining");
  });

  test("a socket still in its handshake is closed at the deadline too", async (t) => {
    const pod = await startPod(t, { drain: { timeoutMs: 200, spreadMs: 0, batchSize: 10 } });
    const silent = pod.connect();
    await silent.opened();
    await pod.server.drain();
    assert.equal((await closedWithin(silent)).code, 1012);
    await eventually(() => pod.server.gateway.connectionCount === 0, "every socket closed");
  });
});
