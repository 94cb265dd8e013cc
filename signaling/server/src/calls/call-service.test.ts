/**
 * The call state machine, one test per rule of the call-flow table (anchors/peerjs-sip-standards.md
 * part (b)). The service is pure: its `deliver` sink records every event, `devicesOf` answers from
 * plain data and time is fake, so ring and confirm timeouts run without waiting.
 *
 * Every delivered event must decode with the protocol's server schema (so every `call-ended`
 * carries a valid reason code) and no session may get the same event twice; the harness checks
 * both after each test.
 */
import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import {
  CallEndReason,
  DEFAULT_CALL_CONFIRM_TIMEOUT_MS,
  DEFAULT_CALL_RING_TIMEOUT_MS,
  decodeServerMessage,
  type ServerMessage,
  type ServerMessageOf,
} from "@switchboard/protocol";
import { parseConfig } from "../config.ts";
import { CallService, type CallDevice } from "./call-service.ts";

const A1: CallDevice = { sessionId: "s-a1", peerId: "p-a1", userId: "alice" };
const A2: CallDevice = { sessionId: "s-a2", peerId: "p-a2", userId: "alice" };
const B1: CallDevice = { sessionId: "s-b1", peerId: "p-b1", userId: "bob" };
const B2: CallDevice = { sessionId: "s-b2", peerId: "p-b2", userId: "bob" };
const C1: CallDevice = { sessionId: "s-c1", peerId: "p-c1", userId: "carol" };

/** Who is online, by user. */
const EVERYONE: Record<string, CallDevice[]> = { alice: [A1, A2], bob: [B1, B2], carol: [C1] };

interface Delivered {
  readonly to: string;
  readonly json: string;
  readonly msg: ServerMessage;
}

type Ended = ServerMessageOf<"call-ended">;

/** Tests whose clock is already fake (a test may build several harnesses). */
const fakeTime = new WeakSet<TestContext>();

/** A call service on fake time with a recording delivery sink and membership index. */
function harness(
  t: TestContext,
  options: { devices?: Record<string, CallDevice[]>; ringTimeoutMs?: number; confirmTimeoutMs?: number } = {},
) {
  if (!fakeTime.has(t)) {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_750_000_000_000 });
    fakeTime.add(t);
  }
  const devices = options.devices ?? EVERYONE;
  const log: Delivered[] = [];
  const membership = new Map<string, Set<string>>();
  const seenCalls = new Set<string>();
  const service = new CallService({
    deliver: (to, json, type) => {
      // The stream adds the seq; everything else must already be a valid server message.
      const decoded = decodeServerMessage(`{"seq":1,${json.slice(1)}`);
      assert.ok(decoded.ok, `invalid event ${json}: ${decoded.ok ? "" : decoded.message}`);
      assert.equal(decoded.message.type, type);
      log.push({ to: to.sessionId, json, msg: decoded.message });
    },
    devicesOf: (userId) => devices[userId] ?? [],
    onMembership: (sessionId, callId, member) => {
      seenCalls.add(callId);
      let calls = membership.get(sessionId);
      if (!calls) membership.set(sessionId, (calls = new Set()));
      if (member) calls.add(callId);
      else calls.delete(callId);
    },
    ringTimeoutMs: options.ringTimeoutMs ?? DEFAULT_CALL_RING_TIMEOUT_MS,
    confirmTimeoutMs: options.confirmTimeoutMs ?? DEFAULT_CALL_CONFIRM_TIMEOUT_MS,
  });

  t.after(() => {
    const seen = new Set<string>();
    for (const d of log) {
      const key = `${d.to} ${d.json}`;
      assert.ok(!seen.has(key), `delivered twice: ${key}`);
      seen.add(key);
    }
    // A session belongs to a call only while the call lives.
    for (const [sessionId, calls] of membership) {
      for (const callId of calls) assert.ok(service.inspect(callId), `${sessionId} still a member of ended call ${callId}`);
    }
    for (const callId of seenCalls) if (!service.inspect(callId)) assert.ok(ended(callId).length > 0, `call ${callId} vanished without call-ended`);
  });

  /** Events delivered to a device (in order), optionally only of one type. */
  function to<T extends ServerMessage["type"]>(device: CallDevice, type?: T): Array<ServerMessageOf<T>> {
    return log.filter((d) => d.to === device.sessionId && (type === undefined || d.msg.type === type)).map((d) => d.msg as ServerMessageOf<T>);
  }

  /** Every `call-ended` of a call, with its receiver. */
  function ended(callId: string): Array<Ended & { to: string }> {
    return log.filter((d) => d.msg.type === "call-ended" && d.msg.callId === callId).map((d) => ({ ...(d.msg as Ended), to: d.to }));
  }

  /** `invite` as the hub calls it; the reply is recorded in the caller's log like an event. */
  function invite(caller: CallDevice, calleeUserId: string): string {
    const r = service.invite(caller, calleeUserId, { name: caller.userId }, (reply) => {
      log.push({ to: caller.sessionId, json: JSON.stringify({ type: "call-trying", ...reply }), msg: { type: "call-trying", seq: 0, to: calleeUserId, ...reply } });
    });
    return r.callId;
  }

  /** Number of events delivered so far (to assert "nothing new"). */
  const count = () => log.length;
  const tick = (ms: number) => t.mock.timers.tick(ms);
  return { service, log, to, ended, invite, count, tick, membership };
}

