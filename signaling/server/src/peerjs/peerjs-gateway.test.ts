/**
 * The PeerJS face on real sockets: every message type and every error of the PeerJS server
 * protocol, and what the face adds (takeover, LEAVE notices, JWT, the pod's limits). Timeouts are
 * driven through `peerjs.tick(now)` with a clock ahead of the real one, never by sleeping.
 */
import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import type { ConfigInput } from "../config.ts";
import { JWT_AUTH, eventually, jwt, metricValue, startPod, type TestPod } from "../testing/pod.ts";
import { PEERJS_ERRORS } from "./peerjs-protocol.ts";
import { PeerJsRawClient, peerJsUrl } from "./peerjs-raw-client.ts";
import type { PeerJsGateway } from "./peerjs-gateway.ts";

/** A socket to the pod's PeerJS face, dropped when the test ends. */
function connect(t: TestContext, pod: TestPod, params: Parameters<typeof peerJsUrl>[1], options: { origin?: string } = {}): PeerJsRawClient {
  const client = new PeerJsRawClient(peerJsUrl(pod.server.httpUrl, params), options);
  t.after(() => client.drop());
  return client;
}

/** A registered peer: connected, `OPEN` received. */
async function open(t: TestContext, pod: TestPod, id: string, token = `token-of-${id}`): Promise<PeerJsRawClient> {
  const client = connect(t, pod, { id, token });
  await client.nextOf("OPEN");
  return client;
}

function face(pod: TestPod): PeerJsGateway {
  const f = pod.server.peerjs;
  assert.ok(f, "the PeerJS face is enabled");
  return f;
}

/** Resolves once the pod has handled every frame `client` sent before (a relay to itself comes back in order). */
async function settled(client: PeerJsRawClient, id: string): Promise<void> {
  const marker = `sync-${Math.random().toString(36).slice(2)}`;
  client.send({ type: "CANDIDATE", dst: id, payload: { marker } });
  await client.next((m) => m.type === "CANDIDATE" && (m.payload as { marker?: string } | undefined)?.marker === marker);
}

async function startPeerJsPod(t: TestContext, peerjs: Partial<NonNullable<ConfigInput["peerjs"]>> = {}, extra: Partial<ConfigInput> = {}): Promise<TestPod> {
  return startPod(t, { peerjs, ...extra });
}

