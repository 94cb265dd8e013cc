/**
 * Time-driven behaviour, with the pod's shared timer driven by an explicit clock
 * (`gateway.tick(nowMs)`): heartbeat death and token expiry.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { describe, test } from "node:test";
import type { ServerMessageOf } from "@switchboard/protocol";
import { closedWithin, eventually, jwt, JWT_AUTH, metricValue, type Peer, startPod } from "./testing/pod.ts";

const INTERVAL = 60_000;

/** Proves `peer` alive: any message resets its heartbeat, and the reply shows it was handled. */
async function keepAlive(peer: Peer): Promise<void> {
  assert.equal((await peer.client.request({ type: "ping" })).type, "pong");
}

describe("heartbeat", () => {
  test("a socket that never answers pings dies after heartbeatMissedLimit intervals; peers see it at once, and peer-left timeout after the window", async (t) => {
    // The real timer ticks every second but finds nothing due: every deadline is a minute away.
    const pod = await startPod(t, { heartbeatIntervalMs: INTERVAL, heartbeatMissedLimit: 2, resumeWindowMs: 30_000 });
    const dead = await pod.member("dead", "r");
    const alive = await pod.member("alive", "r");
    await dead.client.nextOf("peer-joined");
    const socket = (dead.client.ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    // Interval 0: the socket spoke (hello, join) during it, so it is alive and needs no ping.
    const t0 = Date.now() + INTERVAL;
    pod.server.gateway.tick(t0);

    // Interval 1: ping sent. Interval 2: one missed, ping again. Neither closes anything.
    pod.server.gateway.tick(t0 + INTERVAL);
    await keepAlive(alive);
    pod.server.gateway.tick(t0 + 2 * INTERVAL);
    await keepAlive(alive);
    assert.equal(alive.client.received.filter((m) => m.type === "peer-updated").length, 0, "not dead yet");
    assert.ok(pod.server.hub.sessions.get(dead.welcome.sessionId)?.socket, "still attached");

    // Interval 3: the second missed pong: the socket is closed and the peers are told at once.
    pod.server.gateway.tick(t0 + 3 * INTERVAL);
    const update = await alive.client.nextOf("peer-updated");
    assert.deepEqual([update.peer.peerId, update.peer.connected], [dead.peerId, false]);
    const session = pod.server.hub.sessions.get(dead.welcome.sessionId);
    assert.ok(session);
    assert.equal(session.socket, null);
    assert.equal(session.detachCause, "heartbeat");
    assert.equal(metricValue(await pod.metrics(), "switchboard_errors_total", { code: "SIG_ERR_HEARTBEAT_TIMEOUT" }), 1);
    // The socket cannot finish the close handshake (it does not read): it is terminated 2 s later.
    pod.server.gateway.tick(t0 + 3 * INTERVAL + 2_000);
    await eventually(() => pod.server.gateway.connectionCount === 1, "the dead socket terminated");
    await keepAlive(alive);
    assert.equal(alive.client.received.filter((m) => m.type === "peer-left").length, 0, "the session waits for a resume");

    // After the resume window the session ends with reason timeout.
    pod.server.gateway.tick(t0 + 3 * INTERVAL + 30_000);
    const left = await alive.client.nextOf("peer-left");
    assert.deepEqual([left.peerId, left.reason], [dead.peerId, "timeout"]);
    assert.equal(pod.server.hub.sessions.get(dead.welcome.sessionId), undefined);
    assert.deepEqual(pod.server.hub.rooms.members("r")?.map((m) => m.peerId), [alive.peerId]);
    assert.equal(alive.client.closeCode, null, "the live peer survived every tick");
  });

  test("a socket that answers pings stays, however many intervals pass", async (t) => {
    const pod = await startPod(t, { heartbeatIntervalMs: INTERVAL, heartbeatMissedLimit: 2 });
    const peer = await pod.member("alice", "r");
    let pings = 0;
    peer.client.ws.on("ping", () => void pings++);
    // The first period saw hello and join: no ping.
    const t0 = Date.now() + INTERVAL;
    pod.server.gateway.tick(t0);
    for (let i = 1; i <= 5; i++) {
      pod.server.gateway.tick(t0 + i * INTERVAL);
      // The ws client answers the ping with a pong by itself. A WebSocket-level ping of our own
      // (which is no sign of life to the pod) comes back only after the pod read that pong.
      await eventually(() => pings === i, `ping ${i}`);
      await new Promise<void>((resolve) => {
        peer.client.ws.once("pong", () => resolve());
        peer.client.ws.ping();
      });
    }
    assert.equal(peer.client.closeCode, null);
    assert.ok(pod.server.hub.sessions.get(peer.welcome.sessionId)?.socket);
  });

  test("a client that sends a message every period (the SDK's ping) is never pinged, and one that stops is", async (t) => {
    const pod = await startPod(t, { heartbeatIntervalMs: INTERVAL, heartbeatMissedLimit: 2 });
    const peer = await pod.member("alice", "r");
    let pings = 0;
    peer.client.ws.on("ping", () => void pings++);
    const t0 = Date.now();
    for (let i = 1; i <= 5; i++) {
      await keepAlive(peer);
      pod.server.gateway.tick(t0 + i * INTERVAL);
    }
    await keepAlive(peer);
    assert.equal(pings, 0, "a socket that spoke in every period is not pinged");
    // Silent for a period: pinged (the ws client answers), and kept.
    pod.server.gateway.tick(t0 + 6 * INTERVAL);
    pod.server.gateway.tick(t0 + 7 * INTERVAL);
    await eventually(() => pings === 1, "one ping after a silent period");
    await keepAlive(peer);
    assert.equal(peer.client.closeCode, null);
  });

  test("a heartbeat-dead session resumes and peers see it connected again", async (t) => {
    const pod = await startPod(t, { heartbeatIntervalMs: INTERVAL, heartbeatMissedLimit: 1 });
    const dead = await pod.member("dead", "r");
    const alive = await pod.member("alive", "r");
    (dead.client.ws as unknown as { _socket: Socket })._socket.pause();
    const t0 = Date.now() + INTERVAL;
    pod.server.gateway.tick(t0);
    pod.server.gateway.tick(t0 + INTERVAL);
    await keepAlive(alive);
    pod.server.gateway.tick(t0 + 2 * INTERVAL);
    assert.equal((await alive.client.nextOf("peer-updated")).peer.connected, false);
    alive.client.send({ type: "message", room: "r", to: dead.peerId, data: "while away" });
    await keepAlive(alive);

    const again = pod.connect();
    await again.opened();
    const lastSeq = Math.max(...dead.client.received.flatMap((m) => ("seq" in m && typeof m.seq === "number" ? [m.seq] : [])));
    again.send({ type: "resume", v: 1, sessionId: dead.welcome.sessionId, resumeToken: dead.welcome.resumeToken, lastSeq });
    assert.equal((await again.nextOf("resumed")).replayCount, 1);
    assert.equal((await again.nextOf("message")).data, "while away");
    const back = await alive.client.nextOf("peer-updated");
    assert.deepEqual([back.peer.peerId, back.peer.connected], [dead.peerId, true]);
  });
});

describe("token expiry", () => {
  test("warning, then close 4003 at expiry, then a resume with a fresh token", async (t) => {
    const pod = await startPod(t, { auth: JWT_AUTH, tokenExpiryWarningMs: 600_000, heartbeatIntervalMs: INTERVAL });
    const peer = await pod.member(await jwt("alice", { expiresInSec: 2 }), "r");
    const other = await pod.member(await jwt("bob"), "r");
    const expiresAt = peer.welcome.expiresAt;
    assert.ok(expiresAt !== null && expiresAt > Date.now() - 1000 && expiresAt <= Date.now() + 2000);

    pod.server.gateway.tick(Date.now());
    const warning = await peer.client.nextOf("token-expiring");
    assert.equal(warning.expiresAt, expiresAt);
    assert.equal(typeof warning.seq, "number");
    // Warned once per token.
    pod.server.gateway.tick(Date.now());
    await keepAlive(peer);
    assert.equal(peer.client.received.filter((m) => m.type === "token-expiring").length, 1);
    assert.equal(other.client.received.filter((m) => m.type === "token-expiring").length, 0, "bob's token is far from expiry");

    // At expiry the socket is closed; the session is kept for a resume with a new token.
    pod.server.gateway.tick(expiresAt + 1);
    const err = await peer.client.next((m) => m.type === "error");
    assert.equal((err as ServerMessageOf<"error">).code, "SIG_ERR_TOKEN_EXPIRED");
    assert.equal((err as ServerMessageOf<"error">).retryable, true);
    assert.equal((await closedWithin(peer.client)).code, 4003);
    assert.equal((await other.client.nextOf("peer-updated")).peer.connected, false);
    other.client.send({ type: "message", room: "r", to: peer.peerId, data: "missed" });
    await keepAlive(other);

    const lastSeq = Math.max(...peer.client.received.flatMap((m) => ("seq" in m && typeof m.seq === "number" ? [m.seq] : [])));
    const fresh = await jwt("alice", { expiresInSec: 3600 });
    const again = pod.connect();
    await again.opened();
    again.send({ type: "resume", v: 1, sessionId: peer.welcome.sessionId, resumeToken: peer.welcome.resumeToken, lastSeq, token: fresh });
    const resumed = await again.nextOf("resumed");
    assert.ok(resumed.expiresAt !== null && resumed.expiresAt > expiresAt + 3_000_000);
    assert.equal((await again.nextOf("message")).data, "missed");
    assert.equal((await other.client.nextOf("peer-updated")).peer.connected, true);
  });

  test("a resume after expiry without a fresh token, or with another user's token, fails with auth", async (t) => {
    const pod = await startPod(t, { auth: JWT_AUTH, heartbeatIntervalMs: INTERVAL });
    // Expired 3 s ago: still inside the verifier's 5 s clock tolerance, so hello accepts it, but
    // the pod's own expiry checks (sweep, resume) see it as expired.
    const peer = await pod.open(await jwt("alice", { expiresInSec: -3 }));
    const expiresAt = peer.welcome.expiresAt as number;
    assert.ok(expiresAt < Date.now());
    pod.server.gateway.tick(Date.now());
    assert.equal((await peer.client.nextOf("error")).code, "SIG_ERR_TOKEN_EXPIRED");
    assert.equal((await closedWithin(peer.client)).code, 4003);

    const attempt = async (extra: Record<string, unknown>) => {
      const c = pod.connect();
      await c.opened();
      c.send({ type: "resume", v: 1, sessionId: peer.welcome.sessionId, resumeToken: peer.welcome.resumeToken, lastSeq: 0, ...extra });
      return c.nextOf("resume-failed");
    };
    assert.equal((await attempt({})).reason, "auth");
    assert.equal((await attempt({ token: await jwt("mallory") })).reason, "auth");
    assert.equal((await attempt({ token: "garbage" })).reason, "auth");
    assert.ok(pod.server.hub.sessions.get(peer.welcome.sessionId), "refusals keep the session");
  });

  test("a refresh before expiry moves the deadline: no close at the old expiry", async (t) => {
    const pod = await startPod(t, { auth: JWT_AUTH, tokenExpiryWarningMs: 600_000, heartbeatIntervalMs: INTERVAL });
    const peer = await pod.open(await jwt("alice", { expiresInSec: 2 }));
    const oldExpiry = peer.welcome.expiresAt as number;
    pod.server.gateway.tick(Date.now());
    await peer.client.nextOf("token-expiring");
    const refreshed = (await peer.client.request({ type: "refresh", token: await jwt("alice", { expiresInSec: 3600 }) })) as ServerMessageOf<"refreshed">;
    assert.equal(refreshed.type, "refreshed");
    pod.server.gateway.tick(oldExpiry + 1);
    await keepAlive(peer);
    assert.equal(peer.client.closeCode, null);
    // The warning is re-armed for the new token.
    pod.server.gateway.tick((refreshed.expiresAt as number) - 1000);
    assert.equal((await peer.client.nextOf("token-expiring")).expiresAt, refreshed.expiresAt);
  });
});
