/**
 * Every message family of protocol v1 on real sockets: session (hello, ping, ack, refresh, bye),
 * rooms (join, leave, update, snapshots), relay, broadcast and direct messages, with the refusals
 * of each and the guarantee that a refused request changes nothing.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { PROTOCOL_VERSION, type ServerMessageOf } from "@switchboard/protocol";
import { closedWithin, eventually, jwt, JWT_AUTH, startPod, type TestPod } from "./testing/pod.ts";
import type { RawClient } from "./testing/raw-client.ts";

type ErrorFrame = ServerMessageOf<"error">;

/** Sends a request and asserts the reply is an error with `code` (and `field`, when given). */
async function expectError(client: RawClient, message: Record<string, unknown>, code: string, field?: string): Promise<ErrorFrame> {
  const reply = await client.request(message);
  assert.equal(reply.type, "error", `expected ${code}, got ${JSON.stringify(reply)}`);
  const err = reply as ErrorFrame;
  assert.equal(err.code, code, err.message);
  if (field !== undefined) assert.equal(err.field, field);
  return err;
}

/** The members of a room on the pod, by peer id, in join order. */
function membersOf(pod: TestPod, room: string): string[] | undefined {
  return pod.server.hub.rooms.members(room)?.map((m) => m.peerId);
}

