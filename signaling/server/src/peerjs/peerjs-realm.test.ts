/**
 * The PeerJS realm without sockets or timers: an injected clock drives queue expiry, leave grace
 * and liveness; fake sockets record what they were sent.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createPrincipal } from "../auth/index.ts";
import { Session } from "../sessions/session.ts";
import { PeerJsConfigSchema, type PeerJsConfig } from "./peerjs-config.ts";
import { PeerJsServerMessageSchema, type PeerJsServerMessage } from "./peerjs-protocol.ts";
import { MAX_PEERJS_CONTACTS, PeerJsRealm, type PeerJsClient, type PeerJsSocket } from "./peerjs-realm.ts";

class FakeSocket implements PeerJsSocket {
  readonly frames: PeerJsServerMessage[] = [];
  closed: { code: number; reason: string } | null = null;
  deliver(frame: string): void {
    this.frames.push(PeerJsServerMessageSchema.parse(JSON.parse(frame)));
  }
  send(): void {}
  bufferedBytes(): number {
    return 0;
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
  /** Frames since the last call. */
  take(): PeerJsServerMessage[] {
    return this.frames.splice(0);
  }
}

function setup(overrides: Partial<PeerJsConfig> = {}) {
  const config = { ...PeerJsConfigSchema.parse({}), ...overrides };
  const sessions = new Set<Session>();
  const counted: string[] = [];
  const realm = new PeerJsRealm({
    config,
    host: {
      open(principal, socket) {
        const s = new Session(principal, { device: "peerjs", maxReplayBytes: 1024 });
        s.attach(socket);
        sessions.add(s);
        return s;
      },
      attach: (session, principal, socket) => {
        session.principal = principal;
        session.attach(socket);
      },
      detach: (session, nowMs) => session.detach("dropped", nowMs),
      end(session) {
        session.ended = true;
        sessions.delete(session);
      },
    },
    metrics: { messageOut: () => {}, error: (code) => void counted.push(code) },
  });
  const register = (id: string, nowMs: number, token = `t-${id}`, proven = false) => {
    const socket = new FakeSocket();
    const result = realm.register({ id, token, principal: createPrincipal({ userId: id, grants: ["signal"] }), proven, socket }, nowMs);
    return { socket, result, client: result.ok ? result.client : (null as unknown as PeerJsClient) };
  };
  return { realm, sessions, counted, register, config };
}