/** The reason each device got in `call-ended`, keyed by session id. */
function reasons(list: Array<Ended & { to: string }>): Record<string, string> {
  return Object.fromEntries(list.map((e) => [e.to, `${e.reason}${e.legOnly ? " (leg)" : ""}`]));
}

/** Starts alice → bob and lets B1 accept. */
function answered(h: ReturnType<typeof harness>): string {
  const id = h.invite(A1, "bob");
  h.service.ringing(B1, id);
  h.service.accept(B1, id);
  return id;
}

describe("CallService (call-flow table b)", () => {
  test("#1 invite fans out to every device of the callee but not the caller's own; the reply comes first", (t) => {
    const h = harness(t);
    const id = h.invite(A1, "bob");
    assert.equal(h.log[0]?.to, A1.sessionId);
    assert.equal(h.log[0]?.msg.type, "call-trying");
    assert.deepEqual(h.log[0]?.msg, { type: "call-trying", seq: 0, to: "bob", callId: id, devices: 2 });
    for (const device of [B1, B2]) {
      const incoming = h.to(device, "call-incoming");
      assert.equal(incoming.length, 1);
      assert.deepEqual(incoming[0], { type: "call-incoming", seq: 1, callId: id, from: { userId: "alice", peerId: A1.peerId }, meta: { name: "alice" } });
    }
    assert.deepEqual(h.service.inspect(id), { state: "inviting", legs: { [B1.peerId]: "offered", [B2.peerId]: "offered" }, accepted: null });
    assert.equal(h.to(A1).length, 1, "the caller hears nothing but the reply");

    // Calling one's own user rings the user's other devices only.
    const self = h.invite(A1, "alice");
    assert.deepEqual(Object.keys(h.service.inspect(self)?.legs ?? {}), [A2.peerId]);
    assert.equal(h.to(A2, "call-incoming").length, 1);
    assert.equal(h.to(A1, "call-incoming").length, 0);
  });

  test("#1 a callee with no live device: the reply, then call-ended unavailable", (t) => {
    const h = harness(t);
    const id = h.invite(A1, "dave");
    assert.deepEqual(
      h.log.map((d) => [d.to, d.msg.type]),
      [
        [A1.sessionId, "call-trying"],
        [A1.sessionId, "call-ended"],
      ],
    );
    assert.deepEqual(reasons(h.ended(id)), { [A1.sessionId]: "unavailable" });
    assert.equal(h.service.inspect(id), undefined);
    assert.equal(h.service.size, 0);

    // Only the caller's own device online counts as none.
    const h2 = { devices: { alice: [A1] } };
    const solo = harness(t, h2);
    const selfCall = solo.invite(A1, "alice");
    assert.deepEqual(reasons(solo.ended(selfCall)), { [A1.sessionId]: "unavailable" });
  });

  test("#2 the first ringing device reaches the caller, once", (t) => {
    const h = harness(t);
    const id = h.invite(A1, "bob");
    h.service.ringing(B2, id);
    h.service.ringing(B1, id);
    h.service.ringing(B2, id);
    const ringing = h.to(A1, "call-ringing");
    assert.deepEqual(ringing, [{ type: "call-ringing", seq: 1, callId: id, peerId: B2.peerId }]);
    assert.deepEqual(h.service.inspect(id)?.legs, { [B1.peerId]: "ringing", [B2.peerId]: "ringing" });
    assert.equal(h.service.inspect(id)?.state, "ringing");
    assert.throws(() => h.service.ringing(C1, id), { code: "SIG_ERR_NOT_CALL_PARTY" });
  });

  test("#3 the first accept wins; the other legs end answered-elsewhere", (t) => {
    const h = harness(t);
    const id = h.invite(A1, "bob");
    h.service.ringing(B1, id);
    h.service.ringing(B2, id);
    h.service.accept(B2, id);
    assert.deepEqual(h.to(A1, "call-accepted"), [{ type: "call-accepted", seq: 1, callId: id, peerId: B2.peerId, polite: false }]);
    assert.deepEqual(reasons(h.ended(id)), { [B1.sessionId]: "answered-elsewhere (leg)" });
    assert.deepEqual(h.service.inspect(id), { state: "answered", legs: { [B1.peerId]: "answered-elsewhere", [B2.peerId]: "accepted" }, accepted: B2.peerId });
    assert.equal(h.to(B2, "call-ended").length, 0);
    // Accepting without ringing first is fine (the app may skip the ringing step).
    const h2 = harness(t);
    const id2 = h2.invite(A1, "bob");
    h2.service.accept(B1, id2);
    assert.equal(h2.service.inspect(id2)?.accepted, B1.peerId);
  });

  test("#4 a late accept is told answered-elsewhere (once) and refused with SIG_ERR_CALL_STATE", (t) => {
    const h = harness(t, { devices: { bob: [B1, B2, { ...C1, userId: "bob" }] } });
    const B3 = { ...C1, userId: "bob" };
    const id = h.invite(A1, "bob");
    h.service.ringing(B1, id);
    h.service.ringing(B2, id);
    h.service.ringing(B3, id);
    h.service.dismiss(B3, id);
    h.service.accept(B1, id);
    // B2 raced: its accept crossed the answered-elsewhere it had already been sent.
    assert.throws(() => h.service.accept(B2, id), { code: "SIG_ERR_CALL_STATE" });
    assert.deepEqual(h.to(B2, "call-ended").map((e) => [e.reason, e.legOnly]), [["answered-elsewhere", true]]);
    // B3 had dismissed the call and was never told; its late accept tells it now.
    assert.throws(() => h.service.accept(B3, id), { code: "SIG_ERR_CALL_STATE" });
    assert.deepEqual(h.to(B3, "call-ended").map((e) => [e.reason, e.legOnly]), [["answered-elsewhere", true]]);
    // The winner accepting again changes nothing.
    const before = h.count();
    assert.throws(() => h.service.accept(B1, id), { code: "SIG_ERR_CALL_STATE" });
    assert.equal(h.count(), before);
    // Also once the call is active.
    h.service.confirm(A1, id);
    assert.throws(() => h.service.accept(B2, id), { code: "SIG_ERR_CALL_STATE" });
    assert.equal(h.to(B2, "call-ended").length, 1);
    assert.equal(h.service.inspect(id)?.state, "active");
  });

  test("#5 confirm makes the call active; the callee is polite, the caller impolite", (t) => {
    const h = harness(t);
    const id = answered(h);
    assert.throws(() => h.service.confirm(B1, id), { code: "SIG_ERR_NOT_CALL_PARTY" });
    h.service.confirm(A1, id);
    assert.deepEqual(h.to(B1, "call-confirmed"), [{ type: "call-confirmed", seq: 1, callId: id, polite: true }]);
    assert.equal(h.to(A1, "call-accepted")[0]?.polite, false);
    assert.equal(h.service.inspect(id)?.state, "active");
    assert.throws(() => h.service.confirm(A1, id), { code: "SIG_ERR_CALL_STATE" });
    // The confirm timer is off: the active call outlives it.
    h.tick(DEFAULT_CALL_CONFIRM_TIMEOUT_MS * 2);
    assert.equal(h.service.inspect(id)?.state, "active");
    assert.deepEqual(reasons(h.ended(id)), { [B2.sessionId]: "answered-elsewhere (leg)" });
    // Confirm before any accept is refused.
    const early = h.invite(A1, "bob");
    assert.throws(() => h.service.confirm(A1, early), { code: "SIG_ERR_CALL_STATE" });
  });

  test("#6 no confirm in time: call-ended confirm-timeout to both parties", (t) => {
    const h = harness(t);
    const id = answered(h);
    h.tick(DEFAULT_CALL_CONFIRM_TIMEOUT_MS - 1);
    assert.equal(h.service.inspect(id)?.state, "answered");
    h.tick(1);
    assert.deepEqual(reasons(h.ended(id)), {
      [A1.sessionId]: "confirm-timeout",
      [B1.sessionId]: "confirm-timeout",
      [B2.sessionId]: "answered-elsewhere (leg)",
    });
    assert.equal(h.service.size, 0);
    assert.throws(() => h.service.confirm(A1, id), { code: "SIG_ERR_CALL_NOT_FOUND" });
  });

  test("#7 a decline ends ringing on every device and tells the caller", (t) => {
    const h = harness(t);
    const id = h.invite(A1, "bob");
    h.service.ringing(B1, id);
    h.service.reject(B1, id, "declined");
    const r = reasons(h.ended(id));
    assert.equal(r[A1.sessionId], "declined");
    assert.equal(r[B2.sessionId], "declined");
    assert.ok(h.ended(id).every((e) => !e.legOnly));
    assert.equal(h.service.size, 0);
    assert.throws(() => h.service.accept(B2, id), { code: "SIG_ERR_CALL_NOT_FOUND" });
  });

  test("#8 busy ends that leg only; when every leg is busy the call ends busy", (t) => {
    const h = harness(t);
    const id = h.invite(A1, "bob");
    h.service.reject(B1, id, "busy");
    assert.deepEqual(h.ended(id), []);
    assert.deepEqual(h.service.inspect(id)?.legs, { [B1.peerId]: "busy", [B2.peerId]: "offered" });
    assert.throws(() => h.service.reject(B1, id, "busy"), { code: "SIG_ERR_CALL_STATE" });
    h.service.reject(B2, id, "busy");
    assert.deepEqual(reasons(h.ended(id)), { [A1.sessionId]: "busy" });
    assert.equal(h.service.size, 0);

    // One busy leg does not stop another from answering.
    const id2 = h.invite(A1, "bob");
    h.service.reject(B2, id2, "busy");
    h.service.accept(B1, id2);
    assert.equal(h.service.inspect(id2)?.state, "answered");
    assert.throws(() => h.service.reject(B1, id2, "declined"), { code: "SIG_ERR_CALL_STATE" });
  });

  test("#9 dismiss tells nobody; the other devices ring on and the ring timeout still ends the call", (t) => {
    const h = harness(t);
    const id = h.invite(A1, "bob");
    h.service.ringing(B1, id);
    const before = h.count();
    h.service.dismiss(B1, id);
    assert.equal(h.count(), before, "nobody is told about a dismiss");
    assert.deepEqual(h.service.inspect(id)?.legs, { [B1.peerId]: "dismissed", [B2.peerId]: "offered" });
    h.service.ringing(B2, id);
    h.tick(DEFAULT_CALL_RING_TIMEOUT_MS);
    const r = reasons(h.ended(id));
    assert.equal(r[A1.sessionId], "no-answer");
    assert.equal(r[B2.sessionId], "no-answer");
    assert.equal(h.service.size, 0);

    // Dismissing the only device does not end the call either.
    const id2 = h.invite(A1, "carol");
    h.service.dismiss(C1, id2);
    assert.equal(h.service.inspect(id2)?.state, "inviting");
    h.tick(DEFAULT_CALL_RING_TIMEOUT_MS);
    assert.equal(reasons(h.ended(id2))[A1.sessionId], "no-answer");
  });

  test("#10 cancel before an accept: cancelled to every leg", (t) => {
    const h = harness(t);
    const id = h.invite(A1, "bob");
    h.service.ringing(B1, id);
    assert.throws(() => h.service.cancel(B1, id), { code: "SIG_ERR_NOT_CALL_PARTY" });
    h.service.cancel(A1, id);
    assert.deepEqual(reasons(h.ended(id)), { [A1.sessionId]: "cancelled", [B1.sessionId]: "cancelled", [B2.sessionId]: "cancelled" });
    assert.equal(h.service.size, 0);
    // The ring timer is gone with it.
    h.tick(DEFAULT_CALL_RING_TIMEOUT_MS);
    assert.equal(h.ended(id).length, 3);
  });

  test("#11 a cancel that crosses an accept is a hangup", (t) => {
    const h = harness(t);
    const id = answered(h);
    h.service.cancel(A1, id);
    assert.deepEqual(reasons(h.ended(id)), {
      [B2.sessionId]: "answered-elsewhere (leg)",
      [A1.sessionId]: "hangup",
      [B1.sessionId]: "hangup",
    });
  });

  test("#12 ring timeout (60 s by default): no-answer to the caller and every ringing leg", (t) => {
    assert.equal(parseConfig({ auth: { mode: "insecure-dev" } }).calls.ringTimeoutMs, 60_000);
    const h = harness(t, { ringTimeoutMs: parseConfig({ auth: { mode: "insecure-dev" } }).calls.ringTimeoutMs });
    const id = h.invite(A1, "bob");
    h.service.ringing(B1, id);
    h.tick(59_999);
    assert.equal(h.service.inspect(id)?.state, "ringing");
    h.tick(1);
    assert.deepEqual(reasons(h.ended(id)), { [A1.sessionId]: "no-answer", [B1.sessionId]: "no-answer", [B2.sessionId]: "no-answer" });
    assert.equal(h.service.size, 0);
  });

  test("#13 hangup from either party ends the call for both", (t) => {
    const h = harness(t);
    const byCallee = answered(h);
    h.service.confirm(A1, byCallee);
    assert.throws(() => h.service.hangup(B2, byCallee), { code: "SIG_ERR_CALL_STATE" });
    h.service.hangup(B1, byCallee);
    assert.deepEqual(reasons(h.ended(byCallee)), {
      [B2.sessionId]: "answered-elsewhere (leg)",
      [A1.sessionId]: "hangup",
      [B1.sessionId]: "hangup",
    });

    const byCaller = answered(h);
    h.service.confirm(A1, byCaller);
    h.service.hangup(A1, byCaller);
    assert.equal(reasons(h.ended(byCaller))[B1.sessionId], "hangup");
    assert.equal(reasons(h.ended(byCaller))[A1.sessionId], "hangup");

    // Before an accept: a ringing device must reject, a caller's hangup is a cancel.
    const ringing = h.invite(A1, "bob");
    assert.throws(() => h.service.hangup(B1, ringing), { code: "SIG_ERR_CALL_STATE" });
    h.service.hangup(A1, ringing);
    assert.equal(reasons(h.ended(ringing))[B1.sessionId], "cancelled");
  });

  test("#14/#15 offers, answers and candidates go only between the caller and the accepted device", (t) => {
    const h = harness(t);
    const id = h.invite(A1, "bob");
    h.service.ringing(B1, id);
    h.service.ringing(B2, id);
    assert.throws(() => h.service.relay(A1, id, "offer", { sdp: "v=0 early" }), { code: "SIG_ERR_CALL_STATE" });
    h.service.accept(B1, id);
    h.service.relay(A1, id, "offer", { sdp: "v=0 offer" });
    h.service.relay(A1, id, "candidate", { candidate: { candidate: "candidate:1 1 udp 1 10.0.0.1 5000 typ host", sdpMid: "0" } });
    h.service.relay(B1, id, "answer", { sdp: "v=0 answer" });
    h.service.relay(B1, id, "candidate", { candidate: { candidate: "candidate:2 1 udp 1 10.0.0.2 5000 typ host", sdpMid: "0" } });
    h.service.relay(B1, id, "end-of-candidates", {});
    assert.throws(() => h.service.relay(B2, id, "answer", { sdp: "v=0 b2" }), { code: "SIG_ERR_NOT_CALL_PARTY" });
    assert.throws(() => h.service.relay(C1, id, "candidate", { candidate: { candidate: "x" } }), { code: "SIG_ERR_NOT_CALL_PARTY" });
    assert.deepEqual(
      h.to(B1).filter((m) => m.type === "offer" || m.type === "candidate"),
      [
        { type: "offer", seq: 1, callId: id, from: A1.peerId, sdp: "v=0 offer" },
        { type: "candidate", seq: 1, callId: id, from: A1.peerId, candidate: { candidate: "candidate:1 1 udp 1 10.0.0.1 5000 typ host", sdpMid: "0" } },
      ],
    );
    assert.deepEqual(
      h.to(A1).filter((m) => ["answer", "candidate", "end-of-candidates"].includes(m.type)).map((m) => [m.type, "from" in m ? m.from : null]),
      [
        ["answer", B1.peerId],
        ["candidate", B1.peerId],
        ["end-of-candidates", B1.peerId],
      ],
    );
    // The device that only rang saw the invite and its own end, nothing of the negotiation.
    assert.deepEqual(h.to(B2).map((m) => m.type), ["call-incoming", "call-ended"]);
    assert.equal(h.to(C1).length, 0);
    // Renegotiation from both sides once active.
    h.service.confirm(A1, id);
    h.service.relay(B1, id, "offer", { sdp: "v=0 callee offer" });
    assert.equal(h.to(A1, "offer").length, 1);
  });

  test("#18 call-level glare: the lower call id wins, the other ends replaced", (t) => {
    const h = harness(t);
    const first = h.invite(A1, "bob");
    const second = h.invite(B1, "alice");
    assert.ok(first < second);
    assert.deepEqual(reasons(h.ended(second)), { [B1.sessionId]: "replaced" });
    assert.equal(h.to(A1, "call-incoming").length, 0, "the losing call never rings");
    assert.equal(h.to(A2, "call-incoming").length, 0);
    assert.equal(h.service.inspect(first)?.state, "inviting");
    h.service.accept(B1, first);
    assert.equal(h.service.inspect(first)?.accepted, B1.peerId);

    // When the newer invite has the lower id (clock stepped back), the older call is replaced.
    const h2 = harness(t);
    const older = h2.invite(A1, "bob");
    t.mock.timers.setTime(1_700_000_000_000);
    const newer = h2.invite(B1, "alice");
    assert.ok(newer < older);
    assert.deepEqual(reasons(h2.ended(older)), { [A1.sessionId]: "replaced", [B1.sessionId]: "replaced", [B2.sessionId]: "replaced" });
    assert.equal(h2.service.inspect(newer)?.state, "inviting");
    assert.equal(h2.to(A1, "call-incoming").length, 1);
    assert.equal(h2.to(A2, "call-incoming").length, 1);
  });

  test("#19 a callee already in an active call still rings", (t) => {
    const h = harness(t);
    const busyCall = h.invite(C1, "bob");
    h.service.accept(B1, busyCall);
    h.service.confirm(C1, busyCall);
    const id = h.invite(A1, "bob");
    assert.deepEqual(h.service.inspect(id)?.legs, { [B1.peerId]: "offered", [B2.peerId]: "offered" });
    assert.equal(h.to(B1, "call-incoming").length, 2);
  });

  describe("#16/#17 a session ends for good", () => {
    test("the caller while ringing: cancelled to every leg", (t) => {
      const h = harness(t);
      const id = h.invite(A1, "bob");
      h.service.ringing(B1, id);
      h.service.sessionGone(A1.sessionId, [id]);
      const r = reasons(h.ended(id));
      assert.equal(r[B1.sessionId], "cancelled");
      assert.equal(r[B2.sessionId], "cancelled");
      assert.equal(h.service.size, 0);
    });

    test("the accepted callee: connection-lost for the caller", (t) => {
      const h = harness(t);
      const id = answered(h);
      h.service.confirm(A1, id);
      h.service.sessionGone(B1.sessionId, [id]);
      assert.equal(reasons(h.ended(id))[A1.sessionId], "connection-lost");
      assert.equal(h.service.size, 0);
    });

    test("the caller of an active call: connection-lost for the callee", (t) => {
      const h = harness(t);
      const id = answered(h);
      h.service.confirm(A1, id);
      h.service.sessionGone(A1.sessionId, [id]);
      assert.equal(reasons(h.ended(id))[B1.sessionId], "connection-lost");
    });

    test("one ringing leg of two: the call goes on", (t) => {
      const h = harness(t);
      const id = h.invite(A1, "bob");
      h.service.ringing(B1, id);
      h.service.sessionGone(B1.sessionId, [id]);
      assert.deepEqual(h.ended(id), []);
      assert.deepEqual(h.service.inspect(id)?.legs, { [B1.peerId]: "gone", [B2.peerId]: "offered" });
      h.service.accept(B2, id);
      assert.equal(h.to(A1, "call-accepted")[0]?.peerId, B2.peerId);
    });

    test("the only leg: unavailable", (t) => {
      const h = harness(t);
      const id = h.invite(A1, "carol");
      h.service.ringing(C1, id);
      h.service.sessionGone(C1.sessionId, [id]);
      assert.deepEqual(reasons(h.ended(id)), { [A1.sessionId]: "unavailable" });
      assert.equal(h.service.size, 0);
    });

    test("unknown or already ended calls are ignored", (t) => {
      const h = harness(t);
      const id = h.invite(A1, "carol");
      h.service.cancel(A1, id);
      const before = h.count();
      h.service.sessionGone(C1.sessionId, [id, "c_unknown"]);
      assert.equal(h.count(), before);
    });
  });

  test("every ended call carries a reason code, and each party hears of the end once", (t) => {
    const h = harness(t);
    const calls: string[] = [];
    calls.push(h.invite(A1, "dave")); // unavailable
    let id = h.invite(A1, "bob");
    h.service.reject(B2, id, "declined"); // declined
    calls.push(id);
    id = h.invite(A1, "bob");
    h.service.reject(B1, id, "busy");
    h.service.reject(B2, id, "busy"); // busy
    calls.push(id);
    calls.push(h.invite(A1, "carol"));
    h.service.cancel(A1, calls.at(-1) as string); // cancelled
    calls.push(answered(h));
    h.tick(DEFAULT_CALL_CONFIRM_TIMEOUT_MS); // confirm-timeout
    calls.push(answered(h));
    h.service.confirm(A1, calls.at(-1) as string);
    h.service.hangup(B1, calls.at(-1) as string); // hangup
    calls.push(h.invite(C1, "bob"));
    h.tick(DEFAULT_CALL_RING_TIMEOUT_MS); // no-answer
    calls.push(answered(h));
    h.service.sessionGone(B1.sessionId, [calls.at(-1) as string]); // connection-lost
    assert.equal(h.service.size, 0);

    const reasonCodes = new Set<string>(CallEndReason.options);
    const seen = new Set<string>();
    for (const callId of calls) {
      const list = h.ended(callId);
      assert.ok(list.length > 0, `${callId} ended silently`);
      for (const e of list) {
        assert.ok(reasonCodes.has(e.reason), `reason ${e.reason}`);
        seen.add(e.reason);
      }
      const whole = list.filter((e) => !e.legOnly).map((e) => e.to);
      assert.equal(new Set(whole).size, whole.length, `a party got the end of ${callId} twice`);
    }
    assert.deepEqual([...seen].sort(), ["answered-elsewhere", "busy", "cancelled", "confirm-timeout", "connection-lost", "declined", "hangup", "no-answer", "unavailable"]);
  });

  test("close() ends every live call with failed", (t) => {
    const h = harness(t);
    const ringing = h.invite(A1, "bob");
    const active = h.invite(C1, "alice");
    h.service.accept(A2, active);
    h.service.confirm(C1, active);
    h.service.close();
    assert.equal(h.service.size, 0);
    assert.equal(reasons(h.ended(ringing))[A1.sessionId], "failed");
    assert.equal(reasons(h.ended(active))[A2.sessionId], "failed");
  });
});