describe("session family", () => {
  test("hello answers welcome with the session, limits and heartbeat", async (t) => {
    const pod = await startPod(t, {
      podName: "pod-a",
      heartbeatIntervalMs: 20_000,
      resumeWindowMs: 15_000,
      limits: { maxPeersPerRoom: 7, maxRoomsPerSession: 3, rateBurst: 9 },
      turn: { stunUrls: ["stun:stun.example:3478"] },
    });
    const client = pod.connect();
    await client.opened();
    client.send({ type: "hello", v: PROTOCOL_VERSION, token: "alice", id: "h1", device: "laptop" });
    const w = await client.nextOf("welcome");
    assert.equal(w.id, "h1");
    assert.equal(w.v, PROTOCOL_VERSION);
    assert.equal(w.userId, "alice");
    assert.match(w.sessionId, /^s_/);
    assert.match(w.peerId, /^p_[A-Za-z0-9_-]+$/);
    assert.ok(w.resumeToken.length >= 32);
    assert.equal(w.expiresAt, null, "insecure-dev tokens never expire");
    assert.equal(w.heartbeatIntervalMs, 20_000);
    assert.equal(w.resumeWindowMs, 15_000);
    assert.equal(w.trickleIce, true);
    assert.equal(w.pod, "pod-a");
    assert.deepEqual(w.iceServers, [{ urls: ["stun:stun.example:3478"] }]);
    assert.deepEqual(w.limits, {
      maxMessageBytes: 65536,
      ratePerSecond: 50,
      rateBurst: 9,
      maxPeersPerRoom: 7,
      maxRoomsPerSession: 3,
      maxOutboundBytes: 1024 * 1024,
    });
    assert.equal(pod.server.hub.sessions.get(w.sessionId)?.device, "laptop");
  });

  test("with TURN configured, welcome and refreshed carry ephemeral credentials for the user", async (t) => {
    const secret = "turn-shared-secret-0123456789";
    const pod = await startPod(t, { turn: { secret, urls: ["turn:turn.example:3478"], stunUrls: ["stun:stun.example:3478"], ttlSec: 600 } });
    const { client, welcome } = await pod.open("alice");
    assert.equal(welcome.iceServersTtlSec, 600);
    assert.deepEqual(welcome.iceServers[0], { urls: ["stun:stun.example:3478"] });
    const turn = welcome.iceServers[1];
    assert.ok(turn?.username && turn.credential);
    const [expiry, user] = turn.username.split(":");
    assert.equal(user, "alice");
    assert.ok(Math.abs(Number(expiry) - (Date.now() / 1000 + 600)) < 60);
    assert.equal(turn.credential, createHmac("sha1", secret).update(turn.username).digest("base64"));
    const refreshed = (await client.request({ type: "refresh", token: "alice" })) as ServerMessageOf<"refreshed">;
    assert.equal(refreshed.iceServersTtlSec, 600);
    assert.equal(refreshed.iceServers[1]?.username?.endsWith(":alice"), true);
  });

  test("the token may come in the Sec-WebSocket-Protocol header instead of hello", async (t) => {
    const pod = await startPod(t);
    const client = pod.connect({ protocols: ["switchboard.v1", "bearer.carol"] });
    await client.opened();
    assert.equal(client.ws.protocol, "switchboard.v1");
    client.send({ type: "hello", v: 1 });
    const w = await client.nextOf("welcome");
    assert.equal(w.userId, "carol");
  });

  test("ping answers pong with the client's ts and the server time", async (t) => {
    const pod = await startPod(t);
    const { client } = await pod.open("alice");
    const before = Date.now();
    const pong = (await client.request({ type: "ping", ts: 12345 })) as ServerMessageOf<"pong">;
    assert.equal(pong.type, "pong");
    assert.equal(pong.ts, 12345);
    assert.ok(pong.serverTime >= before - 1000);
    assert.equal("seq" in pong, false, "pong is outside the stream");
  });

  test("ack (explicit and piggybacked) trims the replay buffer", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    for (let i = 0; i < 5; i++) b.client.send({ type: "message", room: "r", to: a.peerId, data: i });
    let last: ServerMessageOf<"message"> | undefined;
    for (let i = 0; i < 5; i++) last = await a.client.nextOf("message");
    const session = pod.server.hub.sessions.get(a.welcome.sessionId);
    assert.ok(session && last);
    // joined (1), peer-joined (2), five messages (3..7), nothing acknowledged yet.
    assert.equal(last.seq, 7);
    assert.equal(session.replayLength, 7);
    a.client.send({ type: "ack", seq: 4 });
    await a.client.request({ type: "ping" });
    assert.equal(session.ackedSeq, 4);
    assert.equal(session.replayLength, 3);
    // Piggybacked on any message.
    await a.client.request({ type: "ping", ack: 7 });
    assert.equal(session.ackedSeq, 7);
    assert.equal(session.replayLength, 0);
    assert.equal(session.replayBytes, 0);
  });

  test("refresh with a new token answers refreshed; a token for another user is refused", async (t) => {
    const pod = await startPod(t, { auth: JWT_AUTH });
    const { client, welcome } = await pod.open(await jwt("alice", { expiresInSec: 60 }));
    assert.ok(welcome.expiresAt !== null);
    const refreshed = (await client.request({ type: "refresh", token: await jwt("alice", { expiresInSec: 7200 }) })) as ServerMessageOf<"refreshed">;
    assert.equal(refreshed.type, "refreshed");
    assert.ok(refreshed.expiresAt !== null && refreshed.expiresAt > welcome.expiresAt + 3_600_000);
    assert.equal(typeof refreshed.seq, "number");
    assert.equal(pod.server.hub.sessions.get(welcome.sessionId)?.principal.expiresAt, refreshed.expiresAt);

    const err = await expectError(client, { type: "refresh", token: await jwt("mallory") }, "SIG_ERR_AUTH_FAILED");
    assert.equal(err.retryable, false);
    assert.equal(pod.server.hub.sessions.get(welcome.sessionId)?.principal.userId, "alice");
    assert.equal(pod.server.hub.sessions.get(welcome.sessionId)?.principal.expiresAt, refreshed.expiresAt, "a refused refresh changes nothing");
    // The socket stays open.
    assert.equal((await client.request({ type: "ping" })).type, "pong");

    await expectError(client, { type: "refresh", token: "not-a-jwt" }, "SIG_ERR_AUTH_FAILED");
  });

  test("bye: peers get peer-left closed, the socket closes 1000 and the session ends", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    a.client.send({ type: "bye", id: "b1", reason: "done" });
    const ok = await a.client.nextOf("ok");
    assert.equal(ok.id, "b1");
    const closed = await closedWithin(a.client);
    assert.equal(closed.code, 1000);
    const left = await b.client.nextOf("peer-left");
    assert.deepEqual([left.room, left.peerId, left.reason], ["r", a.peerId, "closed"]);
    assert.equal(pod.server.hub.sessions.get(a.welcome.sessionId), undefined);
    assert.deepEqual(membersOf(pod, "r"), [b.peerId]);
  });

  test("a client close with 1000 ends the session like bye", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    await a.client.close(1000);
    const left = await b.client.nextOf("peer-left");
    assert.equal(left.reason, "closed");
    assert.equal(pod.server.hub.sessions.get(a.welcome.sessionId), undefined);
  });
});