describe("registration", () => {
  test("a new id gets OPEN and becomes a Switchboard session whose user id is the PeerJS id", async (t) => {
    const pod = await startPeerJsPod(t);
    const a = await open(t, pod, "alice");
    assert.deepEqual(a.malformed, []);
    const sessions = [...pod.server.hub.sessions.devicesOf("alice")];
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0]?.device, "peerjs");
    const metrics = await pod.metrics();
    assert.equal(metricValue(metrics, "switchboard_sessions"), 1);
    assert.equal(metricValue(metrics, "switchboard_connections"), 1);
    assert.equal(metricValue(metrics, "switchboard_messages_out_total", { type: "peerjs.OPEN" }), 1);
  });

  for (const missing of ["id", "token", "key"] as const) {
    test(`a missing ${missing} gets ERROR "${PEERJS_ERRORS.INVALID_WS_PARAMETERS}" and the socket closes`, async (t) => {
      const pod = await startPeerJsPod(t);
      const c = connect(t, pod, { id: "alice", [missing]: null });
      const err = await c.nextOf("ERROR");
      assert.equal(err.payload.msg, "No id, token, or key supplied to websocket server");
      assert.equal((await c.closed).code, 1008);
      assert.equal(pod.server.hub.sessions.size, 0);
    });
  }

  test(`a wrong key gets ERROR "${PEERJS_ERRORS.INVALID_KEY}"`, async (t) => {
    const pod = await startPeerJsPod(t, { key: "s3cret" });
    const c = connect(t, pod, { id: "alice", key: "peerjs" });
    assert.equal((await c.nextOf("ERROR")).payload.msg, "Invalid key provided");
    await c.closed;
    const ok = connect(t, pod, { id: "alice", key: "s3cret" });
    await ok.nextOf("OPEN");
  });

  test("the same id with another token gets ID-TAKEN; the holder keeps it", async (t) => {
    const pod = await startPeerJsPod(t);
    const a = await open(t, pod, "alice", "token-1");
    const intruder = connect(t, pod, { id: "alice", token: "token-2" });
    const taken = await intruder.nextOf("ID-TAKEN");
    assert.equal(taken.payload.msg, "ID is taken");
    await intruder.closed;
    await settled(a, "alice");
    assert.equal(a.closeCode, null);
    assert.equal(pod.server.hub.sessions.size, 1);
  });

  test("the same id with the same token while the old socket is open takes over at once, with OPEN", async (t) => {
    const pod = await startPeerJsPod(t);
    const a1 = await open(t, pod, "alice", "token-1");
    const b = await open(t, pod, "bob");
    b.send({ type: "OFFER", dst: "alice", payload: { n: 1 } });
    await a1.nextOf("OFFER");
    const sessionBefore = pod.server.hub.sessions.devicesOf("alice");
    const [before] = [...sessionBefore];

    const a2 = await open(t, pod, "alice", "token-1");
    assert.equal((await a1.closed).code, 4004, "the old socket is closed");
    const [after] = [...pod.server.hub.sessions.devicesOf("alice")];
    assert.equal(after, before, "the same session continues");
    b.send({ type: "OFFER", dst: "alice", payload: { n: 2 } });
    assert.deepEqual((await a2.nextOf("OFFER")).payload, { n: 2 });
    await settled(b, "bob");
    assert.deepEqual(b.unconsumed(), [], "no LEAVE: alice never left");
  });

  test(`past concurrentLimit a new id gets ERROR "${PEERJS_ERRORS.CONNECTION_LIMIT_EXCEED}"; a takeover still works`, async (t) => {
    const pod = await startPeerJsPod(t, { concurrentLimit: 2 });
    await open(t, pod, "a");
    await open(t, pod, "b", "tb");
    const c = connect(t, pod, { id: "c" });
    assert.equal((await c.nextOf("ERROR")).payload.msg, "Server has reached its concurrent user limit");
    await c.closed;
    await open(t, pod, "b", "tb");
  });

  test("the pod-wide socket cap counts PeerJS sockets too", async (t) => {
    const pod = await startPeerJsPod(t, {}, { limits: { maxConnections: 1 } });
    await open(t, pod, "a");
    const b = connect(t, pod, { id: "b" });
    assert.equal((await b.nextOf("ERROR")).payload.msg, PEERJS_ERRORS.CONNECTION_LIMIT_EXCEED);
  });

  test("the Origin allowlist and the draining pod refuse the upgrade with an HTTP status", async (t) => {
    const pod = await startPeerJsPod(t, {}, { allowedOrigins: ["https://app.example"] });
    const bad = connect(t, pod, { id: "a" }, { origin: "https://evil.example" });
    await assert.rejects(bad.opened(), { status: 403 });
    const good = connect(t, pod, { id: "a" }, { origin: "https://app.example" });
    await good.nextOf("OPEN");

    await pod.server.drain();
    assert.equal((await good.closed).code, 1012);
    const late = connect(t, pod, { id: "b" }, { origin: "https://app.example" });
    await assert.rejects(late.opened(), { status: 503 });
  });

  test("with peerjs.enabled off, the path is not served", async (t) => {
    const pod = await startPeerJsPod(t, { enabled: false });
    assert.equal(pod.server.peerjs, null);
    const c = connect(t, pod, { id: "a" });
    await assert.rejects(c.opened(), { status: 404 });
    assert.equal((await pod.http("/peerjs/peerjs/id")).status, 404);
  });
});

