/**
 * The admin HTTP API against a real pod: listing rooms, closing a room, kicking and banning
 * peers, and its bearer-token check.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ServerMessageOf } from "@switchboard/protocol";
import { closedWithin, type Peer, startPod, type TestPod } from "../testing/pod.ts";

const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

function kick(pod: TestPod, peerId: string, body: Record<string, unknown> = {}) {
  return pod.http(`/admin/peers/${encodeURIComponent(peerId)}/kick`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function resumeAfterKick(pod: TestPod, peer: Peer): Promise<ServerMessageOf<"resume-failed">> {
  const client = pod.connect();
  await client.opened();
  client.send({ type: "resume", v: 1, sessionId: peer.welcome.sessionId, resumeToken: peer.welcome.resumeToken, lastSeq: 0 });
  return client.nextOf("resume-failed");
}

describe("admin API", () => {
  test("GET /admin/rooms and /admin/rooms/:room list rooms and their peers", async (t) => {
    const pod = await startPod(t, { adminToken: ADMIN_TOKEN });
    const a = await pod.member("alice", "room-a", { name: "A" });
    const b = await pod.member("bob", "room-a");
    await pod.member("carol", "room-b");
    const list = await pod.http("/admin/rooms", { headers: auth });
    assert.equal(list.status, 200);
    const rooms = (list.body as { rooms: Array<{ room: string; peers: number; createdAtMs: number }> }).rooms;
    assert.deepEqual(
      rooms.map((r) => [r.room, r.peers]).sort(),
      [
        ["room-a", 2],
        ["room-b", 1],
      ],
    );
    assert.ok(rooms.every((r) => typeof r.createdAtMs === "number"));

    const one = await pod.http("/admin/rooms/room-a", { headers: auth });
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, {
      room: "room-a",
      peers: [
        { peerId: a.peerId, userId: "alice", meta: { name: "A" }, connected: true },
        { peerId: b.peerId, userId: "bob", meta: {}, connected: true },
      ],
    });
    const missing = await pod.http("/admin/rooms/nope", { headers: auth });
    assert.equal(missing.status, 404);
    assert.equal((missing.body as { code: string }).code, "SIG_ERR_ROOM_NOT_FOUND");
    assert.equal((await pod.http("/admin/unknown", { headers: auth })).status, 404);
  });

  test("DELETE /admin/rooms/:room sends room-closed to every member and empties the room", async (t) => {
    const pod = await startPod(t, { adminToken: ADMIN_TOKEN });
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    const res = await pod.http("/admin/rooms/r", { method: "DELETE", headers: auth });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { closed: 2 });
    for (const peer of [a, b]) {
      const ev = await peer.client.nextOf("room-closed");
      assert.equal(ev.room, "r");
      assert.equal(typeof ev.reason, "string");
      assert.equal(pod.server.hub.sessions.get(peer.welcome.sessionId)?.rooms.has("r"), false);
    }
    assert.equal(pod.server.hub.rooms.size, 0);
    assert.equal(a.client.received.filter((m) => m.type === "peer-left").length, 0, "room-closed, not peer-left");
    // The sessions live on and may rejoin.
    assert.equal((await a.client.request({ type: "join", room: "r" })).type, "joined");
    assert.equal((await pod.http("/admin/rooms/gone", { method: "DELETE", headers: auth })).status, 404);
  });

  test("kick: socket closed 4012, peers get peer-left kicked, resume fails with kicked", async (t) => {
    const pod = await startPod(t, { adminToken: ADMIN_TOKEN });
    const target = await pod.member("mallory", "r");
    const other = await pod.member("bob", "r");
    const res = await kick(pod, target.peerId);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { kicked: true });
    assert.equal((await closedWithin(target.client)).code, 4012);
    assert.equal(target.client.closeReason, "SIG_ERR_KICKED");
    const left = await other.client.nextOf("peer-left");
    assert.deepEqual([left.peerId, left.reason], [target.peerId, "kicked"]);
    assert.equal(pod.server.hub.sessions.get(target.welcome.sessionId), undefined);
    assert.equal((await resumeAfterKick(pod, target)).reason, "kicked");
    // A plain kick is no ban: a new session may join again.
    const back = await pod.member("mallory", "r");
    assert.equal(back.joined.peers.length, 1);
    // Unknown peers are 404.
    const unknown = await kick(pod, "p_nobody");
    assert.equal(unknown.status, 404);
    assert.equal((unknown.body as { code: string }).code, "SIG_ERR_PEER_NOT_FOUND");
  });

  test("ban room: the user's rejoin is refused with SIG_ERR_BANNED, other rooms are fine", async (t) => {
    const pod = await startPod(t, { adminToken: ADMIN_TOKEN });
    const target = await pod.member("mallory", "r");
    const other = await pod.member("bob", "r");
    assert.equal((await kick(pod, target.peerId, { ban: "room", room: "r" })).status, 200);
    assert.equal((await closedWithin(target.client)).code, 4012);
    assert.equal((await other.client.nextOf("peer-left")).reason, "kicked");
    const again = await pod.open("mallory");
    const refused = (await again.client.request({ type: "join", room: "r" })) as ServerMessageOf<"error">;
    assert.equal(refused.code, "SIG_ERR_BANNED");
    assert.deepEqual(pod.server.hub.rooms.members("r")?.map((m) => m.peerId), [other.peerId]);
    assert.equal((await again.client.request({ type: "join", room: "elsewhere" })).type, "joined");
    assert.equal(again.client.closeCode, null, "a room ban refuses the join, it does not close the socket");
  });

  test("ban service: every socket of the user closes 4013, no resume, and a new hello is refused", async (t) => {
    const pod = await startPod(t, { adminToken: ADMIN_TOKEN });
    const target = await pod.member("mallory", "r");
    const secondDevice = await pod.member("mallory", "r");
    const other = await pod.member("bob", "r");
    assert.equal((await kick(pod, target.peerId, { ban: "service", banMs: 60_000 })).status, 200);
    assert.equal((await closedWithin(target.client)).code, 4013);
    assert.equal((await closedWithin(secondDevice.client)).code, 4013, "the user's other device goes too");
    const gone = [(await other.client.nextOf("peer-left")), (await other.client.nextOf("peer-left"))];
    assert.deepEqual(gone.map((l) => [l.peerId, l.reason]).sort(), [[target.peerId, "kicked"], [secondDevice.peerId, "kicked"]].sort());
    assert.equal((await resumeAfterKick(pod, secondDevice)).reason, "kicked");
    const again = pod.connect();
    await again.opened();
    again.send({ type: "hello", v: 1, token: "mallory" });
    const err = await again.nextOf("error");
    assert.equal(err.code, "SIG_ERR_BANNED");
    assert.equal((await closedWithin(again)).code, 4013);
    assert.equal((await pod.open("bob")).welcome.userId, "bob", "other users are unaffected");
    // The ban ends with its time.
    pod.server.gateway.tick(Date.now() + 60_001);
    assert.equal((await pod.open("mallory")).welcome.userId, "mallory");
  });

  test("disconnect closes the socket with 1012 and keeps the session for a resume", async (t) => {
    const pod = await startPod(t, { adminToken: ADMIN_TOKEN });
    const target = await pod.member("alice", "r");
    const other = await pod.member("bob", "r");
    const res = await pod.http(`/admin/peers/${target.peerId}/disconnect`, { method: "POST", headers: auth });
    assert.equal(res.status, 200);
    assert.equal((await closedWithin(target.client)).code, 1012);
    assert.equal((await other.client.nextOf("peer-updated")).peer.connected, false);
    const client = pod.connect();
    await client.opened();
    client.send({ type: "resume", v: 1, sessionId: target.welcome.sessionId, resumeToken: target.welcome.resumeToken, lastSeq: target.joined.seq });
    assert.equal((await client.nextOf("resumed")).peerId, target.peerId);
    assert.equal((await pod.http("/admin/peers/p_nobody/disconnect", { method: "POST", headers: auth })).status, 404);
  });

  test("a malformed path is 400, not a server error", async (t) => {
    const pod = await startPod(t, { adminToken: ADMIN_TOKEN });
    const res = await pod.http("/admin/rooms/%E0%A4%A", { headers: auth });
    assert.equal(res.status, 400);
    assert.equal((res.body as { code: string }).code, "SIG_ERR_BAD_MESSAGE");
  });

  test("a bad kick body is 400 with the field", async (t) => {
    const pod = await startPod(t, { adminToken: ADMIN_TOKEN });
    const target = await pod.member("mallory", "r");
    const res = await kick(pod, target.peerId, { ban: "galaxy" });
    assert.equal(res.status, 400);
    assert.deepEqual([(res.body as { code: string }).code, (res.body as { field: string }).field], ["SIG_ERR_BAD_MESSAGE", "ban"]);
    const roomless = await kick(pod, target.peerId, { ban: "room" });
    assert.equal(roomless.status, 400, "a room ban must name its room");
    assert.equal((roomless.body as { field: string }).field, "room");
    const notJson = await pod.http(`/admin/peers/${target.peerId}/kick`, { method: "POST", headers: auth, body: "{" });
    assert.equal(notJson.status, 400);
    assert.equal((notJson.body as { code: string }).code, "SIG_ERR_BAD_JSON");
    assert.equal(target.client.closeCode, null, "nothing happened to the peer");
  });

  test("a wrong or missing admin token is 401; without a configured token the API is off", async (t) => {
    const pod = await startPod(t, { adminToken: ADMIN_TOKEN });
    const target = await pod.member("alice", "r");
    for (const headers of [{}, { authorization: "Bearer wrong-token-0123456789abc" }, { authorization: ADMIN_TOKEN }, { authorization: `Bearer ${ADMIN_TOKEN}x` }]) {
      const res = await pod.http("/admin/rooms", { headers });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal((res.body as { code: string }).code, "SIG_ERR_AUTH_FAILED");
    }
    assert.equal((await pod.http(`/admin/peers/${target.peerId}/kick`, { method: "POST" })).status, 401);
    assert.equal(target.client.closeCode, null);
    assert.ok(pod.server.hub.sessions.get(target.welcome.sessionId));

    const off = await startPod(t);
    assert.equal((await off.http("/admin/rooms", { headers: auth })).status, 404);
  });
});