describe("room family", () => {
  test("join: the snapshot lists earlier peers in join order and self carries its meta", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "room-1", { name: "Alice" });
    const b = await pod.member("bob", "room-1", { name: "Bob" });
    const c = await pod.open("carol");
    const joined = (await c.client.request({ type: "join", room: "room-1", meta: { name: "Carol", muted: true } })) as ServerMessageOf<"joined">;
    assert.equal(joined.type, "joined");
    assert.equal(joined.room, "room-1");
    assert.deepEqual(joined.self, { peerId: c.peerId, userId: "carol", meta: { name: "Carol", muted: true }, connected: true });
    assert.deepEqual(joined.peers, [
      { peerId: a.peerId, userId: "alice", meta: { name: "Alice" }, connected: true },
      { peerId: b.peerId, userId: "bob", meta: { name: "Bob" }, connected: true },
    ]);
    assert.deepEqual(a.joined.peers, [], "the first peer sees an empty room");
    // The earlier peers are told, in order.
    const aSeesB = await a.client.nextOf("peer-joined");
    assert.equal(aSeesB.peer.peerId, b.peerId);
    const aSeesC = await a.client.nextOf("peer-joined");
    assert.deepEqual(aSeesC.peer, joined.self);
    const bSeesC = await b.client.nextOf("peer-joined");
    assert.deepEqual(bSeesC.peer, joined.self);
    assert.ok(aSeesC.seq > aSeesB.seq);
    // Without meta, self has empty meta.
    const d = await pod.open("dave");
    const dj = (await d.client.request({ type: "join", room: "room-1" })) as ServerMessageOf<"joined">;
    assert.deepEqual(dj.self.meta, {});
    assert.equal(dj.peers.length, 3);
  });

  test("leave: peers get peer-left left; leaving again is SIG_ERR_NOT_IN_ROOM", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    const ok = await a.client.request({ type: "leave", room: "r" });
    assert.equal(ok.type, "ok");
    const left = await b.client.nextOf("peer-left");
    assert.deepEqual([left.peerId, left.reason], [a.peerId, "left"]);
    assert.deepEqual(membersOf(pod, "r"), [b.peerId]);
    assert.equal(pod.server.hub.sessions.get(a.welcome.sessionId)?.rooms.has("r"), false);
    await expectError(a.client, { type: "leave", room: "r" }, "SIG_ERR_NOT_IN_ROOM");
    // The last one out removes the room.
    await b.client.request({ type: "leave", room: "r" });
    assert.equal(pod.server.hub.rooms.size, 0);
  });

  test("update: peers get peer-updated with the new meta", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r", { v: 1 });
    const b = await pod.member("bob", "r");
    assert.equal((await a.client.request({ type: "update", room: "r", meta: { v: 2, camera: "off" } })).type, "ok");
    const upd = await b.client.nextOf("peer-updated");
    assert.deepEqual(upd.peer, { peerId: a.peerId, userId: "alice", meta: { v: 2, camera: "off" }, connected: true });
    assert.equal(upd.room, "r");
    // Later joiners see the new meta in the snapshot.
    const c = await pod.member("carol", "r");
    assert.deepEqual(c.joined.peers[0]?.meta, { v: 2, camera: "off" });
    await expectError(a.client, { type: "update", room: "elsewhere", meta: {} }, "SIG_ERR_NOT_IN_ROOM");
  });

  test("join twice is SIG_ERR_ALREADY_IN_ROOM", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    await expectError(a.client, { type: "join", room: "r" }, "SIG_ERR_ALREADY_IN_ROOM");
    assert.deepEqual(membersOf(pod, "r"), [a.peerId]);
  });

  test("room full: SIG_ERR_ROOM_FULL, and the room and session are unchanged", async (t) => {
    const pod = await startPod(t, { limits: { maxPeersPerRoom: 2 } });
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    const c = await pod.open("carol");
    const err = await expectError(c.client, { type: "join", room: "r", meta: { x: 1 } }, "SIG_ERR_ROOM_FULL");
    assert.equal(err.retryable, true);
    assert.deepEqual(membersOf(pod, "r"), [a.peerId, b.peerId]);
    assert.equal(pod.server.hub.sessions.get(c.welcome.sessionId)?.rooms.size, 0);
    // Nobody was told about carol: the next event a sees is the one b sends now.
    b.client.send({ type: "broadcast", room: "r", data: "after" });
    const next = await a.client.next((m) => m.type !== "peer-joined" || m.peer.peerId !== b.peerId);
    assert.equal(next.type, "broadcast");
    // Carol is not a member: she cannot send to the room.
    await expectError(c.client, { type: "broadcast", room: "r", data: 1 }, "SIG_ERR_NOT_IN_ROOM");
    // Once someone leaves, the join succeeds.
    await b.client.request({ type: "leave", room: "r" });
    assert.equal((await c.client.request({ type: "join", room: "r" })).type, "joined");
  });

  test("too many rooms: SIG_ERR_TOO_MANY_ROOMS, and no room is created", async (t) => {
    const pod = await startPod(t, { limits: { maxRoomsPerSession: 2 } });
    const a = await pod.open("alice");
    assert.equal((await a.client.request({ type: "join", room: "r1" })).type, "joined");
    assert.equal((await a.client.request({ type: "join", room: "r2" })).type, "joined");
    await expectError(a.client, { type: "join", room: "r3" }, "SIG_ERR_TOO_MANY_ROOMS");
    assert.deepEqual([...(pod.server.hub.sessions.get(a.welcome.sessionId)?.rooms ?? [])], ["r1", "r2"]);
    assert.equal(membersOf(pod, "r3"), undefined);
    assert.equal(pod.server.hub.rooms.size, 2);
  });

  test("forbidden: a token without the join grant, or outside its room patterns", async (t) => {
    const pod = await startPod(t, { auth: JWT_AUTH });
    const noJoin = await pod.open(await jwt("alice", { grants: ["signal"] }));
    await expectError(noJoin.client, { type: "join", room: "team-red" }, "SIG_ERR_FORBIDDEN");
    const teams = await pod.open(await jwt("bob", { rooms: ["team-*"] }));
    await expectError(teams.client, { type: "join", room: "lobby" }, "SIG_ERR_FORBIDDEN");
    assert.equal(pod.server.hub.rooms.size, 0);
    assert.equal((await teams.client.request({ type: "join", room: "team-red" })).type, "joined");
    // Relay needs `signal`, broadcast and message need `broadcast`.
    const joinOnly = await pod.open(await jwt("carol", { grants: ["join"] }));
    assert.equal((await joinOnly.client.request({ type: "join", room: "team-red" })).type, "joined");
    await expectError(joinOnly.client, { type: "offer", room: "team-red", to: teams.peerId, sdp: "v=0" }, "SIG_ERR_FORBIDDEN");
    await expectError(joinOnly.client, { type: "broadcast", room: "team-red", data: 1 }, "SIG_ERR_FORBIDDEN");
    await expectError(joinOnly.client, { type: "message", room: "team-red", to: teams.peerId, data: 1 }, "SIG_ERR_FORBIDDEN");
  });
});

