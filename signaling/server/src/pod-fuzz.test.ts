/**
 * Pod-level fuzz: a few hundred random frames (junk, arbitrary JSON, near-valid and valid
 * messages, binary and oversize frames) on real sockets. The pod must stay up and correct for a
 * bystander, only ever send well-formed server messages, and hold nothing once the clients leave.
 */
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { test } from "node:test";
import fc from "fast-check";
import { decodeServerMessage } from "@switchboard/protocol";
import { eventually, startPod, type Peer, type TestPod } from "./testing/pod.ts";
import type { RawClient } from "./testing/raw-client.ts";

const MAX_MESSAGE_BYTES = 4096;
/** Mostly valid rooms (so joins succeed and fan-out happens), some invalid. */
const ROOMS = ["fuzz-room", "fuzz-room", "fuzz-room", "other", "bad room", ""];

/** Any code point, lone surrogates included, biased to ASCII. */
const anyChar = fc.oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0, max: 0x10ffff })).map((c) => String.fromCodePoint(c));

type Frame = { kind: "text"; text: string } | { kind: "binary"; bytes: Buffer } | { kind: "oversize" };

/** Valid messages of every family, aimed at the bystander where they have a target. */
function templates(target: string): fc.Arbitrary<Record<string, unknown>> {
  const room = fc.constantFrom(...ROOMS);
  const json = fc.jsonValue({ maxDepth: 2 });
  return fc.oneof(
    fc.record({ type: fc.constant("join"), room, meta: fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 3 }) }),
    fc.record({ type: fc.constant("leave"), room }),
    fc.record({ type: fc.constant("update"), room, meta: fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 3 }) }),
    fc.record({ type: fc.constantFrom("offer", "answer"), room, to: fc.constantFrom(target, "p_nobody"), sdp: fc.string({ minLength: 1, maxLength: 200 }) }),
    fc.record({ type: fc.constant("candidate"), room, to: fc.constant(target), candidate: fc.record({ candidate: fc.string(), sdpMLineIndex: fc.integer({ min: -2, max: 3 }) }) }),
    fc.record({ type: fc.constantFrom("end-of-candidates", "renegotiate"), room, to: fc.constant(target) }),
    fc.record({ type: fc.constant("broadcast"), room, data: json }),
    fc.record({ type: fc.constant("message"), room, to: fc.constant(target), data: json }),
    fc.record({ type: fc.constant("ack"), seq: fc.integer({ min: -1, max: 10_000 }) }),
    fc.record({ type: fc.constant("ping"), ts: fc.double() }),
    fc.record({ type: fc.constant("refresh"), token: fc.string({ minLength: 1, maxLength: 20 }) }),
    fc.record({ type: fc.constant("call-invite"), to: fc.constantFrom("watcher", "nobody", "fuzz0") }),
    fc.record({ type: fc.constantFrom("call-ringing", "call-accept", "call-confirm", "call-dismiss", "call-cancel", "call-hangup"), callId: fc.string({ minLength: 1, maxLength: 10 }) }),
    fc.record({ type: fc.constant("call-reject"), callId: fc.string({ minLength: 1, maxLength: 10 }), reason: fc.constantFrom("declined", "busy", "bored") }),
    fc.record({ type: fc.constant("hello"), v: fc.integer({ min: 0, max: 2 }), token: fc.string({ maxLength: 10 }) }),
    fc.record({ type: fc.constant("resume"), v: fc.constant(1), sessionId: fc.string({ minLength: 1 }), resumeToken: fc.string({ minLength: 1 }), lastSeq: fc.nat() }),
    fc.record({ type: fc.constant("bye") }),
  );
}

/** One random frame: mostly near-valid messages, some junk, some binary, rarely oversize. */
function frames(target: string): fc.Arbitrary<Frame> {
  const mutated = fc.tuple(templates(target), fc.nat(), fc.jsonValue({ maxDepth: 2 }), fc.constantFrom("keep", "keep", "keep", "keep", "replace", "delete", "id")).map(([msg, pick, junk, how]) => {
    const keys = Object.keys(msg);
    const key = keys[pick % keys.length] as string;
    const out: Record<string, unknown> = { ...msg };
    if (how === "replace") out[key] = junk;
    else if (how === "delete") delete out[key];
    else if (how === "id") out["id"] = junk;
    return JSON.stringify(out);
  });
  const text = fc.oneof(
    { weight: 8, arbitrary: mutated },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? "null") },
    { weight: 2, arbitrary: fc.string({ unit: anyChar, maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constantFrom("", "{", "null", "[]", '{"type":null}', '{"type":"__proto__"}', '{"__proto__":{"type":"join"}}') },
  );
  return fc.oneof(
    { weight: 30, arbitrary: text.map((t): Frame => ({ kind: "text", text: t })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b): Frame => ({ kind: "binary", bytes: Buffer.from(b) })) },
    { weight: 1, arbitrary: fc.constant<Frame>({ kind: "oversize" }) },
  );
}

/** Every frame a client received is a well-formed server message. */
function assertWellFormed(client: RawClient, who: string): void {
  for (const m of client.received) {
    const r = decodeServerMessage(JSON.stringify(m));
    assert.ok(r.ok, `${who} got a malformed frame ${JSON.stringify(m).slice(0, 300)}: ${r.ok ? "" : `${r.field} ${r.message}`}`);
  }
}

