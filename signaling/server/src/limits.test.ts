/**
 * The pod's limits on real sockets: invalid-message abuse, frame size, the per-socket rate limit,
 * per-address and pod-wide socket caps, the upgrade rate, and slow consumers.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { describe, test } from "node:test";
import type { ServerMessageOf } from "@switchboard/protocol";
import { closedWithin, eventually, metricValue, startPod } from "./testing/pod.ts";

describe("abuse", () => {
  test("more than maxInvalidMessages bad frames: SIG_ERR_ABUSE and close 4009", async (t) => {
    const pod = await startPod(t, { limits: { maxInvalidMessages: 3 } });
    const { client } = await pod.open("alice");
    const bad = ["nope", JSON.stringify({ type: "nope" }), JSON.stringify({ type: "join", room: "" })];
    for (const frame of bad) client.sendText(frame);
    for (let i = 0; i < bad.length; i++) assert.notEqual((await client.nextOf("error")).code, "SIG_ERR_ABUSE");
    assert.equal(client.closeCode, null, "the limit itself is tolerated");
    client.sendText("still nope");
    const err = await client.nextOf("error");
    assert.equal(err.code, "SIG_ERR_ABUSE");
    assert.equal(err.retryable, false);
    assert.equal((await closedWithin(client)).code, 4009);
  });

  test("invalid frames before the handshake count too", async (t) => {
    const pod = await startPod(t, { limits: { maxInvalidMessages: 2 } });
    const client = pod.connect();
    await client.opened();
    for (let i = 0; i < 3; i++) client.send({ type: "ping" });
    assert.equal((await client.nextOf("error")).code, "SIG_ERR_HANDSHAKE_REQUIRED");
    assert.equal((await client.nextOf("error")).code, "SIG_ERR_HANDSHAKE_REQUIRED");
    assert.equal((await client.nextOf("error")).code, "SIG_ERR_ABUSE");
    assert.equal((await closedWithin(client)).code, 4009);
  });
});

describe("frame size", () => {
  test("a frame over maxMessageBytes closes the socket with 1009; one at the limit is fine", async (t) => {
    const pod = await startPod(t, { limits: { maxMessageBytes: 1024 } });
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    const frame = (size: number) => {
      const base = JSON.stringify({ type: "broadcast", room: "r", data: "" });
      return JSON.stringify({ type: "broadcast", room: "r", data: "x".repeat(size - base.length) });
    };
    assert.equal(Buffer.byteLength(frame(1024)), 1024);
    a.client.sendText(frame(1024));
    assert.equal((await b.client.nextOf("broadcast")).from, a.peerId);
    a.client.sendText(frame(1025));
    assert.equal((await closedWithin(a.client)).code, 1009);
    await eventually(async () => metricValue(await pod.metrics(), "switchboard_errors_total", { code: "SIG_ERR_MESSAGE_TOO_BIG" }) === 1, "the error counted");
    // The oversize message was never delivered.
    assert.equal(b.client.received.filter((m) => m.type === "broadcast").length, 1);
  });
});

describe("rate limit", () => {
  test("beyond the burst: SIG_ERR_RATE_LIMITED and the message is not delivered", async (t) => {
    // hello and join take two tokens of the burst of five.
    const pod = await startPod(t, { limits: { ratePerSecond: 0.01, rateBurst: 5 } });
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    for (let i = 0; i < 4; i++) a.client.send({ type: "message", room: "r", to: b.peerId, data: i });
    for (let i = 0; i < 3; i++) assert.equal((await b.client.nextOf("message")).data, i);
    const err = await a.client.nextOf("error");
    assert.equal(err.code, "SIG_ERR_RATE_LIMITED");
    assert.equal(err.retryable, true);
    assert.equal(a.client.closeCode, null, "rate limiting does not close the socket");
    // b's next message is a marker sent after the refusal: message 3 never arrived.
    const c = await pod.member("carol", "r");
    c.client.send({ type: "message", room: "r", to: b.peerId, data: "marker" });
    const next = await b.client.next((m) => m.type === "message");
    assert.equal((next as ServerMessageOf<"message">).data, "marker");
    assert.equal(b.client.received.filter((m) => m.type === "message" && m.data === 3).length, 0);
  });
});

describe("connection caps", () => {
  test("maxConnectionsPerIp: the third upgrade is refused with 429; after one closes a new one works", async (t) => {
    const pod = await startPod(t, { limits: { maxConnectionsPerIp: 2 } });
    const first = await pod.open("alice");
    await pod.open("bob");
    const third = pod.connect();
    await assert.rejects(third.opened(), { status: 429 });
    assert.equal(metricValue(await pod.metrics(), "switchboard_errors_total", { code: "SIG_ERR_TOO_MANY_CONNECTIONS" }), 1);
    await first.client.close();
    await eventually(() => pod.server.gateway.connectionCount === 1, "the closed socket released");
    const again = await pod.open("carol");
    assert.equal(again.welcome.userId, "carol");
  });

  test("a dropped socket gives its slot back too", async (t) => {
    const pod = await startPod(t, { limits: { maxConnectionsPerIp: 1 } });
    const first = await pod.open("alice");
    await assert.rejects(pod.connect().opened(), { status: 429 });
    first.client.drop();
    await eventually(() => pod.server.gateway.connectionCount === 0, "the dropped socket released");
    assert.equal((await pod.open("bob")).welcome.userId, "bob");
  });

  test("upgradesPerSecondPerIp: upgrades beyond the burst are refused with 429", async (t) => {
    // Rate 1/s, burst 2.
    const pod = await startPod(t, { limits: { upgradesPerSecondPerIp: 1 } });
    const a = pod.connect();
    const b = pod.connect();
    await a.opened();
    await b.opened();
    const c = pod.connect();
    await assert.rejects(c.opened(), { status: 429 });
    // The refused upgrade holds no slot, and the open ones still work.
    assert.equal(pod.server.gateway.connectionCount, 2);
    assert.equal((await a.hello("alice")).userId, "alice");
  });

  test("maxConnections: the pod refuses upgrades beyond its cap with 503", async (t) => {
    const pod = await startPod(t, { limits: { maxConnections: 1 } });
    await pod.open("alice");
    await assert.rejects(pod.connect().opened(), { status: 503 });
  });
});

describe("slow consumer", () => {
  test("a socket that stops reading is closed with 4010 while a normal peer receives everything", async (t) => {
    const pod = await startPod(t, { limits: { maxOutboundBytes: 256 * 1024, ratePerSecond: 100_000, rateBurst: 100_000, maxReplayBytes: 256 * 1024 } });
    const flooder = await pod.member("flooder", "r");
    const slow = await pod.member("slow", "r");
    const normal = await pod.member("normal", "r");
    await flooder.client.nextOf("peer-joined");
    await flooder.client.nextOf("peer-joined");
    await slow.client.nextOf("peer-joined");
    const slowSocket = (slow.client.ws as unknown as { _socket: Socket })._socket;
    slowSocket.pause();

    // Flood in batches the normal peer keeps up with (it must read each batch before the next is
    // sent), until the server gives up on the paused socket once the kernel buffers are full.
    const payload = "x".repeat(16 * 1024);
    let sent = 0;
    let received = 0;
    let slowGone = false;
    const disconnected = normal.client.next((m) => m.type === "peer-updated" && m.peer.peerId === slow.peerId && !m.peer.connected, 30_000);
    void disconnected.then(() => (slowGone = true), () => undefined);
    const receiveBatch = async (upTo: number) => {
      while (received < upTo) {
        const ev = await normal.client.nextOf("broadcast", 10_000);
        assert.equal((ev.data as { n: number }).n, received, "every broadcast, in order");
        received += 1;
      }
    };
    while (!slowGone && sent < 2000) {
      for (let i = 0; i < 8; i++) flooder.client.send({ type: "broadcast", room: "r", data: { n: sent++, payload } });
      await receiveBatch(sent);
    }
    await disconnected;
    // More traffic after the slow one is gone still reaches the normal peer.
    for (let i = 0; i < 10; i++) flooder.client.send({ type: "broadcast", room: "r", data: { n: sent++, payload: "" } });
    await receiveBatch(sent);
    assert.equal(normal.client.closeCode, null);
    assert.equal(flooder.client.closeCode, null);
    const metrics = await pod.metrics();
    assert.equal(metricValue(metrics, "switchboard_errors_total", { code: "SIG_ERR_SLOW_CONSUMER" }), 1);

    // Once it reads again, the slow client finds the close code after what was buffered.
    slowSocket.resume();
    assert.equal((await closedWithin(slow.client)).code, 4010);
    // The session survives for a resume.
    const session = pod.server.hub.sessions.get(slow.welcome.sessionId);
    assert.ok(session && session.socket === null && session.detachCause === "slow-consumer");
  });
});