describe("relay family", () => {
  const sdp =
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=Ünïcødé ☎ 📞 会议\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:ab+/\r\na=fingerprint:sha-256 AB:CD\r\n" +
    'a=x-quote:"\\" \t\r\n';

  test("offer, answer, candidate, end-of-candidates and renegotiate reach the target unchanged", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    const c = await pod.member("carol", "r");
    const raw: string[] = [];
    b.client.ws.on("message", (data) => raw.push(String(data)));

    assert.equal((await a.client.request({ type: "offer", room: "r", to: b.peerId, sdp })).type, "ok");
    const offer = await b.client.nextOf("offer");
    assert.equal(offer.sdp, sdp);
    assert.deepEqual(Buffer.from(offer.sdp, "utf8"), Buffer.from(sdp, "utf8"));
    assert.equal(offer.from, a.peerId);
    assert.equal(offer.room, "r");
    assert.ok(raw.some((frame) => frame.includes(JSON.stringify(sdp))), "the SDP string is carried as-is");

    const answerSdp = sdp.replace("IP4", "IP6");
    await b.client.request({ type: "answer", room: "r", to: a.peerId, sdp: answerSdp });
    const answer = await a.client.nextOf("answer");
    assert.equal(answer.sdp, answerSdp);
    assert.equal(answer.from, b.peerId);

    const candidate = {
      candidate: "candidate:842163049 1 udp 1677729535 192.0.2.1 3478 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag ab+/",
      sdpMid: "0",
      sdpMLineIndex: 0,
      usernameFragment: "ab+/",
    };
    await a.client.request({ type: "candidate", room: "r", to: b.peerId, candidate });
    assert.deepEqual((await b.client.nextOf("candidate")).candidate, candidate);
    await a.client.request({ type: "candidate", room: "r", to: b.peerId, candidate: { candidate: "", sdpMid: null, sdpMLineIndex: null } });
    assert.deepEqual((await b.client.nextOf("candidate")).candidate, { candidate: "", sdpMid: null, sdpMLineIndex: null });

    await a.client.request({ type: "end-of-candidates", room: "r", to: b.peerId });
    const eoc = await b.client.nextOf("end-of-candidates");
    assert.deepEqual([eoc.from, eoc.room], [a.peerId, "r"]);

    await b.client.request({ type: "renegotiate", room: "r", to: a.peerId, iceRestart: true });
    const reneg = await a.client.nextOf("renegotiate");
    assert.equal(reneg.iceRestart, true);
    assert.equal(reneg.from, b.peerId);

    // The bystander got none of it: its next frame is the broadcast sent now.
    b.client.send({ type: "broadcast", room: "r", data: "marker" });
    assert.equal((await c.client.next((m) => m.type !== "peer-joined")).type, "broadcast");
  });

  test("relay refusals: not in room, unknown peer, bad candidate field, both targets", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const outsider = await pod.open("eve");
    await expectError(outsider.client, { type: "offer", room: "r", to: a.peerId, sdp: "v=0" }, "SIG_ERR_NOT_IN_ROOM");
    await expectError(a.client, { type: "offer", room: "r", to: "p_nobody", sdp: "v=0" }, "SIG_ERR_PEER_NOT_FOUND");
    await expectError(a.client, { type: "candidate", room: "r", to: a.peerId, candidate: { candidate: "x", sdpMLineIndex: -1 } }, "SIG_ERR_BAD_MESSAGE", "candidate.sdpMLineIndex");
    await expectError(a.client, { type: "candidate", room: "r", to: a.peerId, candidate: { candidate: "x", sdpMLineIndex: 1.5 } }, "SIG_ERR_BAD_MESSAGE", "candidate.sdpMLineIndex");
    await expectError(a.client, { type: "offer", room: "r", sdp: "v=0" }, "SIG_ERR_BAD_MESSAGE", "to");
    await expectError(a.client, { type: "offer", room: "r", to: a.peerId, callId: "c_1", sdp: "v=0" }, "SIG_ERR_BAD_MESSAGE", "to");
    await expectError(a.client, { type: "offer", room: "r", to: a.peerId, sdp: "" }, "SIG_ERR_BAD_MESSAGE", "sdp");
  });
});