/** One fuzzer: sends its frames, reconnecting whenever the pod closes its socket. */
async function fuzz(pod: TestPod, name: string, list: readonly Frame[], seen: RawClient[]): Promise<void> {
  let client: RawClient | null = null;
  const fresh = async () => {
    const c = pod.connect();
    seen.push(c);
    await c.hello(name);
    return c;
  };
  for (const [i, frame] of list.entries()) {
    if (!client || client.closeCode !== null || client.ws.readyState !== client.ws.OPEN) client = await fresh();
    if (i % 40 === 20) {
      // Now and then, a frame before any handshake on a socket of its own.
      const raw = pod.connect();
      seen.push(raw);
      await raw.opened();
      if (frame.kind === "text") raw.sendText(frame.text);
      raw.drop();
    }
    if (frame.kind === "text") client.sendText(frame.text);
    else if (frame.kind === "binary") client.sendText(frame.bytes);
    else client.sendText(JSON.stringify({ type: "broadcast", room: "fuzz-room", data: "x".repeat(MAX_MESSAGE_BYTES) }));
    if (i % 25 === 24) {
      // Stay in step with the pod; a socket the pod just closed is replaced on the next frame.
      await client.request({ type: "ping" }).catch(() => undefined);
    }
  }
  if (client && client.closeCode === null) await client.request({ type: "ping" }).catch(() => undefined);
}

async function round(pod: TestPod, watcher: Peer, seed: number): Promise<RawClient[]> {
  const seen: RawClient[] = [];
  const list = fc.sample(frames(watcher.peerId), { numRuns: 450, seed });
  await Promise.all([0, 1, 2].map((n) => fuzz(pod, `fuzz${n}`, list.slice(n * 150, (n + 1) * 150), seen)));
  for (const c of seen) await c.close().catch(() => undefined);
  return seen;
}

/** `gc()` when the V8 flag can be set at run time; null otherwise. */
function exposeGc(): (() => void) | null {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

test("random frames: the pod stays up, answers a bystander, sends only valid messages and leaks nothing", async (t) => {
  const pod = await startPod(t, {
    resumeWindowMs: 0,
    limits: { maxMessageBytes: MAX_MESSAGE_BYTES, maxInvalidMessages: 40, ratePerSecond: 100_000, rateBurst: 100_000, upgradesPerSecondPerIp: 100_000 },
  });
  const watcher = await pod.member("watcher", "fuzz-room");
  const gc = exposeGc();
  const heapAfter: number[] = [];
  for (const seed of [1, 2, 3]) {
    const seen = await round(pod, watcher, seed);
    for (const [i, c] of seen.entries()) assertWellFormed(c, `fuzz socket ${i}`);
    // Sessions of sockets the pod closed wait out the (zero) resume window until the next sweep.
    await eventually(() => pod.server.gateway.connectionCount === 1, "fuzz sockets closed");
    pod.server.gateway.tick(Date.now());
    assert.equal(pod.server.hub.sessions.size, 1, "only the watcher's session is left");
    assert.deepEqual(pod.server.hub.rooms.list().map((r) => [r.room, r.peers]), [["fuzz-room", 1]]);
    assert.equal(pod.server.hub.calls.size, 0, "no call outlives its parties");
    // The watcher acknowledges what it got, so its replay buffer does not count as growth.
    await watcher.client.request({ type: "ping" });
    const acked = Math.max(0, ...watcher.client.received.flatMap((m) => ("seq" in m && typeof m.seq === "number" ? [m.seq] : [])));
    await watcher.client.request({ type: "ping", ack: acked });
    assert.equal(pod.server.hub.sessions.get(watcher.welcome.sessionId)?.replayLength, 0);
    if (gc) {
      gc();
      heapAfter.push(process.memoryUsage().heapUsed);
    }
  }

  // The bystander still works, and the pod is healthy.
  assert.equal((await watcher.client.request({ type: "ping" })).type, "pong");
  const friend = await pod.member("friend", "fuzz-room");
  await friend.client.request({ type: "message", room: "fuzz-room", to: watcher.peerId, data: "still here" });
  assert.equal((await watcher.client.next((m) => m.type === "message" && m.data === "still here")).type, "message");
  assert.equal((await pod.http("/healthz")).status, 200);
  assertWellFormed(watcher.client, "watcher");
  assert.equal(watcher.client.closeCode, null);

  // Everything is released once the last clients leave.
  await friend.client.close();
  await watcher.client.close();
  await eventually(() => pod.server.gateway.connectionCount === 0, "all sockets closed");
  assert.equal(pod.server.hub.sessions.size, 0);
  assert.equal(pod.server.hub.rooms.size, 0);
  assert.equal(pod.server.hub.calls.size, 0);

  if (gc) {
    // Rounds two and three do the same work as round one: the heap must not keep growing.
    const [, second, third] = heapAfter as [number, number, number];
    t.diagnostic(`heap after rounds: ${heapAfter.map((b) => (b / 1e6).toFixed(1)).join(", ")} MB`);
    assert.ok(third - second < 4e6, `heap grew by ${((third - second) / 1e6).toFixed(1)} MB between equal rounds`);
  } else {
    t.diagnostic("gc not available: heap growth not checked (counts were)");
  }
});
