/**
 * The session's ordered stream and replay buffer, without sockets.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { createPrincipal } from "../auth/index.ts";
import { framePayload, type TextFrame } from "../transport/text-frame.ts";
import { Session, type SessionSocket } from "./session.ts";

const principal = createPrincipal({ userId: "alice", roomPatterns: ["*"], grants: ["join"] });

/** A socket that records the frames written to it. */
function recordingSocket(): SessionSocket & { frames: string[] } {
  const frames: string[] = [];
  return { frames, send: (f) => void frames.push(textOf(f)), bufferedBytes: () => 0, close: () => undefined };
}

/** The text a client receives for a frame the session wrote. */
function textOf(frame: string | TextFrame): string {
  return typeof frame === "string" ? frame : framePayload(frame).toString("utf8");
}

function seqOf(frame: string | TextFrame): number {
  return (JSON.parse(textOf(frame)) as { seq: number }).seq;
}

function push(session: Session, n: number, data = "x"): void {
  for (let i = 0; i < n; i++) session.push({ type: "broadcast", room: "r", from: "p_x", data });
}

describe("Session", () => {
  test("ids are unguessable and distinct", () => {
    const a = new Session(principal, { maxReplayBytes: 1 << 20 });
    const b = new Session(principal, { maxReplayBytes: 1 << 20 });
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.resumeToken, b.resumeToken);
    assert.notEqual(a.peerId, b.peerId);
    assert.ok(Buffer.from(a.resumeToken, "base64url").length >= 32);
    assert.equal(a.userId, "alice");
  });

  test("seq starts at 1 and strictly increases by one; frames carry it first", () => {
    const s = new Session(principal, { maxReplayBytes: 1 << 20 });
    const socket = recordingSocket();
    s.attach(socket);
    assert.equal(s.lastSeq, 0);
    const seqs = [s.push({ type: "ok" }), s.pushJson('{"type":"ok","id":"x"}'), s.push({ type: "token-expiring", expiresAt: 5 })];
    assert.deepEqual(seqs, [1, 2, 3]);
    assert.equal(s.lastSeq, 3);
    assert.deepEqual(socket.frames.map(seqOf), [1, 2, 3]);
    assert.deepEqual(JSON.parse(socket.frames[1] as string), { seq: 2, type: "ok", id: "x" });
    assert.ok((socket.frames[0] as string).startsWith('{"seq":1,'));
  });

  test("detached, events are kept but not sent; attach does not resend them", () => {
    const s = new Session(principal, { maxReplayBytes: 1 << 20 });
    const first = recordingSocket();
    s.attach(first);
    push(s, 2);
    s.detach("dropped", 1000);
    assert.equal(s.socket, null);
    assert.equal(s.detachedAtMs, 1000);
    assert.equal(s.detachCause, "dropped");
    push(s, 3);
    assert.equal(first.frames.length, 2);
    assert.equal(s.replayLength, 5);
    const second = recordingSocket();
    s.attach(second);
    assert.equal(s.detachedAtMs, null);
    assert.equal(second.frames.length, 0);
    push(s, 1);
    assert.deepEqual(second.frames.map(seqOf), [6]);
  });

  test("ack trims the replay buffer up to the acknowledged seq; stale and future acks are safe", () => {
    const s = new Session(principal, { maxReplayBytes: 1 << 20 });
    push(s, 10);
    assert.equal(s.replayLength, 10);
    const bytesBefore = s.replayBytes;
    s.ack(4);
    assert.equal(s.ackedSeq, 4);
    assert.equal(s.replayLength, 6);
    assert.ok(s.replayBytes < bytesBefore);
    s.ack(2);
    assert.equal(s.ackedSeq, 4, "acks never go backwards");
    assert.equal(s.replayLength, 6);
    s.ack(1_000);
    assert.equal(s.ackedSeq, 10, "an ack beyond the stream is clamped");
    assert.equal(s.replayLength, 0);
    assert.equal(s.replayBytes, 0);
    push(s, 1);
    assert.equal(s.replayLength, 1, "new events after a full ack are kept");
  });

  test("planReplay returns exactly the frames after lastSeq, in order", () => {
    const s = new Session(principal, { maxReplayBytes: 1 << 20 });
    push(s, 8);
    const plan = s.planReplay(3);
    assert.ok(plan.ok);
    assert.deepEqual(plan.frames.map(seqOf), [4, 5, 6, 7, 8]);
    // planReplay acknowledges what the client said it has.
    assert.equal(s.ackedSeq, 3);
    const again = s.planReplay(3);
    assert.ok(again.ok);
    assert.deepEqual(again.frames.map(seqOf), [4, 5, 6, 7, 8], "a repeated resume from the same point gets the same frames");
    const none = s.planReplay(8);
    assert.ok(none.ok);
    assert.deepEqual(none.frames, []);
    assert.deepEqual(s.planReplay(9), { ok: false, reason: "gap" }, "a future lastSeq is a gap");
    assert.deepEqual(s.planReplay(2), { ok: false, reason: "gap" }, "before the acknowledged floor is a gap");
  });

  test("a fresh session replays everything from 0", () => {
    const s = new Session(principal, { maxReplayBytes: 1 << 20 });
    const empty = s.planReplay(0);
    assert.ok(empty.ok && empty.frames.length === 0);
    push(s, 2);
    const plan = s.planReplay(0);
    assert.ok(plan.ok);
    assert.deepEqual(plan.frames.map(seqOf), [1, 2]);
  });

  test("replay buffer overflow drops the oldest; a resume from before the floor is a gap, after it ok", () => {
    const s = new Session(principal, { maxReplayBytes: 1024 });
    const data = "y".repeat(100);
    push(s, 30, data); // ~150 bytes each: far more than 1 KiB
    assert.ok(s.replayBytes <= 1024);
    const kept = s.replayLength;
    assert.ok(kept > 0 && kept < 30);
    const floor = 30 - kept; // the highest seq no longer kept
    assert.deepEqual(s.planReplay(floor - 1), { ok: false, reason: "gap" });
    assert.deepEqual(s.planReplay(0), { ok: false, reason: "gap" });
    const plan = s.planReplay(floor);
    assert.ok(plan.ok);
    assert.deepEqual(plan.frames.map(seqOf), Array.from({ length: kept }, (_, i) => floor + 1 + i));
  });

  test("one event larger than the buffer is still kept (the newest is never dropped)", () => {
    const s = new Session(principal, { maxReplayBytes: 1024 });
    push(s, 1, "z".repeat(4096));
    assert.equal(s.replayLength, 1);
    const plan = s.planReplay(0);
    assert.ok(plan.ok && plan.frames.length === 1);
    push(s, 1, "small");
    assert.equal(s.replayLength, 1, "the big one is dropped once a newer event exists");
    assert.deepEqual(s.planReplay(0), { ok: false, reason: "gap" });
  });

  test("property: any interleaving of pushes, acks and replays keeps the stream exact", () => {
    type Op = { kind: "push"; size: number } | { kind: "ack"; back: number } | { kind: "replay"; back: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant("push" as const), size: fc.nat(300) }),
      fc.record({ kind: fc.constant("ack" as const), back: fc.nat(10) }),
      fc.record({ kind: fc.constant("replay" as const), back: fc.nat(10) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 1024, max: 8192 }), (ops, maxReplayBytes) => {
        const s = new Session(principal, { maxReplayBytes });
        const socket = recordingSocket();
        s.attach(socket);
        for (const o of ops) {
          if (o.kind === "push") s.push({ type: "broadcast", room: "r", from: "p", data: "d".repeat(o.size) });
          else if (o.kind === "ack") s.ack(Math.max(0, s.lastSeq - o.back));
          else {
            const from = Math.max(0, s.lastSeq - o.back);
            const plan = s.planReplay(from);
            if (plan.ok) {
              // Exactly the events after `from`, contiguous, ending at lastSeq.
              assert.deepEqual(
                plan.frames.map(seqOf),
                Array.from({ length: s.lastSeq - from }, (_, i) => from + 1 + i),
              );
            } else {
              assert.ok(from < s.ackedSeq || s.replayLength < s.lastSeq - from, "a gap only when events are really missing");
            }
          }
          assert.ok(s.replayBytes <= maxReplayBytes || s.replayLength === 1);
        }
        // Live frames: 1..lastSeq, each once.
        assert.deepEqual(
          socket.frames.map(seqOf),
          Array.from({ length: s.lastSeq }, (_, i) => i + 1),
        );
      }),
      { numRuns: 200 },
    );
  });
});