describe("app data family", () => {
  test("broadcast reaches every other member, not the sender", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    const c = await pod.member("carol", "r");
    const other = await pod.member("dave", "elsewhere");
    const data = { text: "hi ✓", n: [1, 2, { deep: null }] };
    assert.equal((await a.client.request({ type: "broadcast", room: "r", data })).type, "ok");
    for (const peer of [b, c]) {
      const ev = await peer.client.nextOf("broadcast");
      assert.deepEqual([ev.room, ev.from, ev.data], ["r", a.peerId, data]);
    }
    // The sender's next stream event after its ok is c's broadcast, not its own.
    c.client.send({ type: "broadcast", room: "r", data: "from-c" });
    const aNext = await a.client.nextOf("broadcast");
    assert.deepEqual([aNext.from, aNext.data], [c.peerId, "from-c"]);
    assert.equal(a.client.received.filter((m) => m.type === "broadcast" && m.from === a.peerId).length, 0);
    // Another room hears nothing.
    other.client.send({ type: "broadcast", room: "elsewhere", data: "x" });
    assert.equal((await other.client.request({ type: "ping" })).type, "pong");
    assert.equal(other.client.received.filter((m) => m.type === "broadcast").length, 0);
  });

  test("message reaches only its target", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    const c = await pod.member("carol", "r");
    assert.equal((await a.client.request({ type: "message", room: "r", to: c.peerId, data: { secret: 42 } })).type, "ok");
    const ev = await c.client.nextOf("message");
    assert.deepEqual([ev.from, ev.room, ev.data], [a.peerId, "r", { secret: 42 }]);
    a.client.send({ type: "broadcast", room: "r", data: "marker" });
    assert.equal((await b.client.next((m) => m.type !== "peer-joined")).type, "broadcast", "b got no message before the marker");
    await expectError(a.client, { type: "message", room: "r", to: "p_gone", data: 1 }, "SIG_ERR_PEER_NOT_FOUND");
  });
});

