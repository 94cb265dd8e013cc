/**
 * The owner of rooms and calls as a function of commands: effects come out as values, a refusal
 * keeps what happened before it, and what a timer does goes its own way, never into the next
 * command's effects (before the RoomOwner, a call's ring timeout landed in the pending publishes of
 * whichever unrelated command ran next, which then waited for, and could fail with, them).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { RoomCommand } from "../cluster/wire.ts";
import type { OwnerEffects } from "./owner-effects.ts";
import { RoomOwner, type RoomOwnerOptions } from "./room-owner.ts";

const from = (n: number, edge = "pod-a", id?: string) => ({ sessionId: `s${n}`, peerId: `p${n}`, userId: `u${n}`, edge, ...(id === undefined ? {} : { id }) });

function owner(over: Partial<RoomOwnerOptions> = {}): { owner: RoomOwner; unprompted: OwnerEffects[] } {
  const unprompted: OwnerEffects[] = [];
  const o = new RoomOwner({
    podName: "pod-a",
    maxPeersPerRoom: 10,
    ringTimeoutMs: 50,
    confirmTimeoutMs: 50,
    devicesOf: (userId) => (userId === "u2" ? [{ sessionId: "s2", peerId: "p2", userId: "u2" }] : []),
    onUnprompted: (fx) => unprompted.push(fx),
    ...over,
  });
  return { owner: o, unprompted };
}

const kinds = (fx: OwnerEffects) => fx.effects.map((e) => (e.k === "deliver" ? `deliver ${e.type} → ${e.to.sessionId}${e.to.edge ? `@${e.to.edge}` : ""}` : e.k === "persist" ? `persist ${e.room} (${e.members.length})` : e.k === "moved" ? `moved ${e.sessionId} ${e.moved}` : `call ${e.member ? "+" : "-"} ${e.sessionId}`));

test("a join: the room stored, the snapshot to the joiner, peer-joined to the others; a remote member is kept with its edge", () => {
  const { owner: o } = owner();
  o.apply({ k: "join", room: "r", from: from(1), meta: {} });
  const { effects, error } = o.apply({ k: "join", room: "r", from: from(2, "pod-b", "q1"), meta: {} });
  assert.equal(error, undefined);
  assert.equal(effects.key, "room:r");
  assert.deepEqual(kinds(effects), ["deliver peer-joined → s1", "persist r (2)", "deliver joined → s2@pod-b"]);
  assert.equal(effects.reply, undefined, "a join answers with its snapshot, not an ok");
  assert.equal(o.rooms.members("r")?.find((m) => m.sessionId === "s2")?.edge, "pod-b");
});

test("a relayed message: one delivery and the sender's ok, nothing stored", () => {
  const { owner: o } = owner();
  o.apply({ k: "join", room: "r", from: from(1), meta: {} });
  o.apply({ k: "join", room: "r", from: from(2), meta: {} });
  const { effects } = o.apply({ k: "send", room: "r", from: from(1, "pod-a", "m1"), to: "p2", type: "offer", json: '{"type":"offer"}' });
  assert.deepEqual(kinds(effects), ["deliver offer → s2"]);
  assert.deepEqual(effects.reply, { to: from(1, "pod-a", "m1"), json: '{"type":"ok","id":"m1"}' });
});

test("a refusal comes back as the outcome's error with the effects made before it, and no reply", () => {
  const { owner: o } = owner();
  const { effects, error } = o.apply({ k: "leave", room: "nowhere", from: from(1, "pod-a", "l1"), reason: "left" });
  assert.equal((error as { code?: string }).code, "SIG_ERR_NOT_IN_ROOM");
  assert.equal(effects.reply, undefined);
  const sent = o.apply({ k: "send", room: "nowhere", from: from(1, "pod-a", "m1"), to: "p9", type: "offer", json: "{}" });
  assert.ok(sent.error, "relay into a room that does not exist is refused");
});

test("single-node mode: every sender is local and no key tags the effects", () => {
  const { owner: o } = owner({ podName: undefined });
  const { effects } = o.apply({ k: "join", room: "r", from: from(1, ""), meta: {} });
  assert.equal(effects.key, undefined);
  assert.equal(o.rooms.members("r")?.[0]?.edge, undefined);
});

test("a call's ring timeout is unprompted: its events go to onUnprompted, not into the next command's effects", async () => {
  const { owner: o, unprompted } = owner();
  const invite = o.apply({ k: "call-invite", callId: "c_1_2_pod-a", from: from(1, "pod-a", "i1"), to: "u2", meta: {} });
  assert.equal(invite.error, undefined);
  assert.deepEqual(kinds(invite.effects), ["call + s1", "deliver call-trying → s1@pod-a", "call + s2", "deliver call-incoming → s2"]);
  await sleep(120); // past the ring timeout (50 ms)
  assert.equal(unprompted.length, 1, "one batch for the timer's callback");
  const timedOut = unprompted[0] as OwnerEffects;
  assert.equal(timedOut.key, undefined);
  assert.ok(kinds(timedOut).some((k) => k === "deliver call-ended → s1"), kinds(timedOut).join(", "));
  assert.ok(kinds(timedOut).includes("call - s1"));
  // The next, unrelated command carries only its own effects.
  const next = o.apply({ k: "join", room: "r", from: from(3), meta: {} });
  assert.deepEqual(kinds(next.effects), ["persist r (1)", "deliver joined → s3@pod-a"]);
  assert.equal(o.calls.inspect("c_1_2_pod-a"), undefined, "the call is over");
});

test("an admin close tells every member, stores the room empty, and is nobody's command", () => {
  const { owner: o, unprompted } = owner();
  o.apply({ k: "join", room: "r", from: from(1), meta: {} });
  o.apply({ k: "join", room: "r", from: from(2, "pod-b"), meta: {} });
  const { effects, members } = o.closeRoom("r", "closed by administrator");
  assert.deepEqual(members.map((m) => m.sessionId).sort(), ["s1", "s2"]);
  assert.deepEqual(kinds(effects).sort(), ["deliver room-closed → s1", "deliver room-closed → s2@pod-b", "persist r (0)"]);
  assert.equal(unprompted.length, 0);
  assert.equal(o.rooms.has("r"), false);
});

test("a reattach moves the member to its new edge, stores it, and marks the old edge's subject", () => {
  const { owner: o } = owner();
  o.apply({ k: "join", room: "r", from: from(1, "pod-b"), meta: {} });
  const moved = o.apply({ k: "reattach", room: "r", from: from(1, "pod-c"), prev: "pod-b" } as RoomCommand);
  assert.deepEqual(kinds(moved.effects), ["persist r (1)", "moved s1 yes"]);
  assert.equal(o.rooms.members("r")?.[0]?.edge, "pod-c");
  const gone = o.apply({ k: "reattach", room: "other", from: from(1, "pod-c"), prev: "pod-b" } as RoomCommand);
  assert.deepEqual(kinds(gone.effects), ["moved s1 gone", "deliver room-closed → s1@pod-c"]);
});

test("shutdown ends the calls owned here and says so in the effects it returns (not later)", () => {
  const { owner: o, unprompted } = owner({ ringTimeoutMs: 60_000 });
  o.apply({ k: "call-invite", callId: "c_1_2_pod-a", from: from(1), to: "u2", meta: {} });
  const fx = o.close();
  assert.deepEqual(kinds(fx), ["deliver call-ended → s1", "call - s1", "deliver call-ended → s2", "call - s2"]);
  assert.equal(unprompted.length, 0);
});
