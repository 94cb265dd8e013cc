/**
 * Resume on real sockets: a dropped client gets every event it missed exactly once and in order,
 * resumes can repeat, and every refusal (bad token, window passed, gap, unknown session) says why
 * and leaves the socket ready for a fresh `hello`.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ServerMessage, ServerMessageOf } from "@switchboard/protocol";
import { closedWithin, type Peer, startPod, type TestPod } from "./testing/pod.ts";
import type { RawClient } from "./testing/raw-client.ts";

type Welcome = ServerMessageOf<"welcome">;

/** Stream events (frames with a seq) of a client's frames. */
function streamOf(frames: readonly ServerMessage[]): Array<ServerMessage & { seq: number }> {
  return frames.filter((m): m is ServerMessage & { seq: number } => "seq" in m && typeof m.seq === "number");
}

/** The highest seq a client processed. */
function highestSeq(client: RawClient): number {
  return Math.max(0, ...streamOf(client.received).map((m) => m.seq));
}

/** Opens a socket and sends `resume`; resolves the reply (`resumed` or `resume-failed`). */
async function resume(pod: TestPod, welcome: Welcome, lastSeq: number, extra: Record<string, unknown> = {}): Promise<{ client: RawClient; reply: ServerMessage }> {
  const client = pod.connect();
  await client.opened();
  client.send({ type: "resume", v: 1, id: "res", sessionId: welcome.sessionId, resumeToken: welcome.resumeToken, lastSeq, ...extra });
  const reply = await client.next((m) => m.type === "resumed" || m.type === "resume-failed");
  return { client, reply };
}

/** Waits until `observer` sees `peer` as disconnected (the pod noticed the drop). */
async function seenDisconnected(observer: RawClient, peer: Peer): Promise<void> {
  await observer.next((m) => m.type === "peer-updated" && m.peer.peerId === peer.peerId && !m.peer.connected);
}

/** Sends `message`s with counters [from, to) from `sender` to `to`; resolves once the pod handled the last. */
async function sendCounters(sender: Peer, to: Peer, from: number, until: number): Promise<void> {
  for (let n = from; n < until - 1; n++) sender.client.send({ type: "message", room: "r", to: to.peerId, data: { n } });
  const ok = await sender.client.request({ type: "message", room: "r", to: to.peerId, data: { n: until - 1 } });
  assert.equal(ok.type, "ok");
}

