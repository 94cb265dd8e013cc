/**
 * The SDK against real pods on port 0 (Node's global WebSocket, as in a browser): sessions,
 * typed room events, request errors and timeouts, exact resume under a steady stream of events,
 * requests made while disconnected, a lost session after a pod restart (rejoin with a snapshot),
 * drain hints, fatal closes, reconnect backoff and the goodbye.
 *
 * No timing assertions: every wait is for an event, with a timeout.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { describe, test, type TestContext } from "node:test";
import { WebSocketServer, type WebSocket as WsSocket } from "ws";
import type { ServerMessageOf } from "@switchboard/protocol";
import { createSignalingServer, type ConfigInput, type SignalingServer } from "@switchboard/server";
import { JWT_AUTH, jwt } from "@switchboard/server/testing";
import { SwitchboardClient, type ClientEvents, type ClientOptions, type WebSocketFactory } from "./client.ts";
import { SwitchboardError } from "./errors.ts";

/** No test may hang: each fails after this long. */
const BOUNDED = { timeout: 30_000 };

const ADMIN_TOKEN = "client-test-admin-token-0123456789";

/** Servers and clients of one test; clients close first, then servers, when the test ends. */
function fixture(t: TestContext) {
  const servers: SignalingServer[] = [];
  const clients: SwitchboardClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(servers.map((s) => s.close()));
  });
  return {
    /** A pod on 127.0.0.1 (port 0 unless given) with insecure-dev auth, silent. */
    async server(config: Partial<ConfigInput> = {}): Promise<SignalingServer> {
      const s = createSignalingServer({
        config: { port: 0, logLevel: "silent", auth: { mode: "insecure-dev" }, ...config } as ConfigInput,
        defaultMetrics: false,
      });
      servers.push(s);
      await s.listen();
      return s;
    },
    /** An SDK client with fast reconnects (not connected yet). */
    client(url: string | string[], token: ClientOptions["token"], options: Partial<ClientOptions> = {}): SwitchboardClient {
      const c = new SwitchboardClient({ url, token, reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 100, ackIntervalMs: 20, ...options });
      clients.push(c);
      return c;
    },
  };
}

/** The next `type` event of `client` for which `match` holds; rejects after `timeoutMs`. */
function nextEvent<K extends keyof ClientEvents>(
  client: SwitchboardClient,
  type: K,
  match: (e: ClientEvents[K]) => boolean = () => true,
  timeoutMs = 5000,
): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${String(type)}`));
    }, timeoutMs);
    const off = client.on(type, (e) => {
      if (!match(e)) return;
      off();
      clearTimeout(timer);
      resolve(e);
    });
  });
}

/** Polls `check` until true; rejects after `timeoutMs`. */
async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** `p`, or a rejection after `timeoutMs`. */
async function within<T>(p: Promise<T>, what: string, timeoutMs = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves the error a promise rejects with (fails when it resolves). */
async function rejection(p: Promise<unknown>): Promise<SwitchboardError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SwitchboardError, `not a SwitchboardError: ${String(err)}`);
    return err;
  }
  assert.fail("expected a rejection");
}

async function admin(server: SignalingServer, path: string, body: object = {}): Promise<number> {
  const res = await fetch(`${server.httpUrl}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A WebSocket server that accepts sockets and never says anything (unless told to welcome). */
