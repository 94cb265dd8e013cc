/**
 * Calls end to end on real sockets: a pod on port 0 and raw protocol clients. The whole flow
 * (invite → parallel ringing → first accept wins → confirm → negotiation relayed only to the
 * accepted device → hangup), a call that survives a party's reconnect within the resume window,
 * and calls that end when a party's session is gone for good.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ServerMessage, ServerMessageOf } from "@switchboard/protocol";
import { eventually, startPod, type Peer, type TestPod } from "../testing/pod.ts";
import { WebSocket } from "ws";
import { createSignalingServer } from "../app.ts";
import { RawClient } from "../testing/raw-client.ts";

/** No test may hang: each fails after this long. */
const BOUNDED = { timeout: 30_000 };

const RELAY_TYPES = new Set(["offer", "answer", "candidate", "end-of-candidates", "renegotiate"]);

function candidate(n: number): { candidate: string; sdpMid: string; sdpMLineIndex: number } {
  return { candidate: `candidate:${n} 1 udp 2122260223 10.0.0.${n} 5000${n} typ host`, sdpMid: "0", sdpMLineIndex: 0 };
}

/** Sends a request and asserts the reply is `ok`. */
async function ok(client: RawClient, message: Record<string, unknown>): Promise<void> {
  const reply = await client.request(message);
  assert.equal(reply.type, "ok", `${String(message["type"])} refused: ${JSON.stringify(reply)}`);
}

/** Sends a request and resolves the error reply's code. */
async function refused(client: RawClient, message: Record<string, unknown>): Promise<string> {
  const reply = await client.request(message);
  assert.equal(reply.type, "error", `${String(message["type"])} was not refused`);
  return (reply as ServerMessageOf<"error">).code;
}

/** alice calls bob (one device), bob accepts, alice confirms: resolves the active call's id. */
async function activeCall(alice: Peer, bob: Peer): Promise<string> {
  const trying = (await alice.client.request({ type: "call-invite", to: "bob" })) as ServerMessageOf<"call-trying">;
  assert.equal(trying.type, "call-trying");
  const callId = trying.callId;
  await bob.client.next((m) => m.type === "call-incoming" && m.callId === callId);
  await ok(bob.client, { type: "call-accept", callId });
  await alice.client.next((m) => m.type === "call-accepted" && m.callId === callId);
  await ok(alice.client, { type: "call-confirm", callId });
  await bob.client.next((m) => m.type === "call-confirmed" && m.callId === callId);
  return callId;
}

/** The stream events (frames with a seq) a client received. */
function stream(frames: readonly ServerMessage[]): Array<ServerMessage & { seq: number }> {
  return frames.filter((m): m is ServerMessage & { seq: number } => "seq" in m && typeof m.seq === "number");
}

/** Waits until the pod has noticed that `peer`'s socket is gone (its session is detached). */
async function detached(pod: TestPod, peer: Peer): Promise<void> {
  await eventually(() => pod.server.hub.sessions.get(peer.welcome.sessionId)?.socket === null, "the pod to notice the drop");
}