describe("relay", () => {
  test("OFFER, ANSWER and CANDIDATE reach dst with src overwritten and the payload untouched", async (t) => {
    const pod = await startPeerJsPod(t);
    const a = await open(t, pod, "alice");
    const b = await open(t, pod, "bob");
    const sdp = { type: "offer", sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n" };
    a.send({ type: "OFFER", src: "mallory", dst: "bob", payload: { sdp, type: "data", connectionId: "dc_1", metadata: { x: [1, 2] }, label: "dc_1", reliable: true, serialization: "binary" } });
    const offer = await b.nextOf("OFFER");
    assert.deepEqual(offer, { type: "OFFER", src: "alice", dst: "bob", payload: { sdp, type: "data", connectionId: "dc_1", metadata: { x: [1, 2] }, label: "dc_1", reliable: true, serialization: "binary" } });

    b.send({ type: "ANSWER", dst: "alice", payload: { sdp: { type: "answer", sdp: "v=0" }, type: "data", connectionId: "dc_1" } });
    const answer = await a.nextOf("ANSWER");
    assert.deepEqual([answer.src, answer.dst], ["bob", "alice"]);

    const candidate = { candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "abcd" };
    b.send({ type: "CANDIDATE", src: "alice", dst: "alice", payload: { candidate, type: "data", connectionId: "dc_1" } });
    const cand = await a.nextOf("CANDIDATE");
    assert.equal(cand.src, "bob");
    assert.deepEqual(cand.payload, { candidate, type: "data", connectionId: "dc_1" });

    const metrics = await pod.metrics();
    assert.equal(metricValue(metrics, "switchboard_messages_in_total", { type: "peerjs.OFFER" }), 1);
    assert.equal(metricValue(metrics, "switchboard_messages_out_total", { type: "peerjs.ANSWER" }), 1);
  });

  test("messages for a peer that has not connected yet are delivered, in order, right after its OPEN", async (t) => {
    const pod = await startPeerJsPod(t);
    const a = await open(t, pod, "alice");
    a.send({ type: "OFFER", dst: "bob", payload: { n: 1 } });
    a.send({ type: "CANDIDATE", dst: "bob", payload: { n: 2 } });
    a.send({ type: "LEAVE", dst: "bob" });
    await settled(a, "alice");
    const b = connect(t, pod, { id: "bob" });
    assert.equal((await b.next()).type, "OPEN");
    assert.deepEqual(await b.next(), { type: "OFFER", src: "alice", dst: "bob", payload: { n: 1 } });
    assert.deepEqual(await b.next(), { type: "CANDIDATE", src: "alice", dst: "bob", payload: { n: 2 } });
    await settled(b, "bob");
    assert.deepEqual(b.unconsumed(), [], "LEAVE to an absent peer is not queued (as in PeerJS server)");
    // Nothing expires after delivery.
    face(pod).tick(Date.now() + 10_000);
    await settled(a, "alice");
    assert.deepEqual(a.unconsumed(), []);
  });

  test("a message never picked up expires: one EXPIRE per sender after expireTimeoutMs", async (t) => {
    const pod = await startPeerJsPod(t);
    const a = await open(t, pod, "alice");
    const c = await open(t, pod, "carol");
    a.send({ type: "OFFER", dst: "ghost", payload: { n: 1 } });
    a.send({ type: "CANDIDATE", dst: "ghost", payload: { n: 2 } });
    c.send({ type: "OFFER", dst: "ghost", payload: { n: 3 } });
    await settled(a, "alice");
    await settled(c, "carol");

    face(pod).tick(Date.now() + 1_000);
    await settled(a, "alice");
    assert.deepEqual(a.unconsumed(), [], "not before the timeout");

    face(pod).tick(Date.now() + 5_000);
    assert.deepEqual(await a.nextOf("EXPIRE"), { type: "EXPIRE", src: "ghost", dst: "alice" });
    assert.deepEqual(await c.nextOf("EXPIRE"), { type: "EXPIRE", src: "ghost", dst: "carol" });
    await settled(a, "alice");
    assert.deepEqual(a.unconsumed(), [], "one EXPIRE per (sender, destination)");
    assert.equal(face(pod).realm.queuedBytes, 0);

    const ghost = connect(t, pod, { id: "ghost" });
    await ghost.nextOf("OPEN");
    await settled(ghost, "ghost");
    assert.deepEqual(ghost.unconsumed(), [], "expired messages are gone");
  });

  test("the queue is bounded: past maxQueuedPerPeer the sender gets EXPIRE at once", async (t) => {
    const pod = await startPeerJsPod(t, { maxQueuedPerPeer: 2 });
    const a = await open(t, pod, "alice");
    for (let n = 1; n <= 3; n++) a.send({ type: "CANDIDATE", dst: "ghost", payload: { n } });
    assert.deepEqual(await a.nextOf("EXPIRE"), { type: "EXPIRE", src: "ghost", dst: "alice" });
    const ghost = connect(t, pod, { id: "ghost" });
    await ghost.nextOf("OPEN");
    assert.deepEqual((await ghost.nextOf("CANDIDATE")).payload, { n: 1 });
    assert.deepEqual((await ghost.nextOf("CANDIDATE")).payload, { n: 2 });
  });

  test("invalid frames are ignored without a reply, up to the pod's invalid-message limit", async (t) => {
    const pod = await startPeerJsPod(t, {}, { limits: { maxInvalidMessages: 3 } });
    const a = await open(t, pod, "alice");
    const b = await open(t, pod, "bob");
    a.sendText("{not json");
    a.send({ type: "TELEPORT", dst: "bob" });
    a.send({ type: "OFFER", dst: 42 });
    a.send({ type: "OFFER", dst: "bob", payload: { ok: true } });
    assert.deepEqual((await b.nextOf("OFFER")).payload, { ok: true });
    assert.deepEqual(a.unconsumed(), []);
    assert.equal(a.closeCode, null);
    const metrics = await pod.metrics();
    assert.equal(metricValue(metrics, "switchboard_errors_total", { code: "SIG_ERR_BAD_JSON" }), 1);
    assert.equal(metricValue(metrics, "switchboard_errors_total", { code: "SIG_ERR_UNKNOWN_TYPE" }), 1);
    assert.equal(metricValue(metrics, "switchboard_errors_total", { code: "SIG_ERR_BAD_MESSAGE" }), 1);
    a.sendText("[]");
    assert.equal((await a.closed).code, 4009);
  });

  test("a frame over the pod's message size closes the socket with 1009", async (t) => {
    const pod = await startPeerJsPod(t, {}, { limits: { maxMessageBytes: 1024 } });
    const a = await open(t, pod, "alice");
    a.send({ type: "OFFER", dst: "bob", payload: "x".repeat(2048) });
    assert.equal((await a.closed).code, 1009);
  });
});

describe("liveness and leaving", () => {
  test("HEARTBEAT keeps a socket alive; a silent one is closed after aliveTimeoutMs", async (t) => {
    const pod = await startPeerJsPod(t, { aliveTimeoutMs: 60_000 });
    const a = await open(t, pod, "alice");
    const b = await open(t, pod, "bob");
    // Bob registered last and has been silent since; Alice's heartbeat comes after that.
    const bobSeen = face(pod).realm.get("bob")?.lastSeenAtMs ?? 0;
    await eventually(() => Date.now() > bobSeen, "the clock to move");
    a.send({ type: "HEARTBEAT" });
    await eventually(() => (face(pod).realm.get("alice")?.lastSeenAtMs ?? 0) > bobSeen, "the heartbeat to be handled");

    face(pod).tick(bobSeen + 60_000);
    assert.equal((await b.closed).code, 4011, "bob was silent");
    await settled(a, "alice");
    assert.equal(a.closeCode, null, "alice sent a heartbeat");
    assert.equal(metricValue(await pod.metrics(), "switchboard_messages_in_total", { type: "peerjs.HEARTBEAT" }), 1);
  });

  test("a peer whose page closes (1001) is announced at once with LEAVE to every peer it talked to", async (t) => {
    const pod = await startPeerJsPod(t);
    const a = await open(t, pod, "alice");
    const b = await open(t, pod, "bob");
    const c = await open(t, pod, "carol");
    a.send({ type: "OFFER", dst: "bob", payload: {} });
    await b.nextOf("OFFER");
    await b.close(1001);
    assert.deepEqual(await a.nextOf("LEAVE"), { type: "LEAVE", src: "bob", dst: "alice" });
    await settled(c, "carol");
    assert.deepEqual(c.unconsumed(), [], "carol never talked to bob");
    assert.equal(pod.server.hub.sessions.devicesOf("bob").size, 0, "bob's session ended");
  });

  test("a dropped peer has leaveGraceMs to come back with its token before LEAVE goes out", async (t) => {
    const pod = await startPeerJsPod(t, { leaveGraceMs: 5_000 });
    const a = await open(t, pod, "alice");
    const b1 = await open(t, pod, "bob", "bob-token");
    b1.send({ type: "OFFER", dst: "alice", payload: {} });
    await a.nextOf("OFFER");
    const [session] = [...pod.server.hub.sessions.devicesOf("bob")];

    b1.drop();
    await eventually(() => face(pod).realm.isDeparting("bob"), "the drop to be seen");
    assert.equal(session?.socket, null, "the session waits, detached");
    a.send({ type: "ANSWER", dst: "bob", payload: { while: "away" } });
    await settled(a, "alice");
    face(pod).tick(Date.now() + 1_000);

    const b2 = connect(t, pod, { id: "bob", token: "bob-token" });
    await b2.nextOf("OPEN");
    assert.deepEqual((await b2.nextOf("ANSWER")).payload, { while: "away" }, "what came meanwhile was queued");
    assert.equal([...pod.server.hub.sessions.devicesOf("bob")][0], session, "the same session resumed");
    face(pod).tick(Date.now() + 10_000);
    await settled(a, "alice");
    assert.deepEqual(a.unconsumed(), [], "no LEAVE: bob came back in time");

    b2.drop();
    await eventually(() => face(pod).realm.isDeparting("bob"), "the second drop to be seen");
    face(pod).tick(Date.now() + 5_000);
    assert.deepEqual(await a.nextOf("LEAVE"), { type: "LEAVE", src: "bob", dst: "alice" });
    assert.equal(session?.ended, true);
  });

  test("another token may take a dropped id during the grace; the old peer's LEAVE goes out first", async (t) => {
    const pod = await startPeerJsPod(t);
    const a = await open(t, pod, "alice");
    const b1 = await open(t, pod, "bob", "old");
    a.send({ type: "OFFER", dst: "bob", payload: {} });
    await b1.nextOf("OFFER");
    b1.drop();
    await eventually(() => face(pod).realm.isDeparting("bob"), "the drop to be seen");
    await open(t, pod, "bob", "new");
    assert.deepEqual(await a.nextOf("LEAVE"), { type: "LEAVE", src: "bob", dst: "alice" });
  });

  test("LEAVE without dst removes the sender, announces it, and closes its socket", async (t) => {
    const pod = await startPeerJsPod(t);
    const a = await open(t, pod, "alice");
    const b = await open(t, pod, "bob");
    b.send({ type: "CANDIDATE", dst: "alice", payload: {} });
    await a.nextOf("CANDIDATE");
    b.send({ type: "LEAVE" });
    assert.deepEqual(await a.nextOf("LEAVE"), { type: "LEAVE", src: "bob", dst: "alice" });
    assert.equal((await b.closed).code, 1000);
  });

  test("LEAVE and EXPIRE sent by a client to a connected peer are relayed (as in PeerJS server)", async (t) => {
    const pod = await startPeerJsPod(t);
    const a = await open(t, pod, "alice");
    const b = await open(t, pod, "bob");
    a.send({ type: "LEAVE", dst: "bob" });
    assert.deepEqual(await b.nextOf("LEAVE"), { type: "LEAVE", src: "alice", dst: "bob" });
    a.send({ type: "EXPIRE", src: "x", dst: "bob" });
    assert.deepEqual(await b.nextOf("EXPIRE"), { type: "EXPIRE", src: "alice", dst: "bob" });
  });

  test("an admin kick closes the socket (4012) and tells the peer's contacts", async (t) => {
    const pod = await startPeerJsPod(t, {}, { adminToken: "admin-token-0123456789" });
    const a = await open(t, pod, "alice");
    const b = await open(t, pod, "bob");
    b.send({ type: "OFFER", dst: "alice", payload: {} });
    await a.nextOf("OFFER");
    const [session] = [...pod.server.hub.sessions.devicesOf("bob")];
    const res = await pod.http(`/admin/peers/${session?.peerId}/kick`, {
      method: "POST",
      headers: { authorization: "Bearer admin-token-0123456789", "content-type": "application/json" },
      body: JSON.stringify({ ban: "service", banMs: 60_000 }),
    });
    assert.equal(res.status, 200);
    assert.equal((await b.closed).code, 4013);
    assert.deepEqual(await a.nextOf("LEAVE"), { type: "LEAVE", src: "bob", dst: "alice" });
    const again = connect(t, pod, { id: "bob", token: "token-of-bob" });
    assert.equal((await again.nextOf("ERROR")).payload.msg, PEERJS_ERRORS.BANNED);
  });
});

describe("HTTP API", () => {
  test("GET {path}/ answers the info document; GET {path}/{key}/id a fresh id as text/html", async (t) => {
    const pod = await startPeerJsPod(t);
    const info = await pod.http("/peerjs/");
    assert.equal(info.status, 200);
    assert.equal((info.body as { name: string }).name, "PeerJS Server");
    assert.equal((await pod.http("/peerjs")).status, 200);

    const res = await fetch(`${pod.server.httpUrl}/peerjs/peerjs/id?ts=1&version=1.5.5`, { headers: { origin: "http://localhost:3000" } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(res.headers.get("access-control-allow-origin"), "http://localhost:3000");
    const id = await res.text();
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.notEqual(id, await (await fetch(`${pod.server.httpUrl}/peerjs/peerjs/id`)).text());
    const c = connect(t, pod, { id });
    await c.nextOf("OPEN");

    assert.equal((await pod.http("/peerjs/wrong-key/id")).status, 401);
    assert.equal((await pod.http("/peerjs/peerjs/nothing")).status, 404);
    assert.equal((await pod.http("/peerjs/peerjs/id", { method: "POST" })).status, 404);
    const preflight = await fetch(`${pod.server.httpUrl}/peerjs/peerjs/id`, {
      method: "OPTIONS",
      headers: { origin: "http://localhost:3000", "access-control-request-method": "GET", "access-control-request-headers": "x-custom" },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-headers"), "x-custom");
  });

  test("GET {path}/{key}/peers is 401 unless allowDiscovery, then it lists the connected ids", async (t) => {
    const closed = await startPeerJsPod(t);
    await open(t, closed, "alice");
    assert.equal((await closed.http("/peerjs/peerjs/peers")).status, 401);

    const pod = await startPeerJsPod(t, { allowDiscovery: true, path: "/rtc/peer-server", key: "k1" });
    const a = new PeerJsRawClient(peerJsUrl(pod.server.httpUrl, { id: "alice", key: "k1" }, "/rtc/peer-server"));
    t.after(() => a.drop());
    await a.nextOf("OPEN");
    const b = new PeerJsRawClient(peerJsUrl(pod.server.httpUrl, { id: "bob", key: "k1" }, "/rtc/peer-server"));
    t.after(() => b.drop());
    await b.nextOf("OPEN");
    const list = await pod.http("/rtc/peer-server/k1/peers");
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, ["alice", "bob"]);
  });

  test("the rest of the pod is untouched by the face", async (t) => {
    const pod = await startPeerJsPod(t);
    assert.equal((await pod.http("/healthz")).status, 200);
    assert.equal((await pod.http("/peerjsx")).status, 404);
    const { welcome } = await pod.open("alice");
    assert.equal(welcome.userId, "alice");
  });
});

describe("JWT mode", () => {
  const jwtPod = (t: TestContext, peerjs: Partial<NonNullable<ConfigInput["peerjs"]>> = {}) => startPod(t, { auth: JWT_AUTH, peerjs });

  test("the token must be a JWT whose sub is the id and that grants signal", async (t) => {
    const pod = await jwtPod(t);
    const plain = connect(t, pod, { id: "alice", token: "random-token" });
    assert.equal((await plain.nextOf("ERROR")).payload.msg, "Invalid token provided");
    assert.equal((await plain.closed).code, 4001);

    const other = connect(t, pod, { id: "alice", token: await jwt("mallory") });
    assert.equal((await other.nextOf("ERROR")).payload.msg, PEERJS_ERRORS.INVALID_TOKEN);

    const noGrant = connect(t, pod, { id: "alice", token: await jwt("alice", { grants: ["join"] }) });
    assert.equal((await noGrant.nextOf("ERROR")).payload.msg, PEERJS_ERRORS.INVALID_TOKEN);

    const expired = connect(t, pod, { id: "alice", token: await jwt("alice", { nowMs: Date.now() - 7_200_000 }) });
    assert.equal((await expired.nextOf("ERROR")).payload.msg, PEERJS_ERRORS.INVALID_TOKEN);
    assert.equal((await expired.closed).code, 4003);

    const ok = connect(t, pod, { id: "alice", token: await jwt("alice") });
    await ok.nextOf("OPEN");
  });

  test("a JWT proves the id: a new token for the same sub takes over instead of ID-TAKEN", async (t) => {
    const pod = await jwtPod(t);
    const a1 = connect(t, pod, { id: "alice", token: await jwt("alice") });
    await a1.nextOf("OPEN");
    const a2 = connect(t, pod, { id: "alice", token: await jwt("alice", { expiresInSec: 7200 }) });
    await a2.nextOf("OPEN");
    assert.equal((await a1.closed).code, 4004);
  });

  test("when the JWT expires the socket gets ERROR \"Token expired\" and closes with 4003", async (t) => {
    const pod = await jwtPod(t);
    const a = connect(t, pod, { id: "alice", token: await jwt("alice", { expiresInSec: 60 }) });
    await a.nextOf("OPEN");
    face(pod).tick(Date.now() + 61_000);
    assert.equal((await a.nextOf("ERROR")).payload.msg, "Token expired");
    assert.equal((await a.closed).code, 4003);
  });

  test("peerjs.auth = key accepts any id with the key alone, even on a jwt pod", async (t) => {
    const pod = await jwtPod(t, { auth: "key" });
    const a = connect(t, pod, { id: "anyone", token: "whatever" });
    await a.nextOf("OPEN");
  });
});