async function silentServer(t: TestContext, options: { welcome: boolean }): Promise<{ url: string; received: string[] }> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await once(wss, "listening");
  const sockets = new Set<WsSocket>();
  const received: string[] = [];
  wss.on("connection", (ws) => {
    sockets.add(ws);
    ws.on("message", (data) => {
      const text = String(data);
      received.push(text);
      const m = JSON.parse(text) as { type: string; id?: string };
      if (options.welcome && m.type === "hello") ws.send(JSON.stringify(fakeWelcome()));
    });
  });
  t.after(async () => {
    for (const ws of sockets) ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  const { port } = wss.address() as { port: number };
  return { url: `ws://127.0.0.1:${port}/v1/ws`, received };
}

/**
 * A WebSocket implementation with an on/off switch: while `online` is false every connection
 * goes to `deadUrl` (nothing listens) and fails, like a lost network.
 */
function offlineSwitch(deadUrl: string): { online: boolean; WebSocket: WebSocketFactory } {
  const Native = (globalThis as unknown as { WebSocket: new (url: string, protocols?: string | string[]) => object }).WebSocket;
  const state = { online: true, WebSocket: undefined as unknown as WebSocketFactory };
  state.WebSocket = class extends Native {
    constructor(url: string, protocols?: string | string[]) {
      super(state.online ? url : deadUrl, protocols);
    }
  } as unknown as WebSocketFactory;
  return state;
}

function fakeWelcome(): ServerMessageOf<"welcome"> {
  return {
    type: "welcome",
    v: 1,
    sessionId: "s_silent",
    resumeToken: "silent-token",
    peerId: "p_silent",
    userId: "alice",
    expiresAt: null,
    heartbeatIntervalMs: 60_000,
    resumeWindowMs: 30_000,
    limits: { maxMessageBytes: 65536, ratePerSecond: 50, rateBurst: 100, maxPeersPerRoom: 50, maxRoomsPerSession: 10, maxOutboundBytes: 1 << 20 },
    iceServers: [],
    trickleIce: true,
    pod: "silent",
  };
}

describe("SwitchboardClient", () => {
  test("connect opens a session: the welcome resolves and the session event fires", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server({ podName: "pod-a" });
    const client = f.client(server.wsUrl, () => "alice");
    const sessionEvent = nextEvent(client, "session");
    assert.equal(client.state, "idle");
    const welcome = await client.connect();
    assert.equal(welcome.userId, "alice");
    assert.equal(welcome.pod, "pod-a");
    assert.equal((await sessionEvent).sessionId, welcome.sessionId);
    assert.equal(client.state, "open");
    assert.equal(client.session?.peerId, welcome.peerId);
    assert.equal(await client.connect(), welcome, "connect on an open client resolves the same welcome");
    assert.equal(server.hub.sessions.get(welcome.sessionId)?.userId, "alice");
  });

  test("without a global WebSocket and without options.WebSocket the constructor throws SIG_CLIENT_NO_WEBSOCKET", (t) => {
    const g = globalThis as { WebSocket?: unknown };
    const native = g.WebSocket;
    delete g.WebSocket;
    t.after(() => {
      g.WebSocket = native;
    });
    assert.throws(
      () => new SwitchboardClient({ url: "ws://127.0.0.1:1/v1/ws", token: "alice" }),
      (err: unknown) => err instanceof SwitchboardError && err.code === "SIG_CLIENT_NO_WEBSOCKET" && !err.retryable && /options\.WebSocket/.test(err.message),
    );
    // Handed an implementation, it needs no global one.
    assert.equal(new SwitchboardClient({ url: "ws://127.0.0.1:1/v1/ws", token: "alice", WebSocket: native as WebSocketFactory }).state, "idle");
  });

  test("join, update and leave; peers see typed peer-joined, peer-updated and peer-left", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server();
    const alice = f.client(server.wsUrl, "alice");
    const bob = f.client(server.wsUrl, "bob");
    await alice.connect();
    const bobWelcome = await bob.connect();

    const aliceJoined = await alice.join("r", { name: "Alice" });
    assert.deepEqual([aliceJoined.room, aliceJoined.self.peerId, aliceJoined.peers], ["r", alice.session?.peerId, []]);
    const joinedEvent = nextEvent(alice, "peer-joined");
    const bobJoined = await bob.join("r", { name: "Bob" });
    assert.deepEqual(bobJoined.peers.map((p) => [p.peerId, p.userId, p.meta]), [[alice.session?.peerId, "alice", { name: "Alice" }]]);
    const joined: ServerMessageOf<"peer-joined"> = await joinedEvent;
    assert.deepEqual([joined.room, joined.peer.peerId, joined.peer.userId, joined.peer.meta, joined.peer.connected], ["r", bobWelcome.peerId, "bob", { name: "Bob" }, true]);

    const updated = nextEvent(alice, "peer-updated");
    await bob.update("r", { name: "Bobby" });
    assert.deepEqual((await updated).peer.meta, { name: "Bobby" });

    const left = nextEvent(alice, "peer-left");
    await bob.leave("r");
    const l: ServerMessageOf<"peer-left"> = await left;
    assert.deepEqual([l.room, l.peerId, l.reason], ["r", bobWelcome.peerId, "left"]);
    // Events are in seq order with no gaps.
    assert.ok(alice.lastSeq >= 4);
  });

  test("request errors reject with SwitchboardError carrying the server code and field", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server();
    const client = f.client(server.wsUrl, "alice");
    await client.connect();
    await client.join("r");
    const twice = await rejection(client.join("r"));
    assert.equal(twice.code, "SIG_ERR_ALREADY_IN_ROOM");
    assert.equal(twice.retryable, false);
    assert.equal(twice.name, "SwitchboardError");
    const notIn = await rejection(client.leave("elsewhere"));
    assert.equal(notIn.code, "SIG_ERR_NOT_IN_ROOM");
    const bad = await rejection(client.join("not a room id!"));
    assert.equal(bad.code, "SIG_ERR_BAD_MESSAGE");
    assert.equal(bad.field, "room");
    // The session is unharmed.
    assert.equal(client.state, "open");
    await client.join("r2");
  });

  test("a request with no reply rejects with SIG_CLIENT_TIMEOUT", BOUNDED, async (t) => {
    const f = fixture(t);
    // A "pod" that completes the handshake and then never answers.
    const mute = await silentServer(t, { welcome: true });
    const client = f.client(mute.url, "alice", { requestTimeoutMs: 50 });
    await client.connect();
    const err = await rejection(client.join("r"));
    assert.equal(err.code, "SIG_CLIENT_TIMEOUT");
    assert.equal(err.retryable, true);
    assert.ok(mute.received.some((text) => (JSON.parse(text) as { type: string }).type === "join"), "the join was sent");

    // One that never even answers the hello: the request times out unsent.
    const silent = await silentServer(t, { welcome: false });
    const quiet = f.client(silent.url, "alice", { requestTimeoutMs: 50 });
    const connecting = quiet.connect().catch((e: unknown) => e);
    assert.equal((await rejection(quiet.request({ type: "ping" }))).code, "SIG_CLIENT_TIMEOUT");
    await quiet.close();
    assert.equal(((await connecting) as SwitchboardError).code, "SIG_CLIENT_CLOSED");
  });

  test("resume: a stream of 300 messages survives repeated drops, each counter seen once and in order", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server({ adminToken: ADMIN_TOKEN, limits: { ratePerSecond: 100_000, rateBurst: 100_000 } });
    // Bob's network: while offline his reconnect attempts go nowhere, so events pile up for replay.
    const net = offlineSwitch(`ws://127.0.0.1:${await closedPort()}/v1/ws`);
    const alice = f.client(server.wsUrl, "alice");
    const bob = f.client(server.wsUrl, "bob", { WebSocket: net.WebSocket });
    await alice.connect();
    const bobWelcome = await bob.connect();
    await alice.join("r");
    await bob.join("r");
    const seen: number[] = [];
    const replays: number[] = [];
    let lost = 0;
    bob.on("message", (m) => seen.push((m.data as { n: number }).n));
    bob.on("resumed", (r) => replays.push(r.replayCount));
    bob.on("session-lost", () => lost++);

    const disconnect = async () => assert.equal(await admin(server, `/admin/peers/${bobWelcome.peerId}/disconnect`), 200);
    const drops = new Map<number, () => Promise<void>>([
      [40, disconnect],
      [110, async () => bob.simulateDrop()],
      [180, disconnect],
      [250, async () => bob.simulateDrop()],
    ]);
    const OFFLINE_FOR = 20;
    for (let n = 0; n < 300; n++) {
      const drop = drops.get(n);
      if (drop) {
        await until(() => bob.state === "open" && server.hub.sessions.get(bobWelcome.sessionId)?.socket !== null, "bob back online");
        net.online = false;
        await drop();
        await until(() => server.hub.sessions.get(bobWelcome.sessionId)?.socket === null, "the pod to notice bob's drop");
      }
      if (drops.has(n - OFFLINE_FOR)) net.online = true;
      await alice.message("r", bobWelcome.peerId, { n });
    }
    await until(() => seen.length >= 300, "all 300 messages at bob");
    assert.deepEqual(seen, Array.from({ length: 300 }, (_, i) => i));
    await until(() => replays.length === drops.size, `${drops.size} resumes (saw ${replays.length})`);
    for (const count of replays) assert.ok(count >= OFFLINE_FOR, `replayed only ${count}`);
    assert.equal(lost, 0);
    assert.equal(bob.session?.sessionId, bobWelcome.sessionId);
    // The client acknowledges what it processed, so the pod can drop its replay buffer.
    const session = server.hub.sessions.get(bobWelcome.sessionId);
    await until(() => session?.ackedSeq === bob.lastSeq, "the pod to get bob's ack");
    assert.equal(session?.replayLength, 0);
  });

  test("event types this SDK does not know are skipped without breaking the stream", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server();
    const net = offlineSwitch(`ws://127.0.0.1:${await closedPort()}/v1/ws`);
    const alice = f.client(server.wsUrl, "alice");
    const bob = f.client(server.wsUrl, "bob", { WebSocket: net.WebSocket, requestTimeoutMs: 2000 });
    await alice.connect();
    const bobWelcome = await bob.connect();
    await alice.join("r");
    await bob.join("r");
    const session = server.hub.sessions.get(bobWelcome.sessionId);
    const future = JSON.stringify({ type: "x-future-event", detail: 1 });
    let drops = 0;
    let resumes = 0;
    bob.on("disconnected", () => drops++);
    bob.on("resumed", () => resumes++);

    // Live: a newer pod's event, then one this SDK knows.
    const got = nextEvent(bob, "message");
    session?.pushJson(future);
    await alice.message("r", bobWelcome.peerId, { n: 1 });
    assert.deepEqual((await got).data, { n: 1 });
    assert.equal(drops, 0);
    assert.equal(bob.lastSeq, session?.lastSeq);
    await bob.join("r2");

    // In a replay: the resume completes and requests flow again.
    net.online = false;
    bob.simulateDrop();
    await until(() => session?.socket === null, "the pod to notice bob's drop");
    session?.pushJson(future);
    await alice.message("r", bobWelcome.peerId, { n: 2 });
    const resumed = nextEvent(bob, "resumed");
    const second = nextEvent(bob, "message");
    net.online = true;
    assert.equal((await resumed).replayCount, 2);
    assert.deepEqual((await second).data, { n: 2 });
    await bob.join("r3");
    assert.equal(resumes, 1, "one resume, no resume loop");
  });

  test("requests made while disconnected are sent after the resume, exactly once", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server({ adminToken: ADMIN_TOKEN });
    const alice = f.client(server.wsUrl, "alice");
    const bob = f.client(server.wsUrl, "bob", { reconnectInitialDelayMs: 100 });
    const aliceWelcome = await alice.connect();
    const bobWelcome = await bob.connect();
    await alice.join("r");
    await bob.join("r");
    const atAlice: number[] = [];
    alice.on("message", (m) => atAlice.push((m.data as { n: number }).n));

    const disconnected = nextEvent(bob, "disconnected");
    assert.equal(await admin(server, `/admin/peers/${bobWelcome.peerId}/disconnect`), 200);
    assert.equal((await disconnected).willReconnect, true);
    assert.notEqual(bob.state, "open");
    const resumed = nextEvent(bob, "resumed");
    const sent = [1, 2, 3].map((n) => bob.message("r", aliceWelcome.peerId, { n }));
    const joined = bob.join("r2");
    // connect() while reconnecting resolves once the session is back.
    const back = bob.connect();
    await Promise.all(sent);
    assert.equal((await joined).room, "r2");
    assert.equal((await resumed).sessionId, bobWelcome.sessionId);
    assert.equal((await within(back, "connect() to resolve")).sessionId, bobWelcome.sessionId);
    // A marker sent after them arrives after them, and nothing arrives twice.
    await bob.message("r", aliceWelcome.peerId, { n: 4 });
    await until(() => atAlice.includes(4), "the marker at alice");
    assert.deepEqual(atAlice, [1, 2, 3, 4]);
    assert.deepEqual([...(server.hub.sessions.get(bobWelcome.sessionId)?.rooms ?? [])].sort(), ["r", "r2"]);
  });

  test("after a pod restart: resume-failed → session-lost, a fresh session, rooms rejoined with a snapshot", BOUNDED, async (t) => {
    const f = fixture(t);
    const first = await f.server();
    const port = Number(new URL(first.wsUrl).port);
    const bob = f.client(first.wsUrl, "bob");
    const oldWelcome = await bob.connect();
    await bob.join("r", { name: "Bob" });

    const lost = nextEvent(bob, "session-lost");
    const fresh = nextEvent(bob, "session", (w) => w.sessionId !== oldWelcome.sessionId);
    const rejoined = nextEvent(bob, "rejoined");
    await first.close();
    const second = await f.server({ port });
    assert.equal((await lost).reason, "unknown-session");
    const welcome = await fresh;
    assert.notEqual(welcome.peerId, oldWelcome.peerId);
    const snapshot = await rejoined;
    assert.deepEqual([snapshot.room, snapshot.self.peerId, snapshot.self.meta], ["r", welcome.peerId, { name: "Bob" }]);
    assert.ok(Array.isArray(snapshot.peers));
    assert.equal(bob.state, "open");

    // The new pod knows bob in the room: a newcomer's snapshot lists him.
    const carol = f.client(second.wsUrl, "carol");
    await carol.connect();
    const carolJoined = await carol.join("r");
    assert.deepEqual(carolJoined.peers.map((p) => p.peerId), [welcome.peerId]);
  });

  test("a reconnect hint from a draining pod makes the client reconnect by itself", BOUNDED, async (t) => {
    const f = fixture(t);
    const draining = await f.server({ podName: "pod-a", drain: { timeoutMs: 5000, spreadMs: 0, batchSize: 500 } });
    const next = await f.server({ podName: "pod-b" });
    const client = f.client([draining.wsUrl, next.wsUrl], "alice");
    const welcome = await client.connect();
    assert.equal(welcome.pod, "pod-a");
    await client.join("r");

    const hint = nextEvent(client, "reconnect");
    const disconnected = nextEvent(client, "disconnected");
    const moved = nextEvent(client, "session", (w) => w.pod === "pod-b");
    const rejoined = nextEvent(client, "rejoined");
    await draining.drain();
    assert.equal((await hint).reason, "draining");
    const d = await disconnected;
    assert.equal(d.willReconnect, true);
    assert.equal(d.code, 4000, "the client closed the socket itself, before the drain deadline");
    assert.equal((await moved).pod, "pod-b");
    assert.equal((await rejoined).room, "r");
  });

  test("a fatal close (kick → 4012) stops reconnecting", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server({ adminToken: ADMIN_TOKEN });
    const client = f.client(server.wsUrl, "alice");
    const welcome = await client.connect();
    const disconnected = nextEvent(client, "disconnected");
    const closed = nextEvent(client, "state", (s) => s === "closed");
    assert.equal(await admin(server, `/admin/peers/${welcome.peerId}/kick`), 200);
    const d = await disconnected;
    assert.deepEqual([d.code, d.willReconnect], [4012, false]);
    await closed;
    assert.equal(client.state, "closed");
    assert.equal((await rejection(client.join("r"))).code, "SIG_CLIENT_CLOSED");
    // Several reconnect delays later, still no socket to the pod.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(server.gateway.connectionCount, 0);
    assert.equal(client.state, "closed");
  });

  test("reconnect delays grow with capped exponential backoff and jitter", BOUNDED, async (t) => {
    const f = fixture(t);
    const url = `ws://127.0.0.1:${await closedPort()}/v1/ws`;
    const attempts: number[] = [];
    const Native = (globalThis as unknown as { WebSocket: WebSocketFactory }).WebSocket;
    const Recording = class extends (Native as unknown as new (url: string, protocols?: string | string[]) => object) {
      constructor(u: string, protocols?: string | string[]) {
        attempts.push(performance.now());
        super(u, protocols);
      }
    } as unknown as WebSocketFactory;
    const initial = 5;
    const cap = 60;
    const client = f.client(url, "alice", { WebSocket: Recording, reconnectInitialDelayMs: initial, reconnectMaxDelayMs: cap });
    const connecting = client.connect().catch((e: unknown) => e);
    await until(() => attempts.length >= 13, "13 connection attempts");
    await client.close();
    assert.equal(((await connecting) as SwitchboardError).code, "SIG_CLIENT_CLOSED");
    assert.equal(client.state, "closed");

    const delays = attempts.slice(1, 13).map((at, i) => at - (attempts[i] as number));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = delays.slice(0, 4);
    const late = delays.slice(-6);
    assert.ok(mean(late) >= mean(early), `delays should grow: ${delays.map((d) => d.toFixed(1)).join(", ")}`);
    // Never beyond the cap (plus slack for the refused connect and timer lateness).
    for (const d of delays) assert.ok(d <= cap + 500, `delay ${d.toFixed(1)} ms over the cap`);
    // Jitter: the capped delays are not all the same.
    assert.ok(new Set(late.map((d) => d.toFixed(2))).size > 1, "no jitter");
  });

  test("close() says bye: peers see peer-left closed and the client is closed", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server();
    const alice = f.client(server.wsUrl, "alice");
    const bob = f.client(server.wsUrl, "bob");
    const aliceWelcome = await alice.connect();
    await bob.connect();
    await alice.join("r");
    await bob.join("r");
    const left = nextEvent(bob, "peer-left");
    await alice.close();
    assert.equal(alice.state, "closed");
    const l = await left;
    assert.deepEqual([l.peerId, l.reason], [aliceWelcome.peerId, "closed"]);
    const metrics = (await server.metrics.render()).body;
    assert.match(metrics, /switchboard_messages_in_total\{[^}]*type="bye"[^}]*\} 1\b/);
    assert.equal(server.hub.sessions.get(aliceWelcome.sessionId), undefined);
    await alice.close(); // idempotent
    assert.equal((await rejection(alice.request({ type: "ping" }))).code, "SIG_CLIENT_CLOSED");
  });

  test("heartbeat: an idle client sees the pod's text pings, answers pong and stays on its session; the pod never closes it", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server({ heartbeatIntervalMs: 100 });
    let pings = 0;
    // Node's WebSocket, like a browser's, cannot see WebSocket-level pings: these are text frames.
    const Counting = class extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener("message", (e) => {
          if (e.data === '{"type":"ping"}') pings += 1;
        });
      }
    };
    const client = f.client(server.wsUrl, "alice", { WebSocket: Counting as unknown as WebSocketFactory });
    let sessions = 0;
    client.on("session", () => void (sessions += 1));
    const welcome = await client.connect();
    // 15 periods of silence: without answers the pod would close the socket after 2.
    await until(() => pings >= 15, "15 heartbeat pings");
    assert.equal(client.state, "open");
    assert.equal(sessions, 1, "the same session throughout");
    assert.ok(server.hub.sessions.get(welcome.sessionId)?.socket, "still attached on the pod");
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /^switchboard_errors_total\{[^}]*code="SIG_ERR_HEARTBEAT_TIMEOUT"[^}]*\} 0$/m, "no heartbeat timeout counted");
  });

  test("acknowledgements: at once after 64 events, and on the heartbeat pong, without the ack timer", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server({ heartbeatIntervalMs: 60_000 });
    // The ack timer never fires in this test.
    const alice = f.client(server.wsUrl, "alice", { ackIntervalMs: 600_000 });
    const bob = f.client(server.wsUrl, "bob", { ackIntervalMs: 600_000 });
    const aliceWelcome = await alice.connect();
    await bob.connect();
    await alice.join("r");
    await bob.join("r");
    const to = alice.session?.peerId as string;
    const session = () => server.hub.sessions.get(aliceWelcome.sessionId);
    for (let i = 0; i < 10; i++) await bob.message("r", to, i);
    await until(() => alice.lastSeq >= (session()?.lastSeq ?? Infinity), "alice has the 10 messages");
    const ackedBefore = session()?.ackedSeq ?? -1;
    assert.ok(ackedBefore < alice.lastSeq, "fewer than 64 events: not acknowledged yet");
    for (let i = 10; i < 80; i++) await bob.message("r", to, i);
    await until(() => (session()?.ackedSeq ?? 0) >= ackedBefore + 64, "an ack after 64 unacknowledged events");
    // The rest rides on the answer to the next heartbeat ping (the pod pings a silent socket).
    await until(() => alice.lastSeq >= (session()?.lastSeq ?? Infinity), "alice has all 80");
    assert.ok((session()?.ackedSeq ?? 0) < alice.lastSeq, "the last events are not acknowledged yet");
    // Alice spoke in this period (her ack): the first check only notes it; the next one pings.
    const now = Date.now();
    server.gateway.tick(now + 60_000);
    server.gateway.tick(now + 120_000);
    await until(() => session()?.ackedSeq === alice.lastSeq, "the pong carried the acknowledgement");
  });

  test("token-expiring makes the client refresh with a fresh token", BOUNDED, async (t) => {
    const f = fixture(t);
    const server = await f.server({ auth: JWT_AUTH, tokenExpiryWarningMs: 2 * 3600_000 });
    let tokens = 0;
    const client = f.client(server.wsUrl, async () => {
      tokens += 1;
      return jwt("alice");
    });
    await client.connect();
    assert.equal(tokens, 1);
    const warned = nextEvent(client, "token-expiring");
    const refreshed = nextEvent(client, "refreshed");
    server.gateway.tick(Date.now());
    await warned;
    assert.ok(Array.isArray((await refreshed).iceServers));
    assert.equal(tokens, 2);
    assert.equal(client.state, "open");
  });
});