describe("calls over real sockets", () => {
  test("invite rings both of bob's devices, the first accept wins, negotiation reaches only that device", BOUNDED, async (t) => {
    const pod = await startPod(t);
    const alice = await pod.open("alice");
    const bob1 = await pod.open("bob");
    const bob2 = await pod.open("bob");

    const trying = (await alice.client.request({ type: "call-invite", to: "bob", meta: { video: true } })) as ServerMessageOf<"call-trying">;
    assert.deepEqual([trying.type, trying.to, trying.devices], ["call-trying", "bob", 2]);
    const callId = trying.callId;
    for (const bob of [bob1, bob2]) {
      const incoming = await bob.client.nextOf("call-incoming");
      assert.deepEqual([incoming.callId, incoming.from, incoming.meta], [callId, { userId: "alice", peerId: alice.peerId }, { video: true }]);
    }

    await ok(bob1.client, { type: "call-ringing", callId });
    await ok(bob2.client, { type: "call-ringing", callId });
    const ringing = await alice.client.nextOf("call-ringing");
    assert.equal(ringing.peerId, bob1.peerId);

    await ok(bob2.client, { type: "call-accept", callId });
    const accepted = await alice.client.nextOf("call-accepted");
    assert.deepEqual([accepted.callId, accepted.peerId, accepted.polite], [callId, bob2.peerId, false]);
    const elsewhere = await bob1.client.nextOf("call-ended");
    assert.deepEqual([elsewhere.callId, elsewhere.reason, elsewhere.legOnly], [callId, "answered-elsewhere", true]);
    assert.equal(await refused(bob1.client, { type: "call-accept", callId }), "SIG_ERR_CALL_STATE");

    await ok(alice.client, { type: "call-confirm", callId });
    const confirmed = await bob2.client.nextOf("call-confirmed");
    assert.deepEqual([confirmed.callId, confirmed.polite], [callId, true]);
    assert.equal(pod.server.hub.calls.inspect(callId)?.state, "active");

    await ok(alice.client, { type: "offer", callId, sdp: "v=0 offer" });
    await ok(alice.client, { type: "candidate", callId, candidate: candidate(1) });
    await ok(alice.client, { type: "end-of-candidates", callId });
    const offer = await bob2.client.nextOf("offer");
    assert.deepEqual([offer.callId, offer.from, offer.sdp], [callId, alice.peerId, "v=0 offer"]);
    assert.deepEqual((await bob2.client.nextOf("candidate")).candidate, candidate(1));
    await bob2.client.nextOf("end-of-candidates");

    await ok(bob2.client, { type: "answer", callId, sdp: "v=0 answer" });
    await ok(bob2.client, { type: "candidate", callId, candidate: candidate(2) });
    const answer = await alice.client.nextOf("answer");
    assert.deepEqual([answer.callId, answer.from, answer.sdp], [callId, bob2.peerId, "v=0 answer"]);
    assert.deepEqual((await alice.client.nextOf("candidate")).candidate, candidate(2));

    // The device that only rang may not take part.
    assert.equal(await refused(bob1.client, { type: "answer", callId, sdp: "v=0 intruder" }), "SIG_ERR_NOT_CALL_PARTY");
    assert.equal(await refused(bob1.client, { type: "candidate", callId, candidate: candidate(3) }), "SIG_ERR_NOT_CALL_PARTY");

    await ok(bob2.client, { type: "call-hangup", callId });
    for (const party of [alice, bob2]) {
      const ended = await party.client.nextOf("call-ended");
      assert.deepEqual([ended.callId, ended.reason, ended.legOnly], [callId, "hangup", false]);
    }
    assert.equal(pod.server.hub.calls.inspect(callId), undefined);
    assert.equal(await refused(alice.client, { type: "offer", callId, sdp: "v=0 late" }), "SIG_ERR_CALL_NOT_FOUND");

    // bob1 never saw any of the negotiation, and only one end of its leg.
    const bob1Types = stream(bob1.client.received).map((m) => m.type);
    assert.ok(!bob1Types.some((type) => RELAY_TYPES.has(type)), `bob1 got ${bob1Types.join(",")}`);
    assert.equal(bob1Types.filter((type) => type === "call-ended").length, 1);
    // Every party got each call event once.
    for (const party of [alice, bob1, bob2]) {
      const seqs = stream(party.client.received).map((m) => m.seq);
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
    }
  });

  test("an invite before the call is answered cannot be negotiated, and a decline ends every device", BOUNDED, async (t) => {
    const pod = await startPod(t);
    const alice = await pod.open("alice");
    const bob1 = await pod.open("bob");
    const bob2 = await pod.open("bob");
    const { callId } = (await alice.client.request({ type: "call-invite", to: "bob" })) as ServerMessageOf<"call-trying">;
    await bob1.client.nextOf("call-incoming");
    await bob2.client.nextOf("call-incoming");
    assert.equal(await refused(alice.client, { type: "offer", callId, sdp: "v=0 early" }), "SIG_ERR_CALL_STATE");
    await ok(bob1.client, { type: "call-reject", callId, reason: "declined" });
    for (const party of [alice, bob2]) assert.equal((await party.client.nextOf("call-ended")).reason, "declined");
    assert.ok(!stream(bob2.client.received).some((m) => m.type === "offer"));
  });

  test("the call survives the caller's reconnect: later events arrive exactly once", BOUNDED, async (t) => {
    const pod = await startPod(t);
    const alice = await pod.open("alice");
    const bob = await pod.open("bob");
    const callId = await activeCall(alice, bob);
    await ok(alice.client, { type: "offer", callId, sdp: "v=0 offer" });
    await bob.client.nextOf("offer");

    alice.client.drop();
    await alice.client.closed;
    await detached(pod, alice);
    assert.equal(pod.server.hub.calls.inspect(callId)?.state, "active", "the call waits for the caller");
    // While alice is away, bob answers and sends candidates.
    await ok(bob.client, { type: "answer", callId, sdp: "v=0 answer" });
    await ok(bob.client, { type: "candidate", callId, candidate: candidate(1) });

    const lastSeq = Math.max(0, ...stream(alice.client.received).map((m) => m.seq));
    const back = pod.connect();
    await back.opened();
    back.send({ type: "resume", v: 1, sessionId: alice.welcome.sessionId, resumeToken: alice.welcome.resumeToken, lastSeq });
    const resumed = await back.nextOf("resumed");
    assert.equal(resumed.replayCount, 2);
    assert.equal((await back.nextOf("answer")).sdp, "v=0 answer");
    assert.deepEqual((await back.nextOf("candidate")).candidate, candidate(1));

    // The call goes on: renegotiation from the caller, then bob hangs up.
    await ok(back, { type: "offer", callId, sdp: "v=0 ice restart" });
    assert.equal((await bob.client.nextOf("offer")).sdp, "v=0 ice restart");
    await ok(bob.client, { type: "call-hangup", callId });
    const ended = await back.nextOf("call-ended");
    assert.deepEqual([ended.callId, ended.reason], [callId, "hangup"]);

    const all = [...stream(alice.client.received), ...stream(back.received)];
    assert.deepEqual(all.map((m) => m.seq), all.map((_, i) => i + 1), "no seq twice, none missing");
    assert.equal(all.filter((m) => m.type === "answer").length, 1);
    assert.equal(all.filter((m) => m.type === "candidate").length, 1);
    assert.equal(all.filter((m) => m.type === "call-ended").length, 1);
  });

  test("a party whose session expires ends the call with connection-lost for the other side", BOUNDED, async (t) => {
    const resumeWindowMs = 300;
    const pod = await startPod(t, { resumeWindowMs });
    const alice = await pod.open("alice");
    const bob = await pod.open("bob");
    const callId = await activeCall(alice, bob);

    bob.client.drop();
    await detached(pod, bob);
    // Within the window the call is kept.
    pod.server.gateway.tick(Date.now() + resumeWindowMs - 200);
    assert.equal(pod.server.hub.calls.inspect(callId)?.state, "active");
    // The pod's shared timer runs the sweep; drive it with a clock past the window.
    pod.server.gateway.tick(Date.now() + resumeWindowMs + 1);
    const ended = await alice.client.nextOf("call-ended");
    assert.deepEqual([ended.callId, ended.reason, ended.legOnly], [callId, "connection-lost", false]);
    assert.equal(pod.server.hub.calls.inspect(callId), undefined);
    assert.equal(stream(alice.client.received).filter((m) => m.type === "call-ended").length, 1);
  });

  test("a caller gone for good while ringing cancels the call on every device", BOUNDED, async (t) => {
    const resumeWindowMs = 300;
    const pod = await startPod(t, { resumeWindowMs });
    const alice = await pod.open("alice");
    const bob1 = await pod.open("bob");
    const bob2 = await pod.open("bob");
    const { callId } = (await alice.client.request({ type: "call-invite", to: "bob" })) as ServerMessageOf<"call-trying">;
    await bob1.client.nextOf("call-incoming");
    await bob2.client.nextOf("call-incoming");
    alice.client.drop();
    await detached(pod, alice);
    pod.server.gateway.tick(Date.now() + resumeWindowMs + 1);
    for (const bob of [bob1, bob2]) {
      const ended = await bob.client.nextOf("call-ended");
      assert.deepEqual([ended.callId, ended.reason], [callId, "cancelled"]);
    }
  });
});

test("a PeerJS session of the callee never rings", async (t) => {
  const server = createSignalingServer({ config: { port: 0, logLevel: "silent", auth: { mode: "insecure-dev" } }, defaultMetrics: false });
  await server.listen();
  t.after(() => server.close());
  const peerjs = new WebSocket(`${server.httpUrl.replace("http", "ws")}/peerjs/peerjs?key=peerjs&id=bob&token=t1`);
  t.after(() => peerjs.close());
  await new Promise<void>((resolve, reject) => {
    peerjs.once("message", () => resolve());
    peerjs.once("error", reject);
  });
  const alice = new RawClient(server.wsUrl);
  t.after(() => alice.close());
  await alice.hello("alice");
  const trying = await alice.request({ type: "call-invite", to: "bob" });
  assert.equal(trying.type, "call-trying");
  assert.equal((trying as { devices: number }).devices, 0);
  assert.equal((await alice.nextOf("call-ended")).reason, "unavailable");
});