describe("PeerJsRealm", () => {
  test("OPEN, relay with src overwritten, and the contact sets that LEAVE uses", () => {
    const { realm, register } = setup();
    const a = register("a", 0);
    const b = register("b", 0);
    assert.deepEqual(a.socket.take(), [{ type: "OPEN" }]);
    b.socket.take();
    realm.receive(a.client, { type: "OFFER", dst: "b", payload: { sdp: 1 } }, 1);
    assert.deepEqual(b.socket.take(), [{ type: "OFFER", src: "a", dst: "b", payload: { sdp: 1 } }]);
    assert.deepEqual([...a.client.contacts], ["b"]);
    assert.deepEqual([...b.client.contacts], ["a"]);
  });

  test("queues expire together after expireTimeoutMs, with one EXPIRE per sender", () => {
    const { realm, register } = setup({ expireTimeoutMs: 5000 });
    const a = register("a", 0);
    const c = register("c", 0);
    realm.receive(a.client, { type: "OFFER", dst: "x", payload: 1 }, 1000);
    realm.receive(c.client, { type: "OFFER", dst: "x", payload: 2 }, 3000);
    realm.receive(a.client, { type: "CANDIDATE", dst: "x", payload: 3 }, 4000);
    a.socket.take();
    c.socket.take();
    realm.sweep(5999);
    assert.deepEqual(a.socket.take(), []);
    realm.sweep(6000);
    assert.deepEqual(a.socket.take(), [{ type: "EXPIRE", src: "x", dst: "a" }]);
    assert.deepEqual(c.socket.take(), [{ type: "EXPIRE", src: "x", dst: "c" }]);
    assert.equal(realm.queuedBytes, 0);
    realm.sweep(20_000);
    assert.deepEqual(a.socket.take(), []);
  });

  test("the pod-wide byte bound refuses a message with an immediate EXPIRE", () => {
    const { realm, register, counted } = setup({ maxQueuedBytes: 1024 });
    const a = register("a", 0);
    a.socket.take();
    realm.receive(a.client, { type: "OFFER", dst: "x", payload: "y".repeat(900) }, 1);
    realm.receive(a.client, { type: "OFFER", dst: "z", payload: "y".repeat(900) }, 1);
    assert.deepEqual(a.socket.take(), [{ type: "EXPIRE", src: "z", dst: "a" }]);
    assert.deepEqual(counted, ["PEERJS_QUEUE_FULL"]);
  });

  test("a dropped peer's LEAVE waits leaveGraceMs; its queued messages to others are dropped with it", () => {
    const { realm, register, sessions } = setup({ leaveGraceMs: 3000, expireTimeoutMs: 60_000 });
    const a = register("a", 0);
    const b = register("b", 0);
    realm.receive(b.client, { type: "OFFER", dst: "a", payload: 1 }, 10);
    realm.receive(b.client, { type: "OFFER", dst: "later", payload: 2 }, 10);
    a.socket.take();
    realm.socketClosed(b.client, b.socket, 1006, 100);
    assert.equal(realm.isDeparting("b"), true);
    assert.equal(b.client.session.socket, null);
    realm.sweep(3099);
    assert.deepEqual(a.socket.take(), []);
    realm.sweep(3100);
    assert.deepEqual(a.socket.take(), [{ type: "LEAVE", src: "b", dst: "a" }]);
    assert.equal(a.client.contacts.has("b"), false);
    assert.equal(sessions.size, 1);
    assert.equal(realm.queuedBytes, 0, "b's offer to 'later' went with it");
  });

  test("a peer back within the grace with its token resumes its session; with a proven token too", () => {
    const { realm, register } = setup({ leaveGraceMs: 3000 });
    const a = register("a", 0);
    const b1 = register("b", 0, "secret");
    realm.receive(a.client, { type: "OFFER", dst: "b", payload: 1 }, 1);
    realm.socketClosed(b1.client, b1.socket, 1005, 10);
    const b2 = register("b", 20, "secret");
    assert.equal(b2.result.outcome, "resumed");
    assert.equal(b2.client.session, b1.client.session);
    assert.deepEqual([...b2.client.contacts], ["a"]);
    realm.socketClosed(b2.client, b2.socket, 1006, 30);
    const b3 = register("b", 40, "another-jwt", true);
    assert.equal(b3.result.outcome, "resumed");
    a.socket.take();
    realm.sweep(10_000);
    assert.deepEqual(a.socket.take(), [], "b never left for good: no LEAVE");
  });

  test("1001 (page gone) and leaveGraceMs 0 announce at once; announceLeave off never does", () => {
    for (const [overrides, code, expected] of [
      [{}, 1001, 1],
      [{ leaveGraceMs: 0 }, 1006, 1],
      [{ announceLeave: false }, 1001, 0],
    ] as const) {
      const { realm, register } = setup(overrides);
      const a = register("a", 0);
      const b = register("b", 0);
      realm.receive(a.client, { type: "OFFER", dst: "b", payload: 1 }, 1);
      a.socket.take();
      realm.socketClosed(b.client, b.socket, code, 2);
      assert.equal(a.socket.take().length, expected, JSON.stringify(overrides));
      assert.equal(realm.isDeparting("b"), false);
    }
  });

  test("takeover: the new socket gets OPEN, the old one is closed with 4004 and its late close is ignored", () => {
    const { realm, register } = setup();
    const a1 = register("a", 0, "tok");
    const a2 = register("a", 5, "tok");
    assert.equal(a2.result.outcome, "taken-over");
    assert.deepEqual(a1.socket.closed, { code: 4004, reason: "SIG_ERR_SESSION_REPLACED" });
    assert.deepEqual(a2.socket.take(), [{ type: "OPEN" }]);
    realm.socketClosed(a2.client, a1.socket, 4004, 6);
    assert.equal(realm.get("a")?.socket, a2.socket);
    const a3 = register("a", 7, "other");
    assert.equal(a3.result.outcome, "id-taken");
    assert.deepEqual(a3.socket.take(), [{ type: "ID-TAKEN", payload: { msg: "ID is taken" } }]);
  });

  test("liveness: silent sockets close with 4011 at aliveTimeoutMs; any frame counts as life", () => {
    const { realm, register } = setup({ aliveTimeoutMs: 1000 });
    const a = register("a", 0);
    const b = register("b", 0);
    realm.receive(a.client, { type: "HEARTBEAT" }, 500);
    realm.sweep(1000);
    assert.deepEqual(b.socket.closed, { code: 4011, reason: "SIG_ERR_HEARTBEAT_TIMEOUT" });
    assert.equal(a.socket.closed, null);
    assert.equal(realm.isDeparting("b"), true);
    realm.sweep(1500);
    assert.deepEqual(a.socket.closed, { code: 4011, reason: "SIG_ERR_HEARTBEAT_TIMEOUT" });
  });

  test("contacts are bounded; the oldest is forgotten", () => {
    const { realm, register } = setup({ maxQueuedPerPeer: 1, maxQueuedBytes: 1 << 30 });
    const a = register("a", 0);
    for (let i = 0; i <= MAX_PEERJS_CONTACTS; i++) realm.receive(a.client, { type: "OFFER", dst: `p${i}`, payload: null }, 1);
    assert.equal(a.client.contacts.size, MAX_PEERJS_CONTACTS);
    assert.equal(a.client.contacts.has("p0"), false);
  });

  test("newId never returns a connected id", () => {
    const { realm, register } = setup();
    register("a", 0);
    const id = realm.newId();
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.notEqual(id, "a");
  });
});