describe("schema errors name the field", () => {
  test("join with a bad room names room; update without meta names meta", async (t) => {
    const pod = await startPod(t);
    const { client } = await pod.open("alice");
    const err = await expectError(client, { type: "join", room: "bad room!" }, "SIG_ERR_BAD_MESSAGE", "room");
    assert.equal(err.retryable, false);
    await expectError(client, { type: "join", room: "x".repeat(129) }, "SIG_ERR_BAD_MESSAGE", "room");
    await expectError(client, { type: "update", room: "r" }, "SIG_ERR_BAD_MESSAGE", "meta");
    await expectError(client, { type: "ack", seq: -1 }, "SIG_ERR_BAD_MESSAGE", "seq");
    assert.equal(pod.server.hub.rooms.size, 0);
  });

  test("errors to a session travel in its stream with a seq and are replayed on resume", async (t) => {
    const pod = await startPod(t);
    const { client, welcome } = await pod.open("alice");
    const err = await expectError(client, { type: "leave", id: "l1", room: "r" }, "SIG_ERR_NOT_IN_ROOM");
    assert.equal(err.seq, 1);
    client.drop();
    await eventually(() => pod.server.hub.sessions.get(welcome.sessionId)?.socket === null, "the drop noticed");
    const again = pod.connect();
    await again.opened();
    again.send({ type: "resume", v: 1, sessionId: welcome.sessionId, resumeToken: welcome.resumeToken, lastSeq: 0 });
    assert.equal((await again.nextOf("resumed")).replayCount, 1);
    const replayed = await again.nextOf("error");
    assert.deepEqual([replayed.seq, replayed.id, replayed.code], [1, "l1", "SIG_ERR_NOT_IN_ROOM"]);
  });
});