describe("resume", () => {
  test("a dropped client gets every message exactly once and in order, twice in a row", async (t) => {
    const pod = await startPod(t, { limits: { ratePerSecond: 100_000, rateBurst: 100_000 } });
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    const processed: Array<ServerMessage & { seq: number }> = [];

    // Part one arrives live; the socket drops while more is in flight.
    for (let n = 0; n < 100; n++) b.client.send({ type: "message", room: "r", to: a.peerId, data: { n } });
    await a.client.next((m) => m.type === "message" && (m.data as { n: number }).n === 40);
    a.client.drop();
    await closedWithin(a.client);
    processed.push(...streamOf(a.client.received));
    await seenDisconnected(b.client, a);
    // Part two is sent while alice is away.
    await sendCounters(b, a, 100, 150);

    const first = await resume(pod, a.welcome, highestSeq(a.client));
    const resumed = first.reply as ServerMessageOf<"resumed">;
    assert.equal(resumed.type, "resumed");
    assert.equal(resumed.id, "res");
    assert.equal(resumed.sessionId, a.welcome.sessionId);
    assert.equal(resumed.peerId, a.peerId);
    assert.equal(resumed.replayCount, resumed.lastSeq - highestSeq(a.client));
    assert.ok(resumed.replayCount >= 50);
    const back = await b.client.next((m) => m.type === "peer-updated" && m.peer.peerId === a.peerId);
    assert.equal((back as ServerMessageOf<"peer-updated">).peer.connected, true);
    // Part three arrives live on the new socket.
    await sendCounters(b, a, 150, 200);
    await first.client.next((m) => m.type === "message" && (m.data as { n: number }).n === 199);

    // Second drop and resume, with messages in between.
    first.client.drop();
    await closedWithin(first.client);
    processed.push(...streamOf(first.client.received));
    await seenDisconnected(b.client, a);
    await sendCounters(b, a, 200, 230);
    const second = await resume(pod, a.welcome, highestSeq(first.client));
    assert.equal(second.reply.type, "resumed");
    await sendCounters(b, a, 230, 240);
    await second.client.next((m) => m.type === "message" && (m.data as { n: number }).n === 239);
    processed.push(...streamOf(second.client.received));

    // Seqs 1..N with no gap and no repeat.
    assert.deepEqual(
      processed.map((m) => m.seq),
      processed.map((_, i) => i + 1),
    );
    const counters = processed.filter((m) => m.type === "message").map((m) => (m.data as { n: number }).n);
    assert.deepEqual(
      counters,
      Array.from({ length: 240 }, (_, i) => i),
    );
  });

  test("a wrong resume token is refused with bad-token and changes nothing", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    a.client.drop();
    await seenDisconnected(b.client, a);
    const bad = await resume(pod, { ...a.welcome, resumeToken: `${a.welcome.resumeToken.slice(0, -2)}xx` }, 1);
    const failed = bad.reply as ServerMessageOf<"resume-failed">;
    assert.deepEqual([failed.type, failed.code, failed.reason, failed.id], ["resume-failed", "SIG_ERR_RESUME_FAILED", "bad-token", "res"]);
    const wrongLength = await resume(pod, { ...a.welcome, resumeToken: "short" }, 1);
    assert.equal((wrongLength.reply as ServerMessageOf<"resume-failed">).reason, "bad-token");
    // The session is still there, and the right token resumes it.
    const ok = await resume(pod, a.welcome, highestSeq(a.client));
    assert.equal(ok.reply.type, "resumed");
  });

  test("after the resume window: resume-failed unknown-session, peers got peer-left expired, hello works on the same socket", async (t) => {
    const pod = await startPod(t, { resumeWindowMs: 300 });
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    a.client.drop();
    await seenDisconnected(b.client, a);
    // The pod's one shared timer runs the sweep; drive it with a clock past the window.
    pod.server.gateway.tick(Date.now() + 301);
    const left = await b.client.nextOf("peer-left");
    assert.deepEqual([left.peerId, left.reason], [a.peerId, "expired"]);
    assert.equal(pod.server.hub.sessions.get(a.welcome.sessionId), undefined);

    const late = await resume(pod, a.welcome, highestSeq(a.client));
    assert.equal((late.reply as ServerMessageOf<"resume-failed">).reason, "unknown-session");
    assert.equal(late.client.closeCode, null, "the socket stays open for a hello");
    late.client.send({ type: "hello", v: 1, token: "alice" });
    const fresh = await late.client.nextOf("welcome");
    assert.notEqual(fresh.sessionId, a.welcome.sessionId);
    assert.notEqual(fresh.peerId, a.peerId);
    // A fresh session: rejoining gives a fresh snapshot with bob in it.
    const joined = (await late.client.request({ type: "join", room: "r" })) as ServerMessageOf<"joined">;
    assert.deepEqual(joined.peers.map((p) => p.peerId), [b.peerId]);
  });

  test("the window is measured from the drop: before it ends the session is kept", async (t) => {
    const pod = await startPod(t, { resumeWindowMs: 10_000 });
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    a.client.drop();
    await seenDisconnected(b.client, a);
    pod.server.gateway.tick(Date.now() + 5_000);
    assert.ok(pod.server.hub.sessions.get(a.welcome.sessionId));
    const ok = await resume(pod, a.welcome, highestSeq(a.client));
    assert.equal(ok.reply.type, "resumed");
    pod.server.gateway.tick(Date.now() + 20_000);
    assert.ok(pod.server.hub.sessions.get(a.welcome.sessionId), "an attached session never expires");
  });

  test("resume on a second socket while the first is open closes the first with 4004", async (t) => {
    const pod = await startPod(t);
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    const takeover = await resume(pod, a.welcome, highestSeq(a.client));
    assert.equal(takeover.reply.type, "resumed");
    assert.equal((await closedWithin(a.client)).code, 4004);
    assert.equal(a.client.closeReason, "SIG_ERR_SESSION_REPLACED");
    // Events now go to the new socket; the session stays in the room throughout.
    b.client.send({ type: "message", room: "r", to: a.peerId, data: "to-new" });
    assert.equal((await takeover.client.nextOf("message")).data, "to-new");
    assert.deepEqual(pod.server.hub.rooms.members("r")?.map((m) => [m.peerId, m.connected]), [
      [a.peerId, true],
      [b.peerId, true],
    ]);
    assert.equal(b.client.received.filter((m) => m.type === "peer-left").length, 0);
  });

  test("a resume from a seq the pod no longer holds is refused with gap", async (t) => {
    const pod = await startPod(t, { limits: { maxReplayBytes: 1024, ratePerSecond: 10_000, rateBurst: 10_000 } });
    const a = await pod.member("alice", "r");
    const b = await pod.member("bob", "r");
    a.client.drop();
    await seenDisconnected(b.client, a);
    // ~2 KiB of events overflow the 1 KiB replay buffer: the oldest are dropped.
    await sendCounters(b, a, 0, 20);
    const tooOld = await resume(pod, { ...a.welcome }, highestSeq(a.client));
    assert.equal((tooOld.reply as ServerMessageOf<"resume-failed">).reason, "gap");
    const future = await resume(pod, a.welcome, 10_000);
    assert.equal((future.reply as ServerMessageOf<"resume-failed">).reason, "gap");
    // The refusals changed nothing: the session is still waiting.
    assert.ok(pod.server.hub.sessions.get(a.welcome.sessionId));
  });

  test("unknown or ended sessions: resume-failed unknown-session", async (t) => {
    const pod = await startPod(t);
    const a = await pod.open("alice");
    const unknown = await resume(pod, { ...a.welcome, sessionId: "s_nope" }, 0);
    assert.equal((unknown.reply as ServerMessageOf<"resume-failed">).reason, "unknown-session");
    a.client.send({ type: "bye" });
    await closedWithin(a.client);
    const ended = await resume(pod, a.welcome, 0);
    assert.equal((ended.reply as ServerMessageOf<"resume-failed">).reason, "unknown-session");
  });

  test("a resume with an unsupported version closes 4002", async (t) => {
    const pod = await startPod(t);
    const a = await pod.open("alice");
    const client = pod.connect();
    await client.opened();
    client.send({ type: "resume", v: 9, sessionId: a.welcome.sessionId, resumeToken: a.welcome.resumeToken, lastSeq: 0 });
    assert.equal((await client.nextOf("error")).code, "SIG_ERR_UNSUPPORTED_VERSION");
    assert.equal((await closedWithin(client)).code, 4002);
  });
});
