/**
 * The real peerjs client (npm `peerjs`, its browser bundle) in Debian's Chromium, against the
 * Switchboard pod's PeerJS face and against the reference PeerJS server (npm `peer`): the same
 * scenario must give the same observable results on both (a differential test), and the
 * documented differences (docs/peerjs.md) must show.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "./chromium.ts";
import { startPageServer, startReferenceTarget, startSwitchboardTarget, type PeerJsTarget } from "./peer-servers.ts";

/** What a page records about its peerjs client. */
interface PeerState {
  id: string | null;
  open: boolean;
  disconnected: number;
  serverMessages: Array<{ type: string; src: string | null; marker: string | null }>;
  errors: string[];
  received: string[];
  dataOpen: number;
  dataClosed: number;
  remoteVideoTracks: number;
  callsClosed: number;
}

/** The harness a page exposes as `window.h`. */
interface Harness {
  readonly state: PeerState;
  /** Creates the Peer (`id` null: the server picks one through `GET {path}/{key}/id`). */
  begin(id: string | null, options: object): void;
  /** Resolves when the Peer is open. */
  opened(): Promise<string>;
  connect(remote: string): Promise<void>;
  sendAll(text: string): number;
  call(remote: string): Promise<void>;
  /** Peer.reconnect(): the same id and token on a new socket. */
  reconnect(): void;
  /** Sends CANDIDATE frames to itself through the server until one comes back (a barrier). */
  echoThroughServer(): Promise<void>;
  selectedPairs(): Promise<Array<{ local: string; remote: string }>>;
}

// Minimal shapes of the peerjs client API the harness uses (the page loads the UMD bundle).
interface PjEmitter {
  on(event: string, listener: (...args: never[]) => void): unknown;
}
interface PjDataConnection extends PjEmitter {
  readonly open: boolean;
  readonly peerConnection: RTCPeerConnection | null;
  send(data: unknown): void;
}
interface PjMediaConnection extends PjEmitter {
  answer(stream: MediaStream): void;
}
interface PjPeer extends PjEmitter {
  /** The id the Peer registers (set before the server answers). */
  readonly id: string;
  readonly socket: PjEmitter & { send(message: object): void };
  connect(id: string, options?: object): PjDataConnection;
  call(id: string, stream: MediaStream): PjMediaConnection;
  reconnect(): void;
}
interface PageGlobals {
  peerjs: { Peer: new (id: string | undefined, options: object) => PjPeer };
  h: Harness;
}

/** Runs in the page: wires a peerjs Peer to a recorded state. */
function installHarness(): void {
  const g = window as unknown as PageGlobals;
  const state: PeerState = { id: null, open: false, disconnected: 0, serverMessages: [], errors: [], received: [], dataOpen: 0, dataClosed: 0, remoteVideoTracks: 0, callsClosed: 0 };
  let peer: PjPeer | null = null;
  let opening: Promise<string> | null = null;
  const data: PjDataConnection[] = [];
  let camera: Promise<MediaStream> | null = null;
  const stream = (): Promise<MediaStream> => (camera ??= navigator.mediaDevices.getUserMedia({ video: true, audio: false }));
  const wireData = (conn: PjDataConnection): void => {
    data.push(conn);
    conn.on("open", () => void state.dataOpen++);
    conn.on("data", (d: unknown) => void state.received.push(String(d)));
    conn.on("close", () => void state.dataClosed++);
  };
  const wireCall = (call: PjMediaConnection): void => {
    call.on("stream", (s: MediaStream) => void (state.remoteVideoTracks = s.getVideoTracks().length));
    call.on("close", () => void state.callsClosed++);
  };
  const need = (): PjPeer => {
    if (!peer) throw new Error("no peer yet");
    return peer;
  };
  g.h = {
    state,
    begin(id, options) {
      const p = new g.peerjs.Peer(id ?? undefined, options);
      peer = p;
      p.socket.on("message", (m: { type: string; src?: string; payload?: { marker?: string } }) => {
        state.serverMessages.push({ type: m.type, src: m.src ?? null, marker: m.payload?.marker ?? null });
      });
      opening = new Promise<string>((resolve, reject) => {
        p.on("open", (openId: string) => {
          state.id = openId;
          state.open = true;
          resolve(openId);
        });
        p.on("error", (e: { type: string }) => {
          state.errors.push(e.type);
          reject(new Error(e.type));
        });
      });
      opening.catch(() => undefined);
      p.on("disconnected", () => {
        state.open = false;
        state.disconnected++;
      });
      p.on("connection", (conn: PjDataConnection) => wireData(conn));
      p.on("call", (call: PjMediaConnection) => {
        wireCall(call);
        void stream().then((s) => call.answer(s));
      });
    },
    opened() {
      if (!opening) throw new Error("begin first");
      return opening;
    },
    connect(remote) {
      const conn = need().connect(remote, { reliable: true });
      wireData(conn);
      return new Promise<void>((resolve) => conn.on("open", () => resolve()));
    },
    sendAll(text) {
      const open = data.filter((c) => c.open);
      for (const c of open) c.send(text);
      return open.length;
    },
    async call(remote) {
      wireCall(need().call(remote, await stream()));
    },
    reconnect() {
      need().reconnect();
    },
    async echoThroughServer() {
      const deadline = Date.now() + 10_000;
      for (let i = 0; Date.now() < deadline; i++) {
        const marker = `echo-${i}-${Math.random()}`;
        need().socket.send({ type: "CANDIDATE", dst: need().id, payload: { marker, connectionId: "echo" } });
        for (let w = 0; w < 10; w++) {
          if (state.serverMessages.some((m) => m.marker === marker)) return;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      throw new Error("no echo through the server");
    },
    async selectedPairs() {
      const out: Array<{ local: string; remote: string }> = [];
      for (const conn of data) {
        const stats = await conn.peerConnection?.getStats();
        stats?.forEach((s: { type: string; selectedCandidatePairId?: string }) => {
          if (s.type !== "transport" || !s.selectedCandidatePairId) return;
          const pair = stats.get(s.selectedCandidatePairId) as { localCandidateId?: string; remoteCandidateId?: string } | undefined;
          const local = stats.get(pair?.localCandidateId ?? "") as { address?: string } | undefined;
          const remote = stats.get(pair?.remoteCandidateId ?? "") as { address?: string } | undefined;
          out.push({ local: local?.address ?? "", remote: remote?.address ?? "" });
        });
      }
      return out;
    },
  };
}

/**
 * Runs before any page script: only loopback candidates reach `addIceCandidate` (the namespace has
 * nothing else, and this keeps it so whatever the server relays).
 */
function loopbackOnlyCandidates(): void {
  const original = RTCPeerConnection.prototype.addIceCandidate as (this: RTCPeerConnection, candidate?: RTCIceCandidateInit) => Promise<void>;
  RTCPeerConnection.prototype.addIceCandidate = function (this: RTCPeerConnection, candidate?: RTCIceCandidateInit | null) {
    const address = candidate?.candidate?.split(" ")[4];
    if (address !== undefined && address !== "127.0.0.1" && address !== "::1") return Promise.resolve();
    return original.call(this, candidate ?? undefined);
  } as typeof RTCPeerConnection.prototype.addIceCandidate;
}

let browser: Browser;
let pageUrl: string;
let closePages: () => Promise<void>;

before(async () => {
  browser = await launchChromium();
  const pages = await startPageServer();
  pageUrl = pages.url;
  closePages = pages.close;
});

after(async () => {
  await browser.close();
  await closePages();
});

/** A fresh page (own context) with the peerjs bundle and the harness. */
async function newPage(): Promise<Page> {
  const context = await browser.newContext();
  await context.addInitScript(loopbackOnlyCandidates);
  const page = await context.newPage();
  await page.goto(pageUrl);
  await page.waitForFunction(() => "peerjs" in window);
  await page.evaluate(installHarness);
  return page;
}

/**
 * Runs `fn(window.h, arg)` in the page. Playwright ships functions as source text, so `fn` must be
 * self-contained (its types are already stripped by Node); this wrapper only adds the harness.
 */
const h = <T>(page: Page, fn: (h: Harness, arg: never) => T | Promise<T>, arg?: unknown): Promise<T> =>
  page.evaluate(
    ([src, a]) => {
      const f = new Function("h", "arg", `return (${src})(h, arg);`) as (h: Harness, arg: unknown) => T | Promise<T>;
      return f((window as unknown as PageGlobals).h, a);
    },
    [fn.toString(), arg] as const,
  ) as Promise<T>;

const stateOf = (page: Page): Promise<PeerState> => h(page, (x) => x.state);

async function waitFor(page: Page, what: string, predicate: (s: PeerState) => boolean, timeoutMs = 15_000): Promise<PeerState> {
  const deadline = Date.now() + timeoutMs;
  let last: PeerState | null = null;
  while (Date.now() < deadline) {
    last = await stateOf(page);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; last state: ${JSON.stringify(last)}`);
}

function optionsFor(target: PeerJsTarget, extra: object = {}): object {
  return { host: target.host, port: target.port, path: target.path, key: target.key, secure: false, config: { iceServers: [] }, ...extra };
}

const unique = (prefix: string): string => `${prefix}${Math.random().toString(36).slice(2, 10)}`;

/** Two peers connect, exchange data both ways, make a media call; a third is refused the id. */
async function connectAndCall(target: PeerJsTarget): Promise<Record<string, unknown>> {
  const [a, b, intruder] = await Promise.all([newPage(), newPage(), newPage()]);
  const bob = unique("bob");
  await h(a, (x, o: object) => x.begin(null, o), optionsFor(target));
  await h(b, (x, [id, o]: [string, object]) => x.begin(id, o), [bob, optionsFor(target)]);
  const aliceId = await h(a, (x) => x.opened());
  assert.equal(await h(b, (x) => x.opened()), bob);

  await h(a, (x, id: string) => x.connect(id), bob);
  await waitFor(b, "bob's side of the data connection", (s) => s.dataOpen === 1);
  assert.equal(await h(a, (x) => x.sendAll("hello from alice")), 1);
  await waitFor(b, "alice's message", (s) => s.received.includes("hello from alice"));
  assert.equal(await h(b, (x) => x.sendAll("hello from bob")), 1);
  await waitFor(a, "bob's message", (s) => s.received.includes("hello from bob"));

  await h(a, (x, id: string) => x.call(id), bob);
  const aState = await waitFor(a, "bob's video", (s) => s.remoteVideoTracks === 1);
  const bState = await waitFor(b, "alice's video", (s) => s.remoteVideoTracks === 1);

  await h(intruder, (x, [id, o]: [string, object]) => x.begin(id, o), [bob, optionsFor(target)]);
  const refused = await waitFor(intruder, "the intruder's error", (s) => s.errors.length > 0);

  const pairs = await h(a, (x) => x.selectedPairs());
  assert.ok(pairs.length >= 1 && pairs.every((p) => p.local === "127.0.0.1" && p.remote === "127.0.0.1"), JSON.stringify(pairs));
  return {
    serverChoseAliceId: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(aliceId),
    aliceReceived: aState.received,
    bobReceived: bState.received,
    aliceVideo: aState.remoteVideoTracks,
    bobVideo: bState.remoteVideoTracks,
    aliceErrors: aState.errors,
    bobErrors: bState.errors,
    // Server messages by type, without the trickled candidates whose number varies from run to run.
    aliceServerTypes: [...new Set(aState.serverMessages.map((m) => m.type))].sort(),
    bobServerTypes: [...new Set(bState.serverMessages.map((m) => m.type))].sort(),
    intruderErrors: refused.errors,
    intruderServerTypes: refused.serverMessages.map((m) => m.type),
    onLoopback: true,
  };
}

describe("peerjs client: the same scenario against Switchboard and against PeerJS server", () => {
  const results = new Map<string, Record<string, unknown>>();
  const expected = {
    serverChoseAliceId: true,
    aliceReceived: ["hello from bob"],
    bobReceived: ["hello from alice"],
    aliceVideo: 1,
    bobVideo: 1,
    aliceErrors: [],
    bobErrors: [],
    aliceServerTypes: ["ANSWER", "CANDIDATE", "OPEN"],
    bobServerTypes: ["CANDIDATE", "OFFER", "OPEN"],
    intruderErrors: ["unavailable-id"],
    intruderServerTypes: ["ID-TAKEN"],
    onLoopback: true,
  };

  for (const start of [startSwitchboardTarget, startReferenceTarget]) {
    test(`data connection, media call and ID-TAKEN through ${start === startSwitchboardTarget ? "Switchboard" : "PeerJS server"}`, async (t) => {
      const target = await start();
      t.after(() => target.close());
      const observed = await connectAndCall(target);
      assert.deepEqual(observed, expected);
      results.set(target.name, observed);
    });
  }

  test("both servers gave the same observable results", () => {
    assert.equal(results.size, 2);
    assert.deepEqual(results.get("switchboard"), results.get("peerjs-server"));
  });
});

describe("peerjs client: what Switchboard adds, shown against PeerJS server", () => {
  /** B's page closes during a call; once the server has dropped B, A round-trips a frame. */
  async function pageCloses(target: PeerJsTarget): Promise<{ leaveFromBob: boolean; callsClosed: number; dataClosed: number }> {
    const [a, b] = await Promise.all([newPage(), newPage()]);
    const alice = unique("alice");
    const bob = unique("bob");
    await h(a, (x, [id, o]: [string, object]) => x.begin(id, o), [alice, optionsFor(target)]);
    await h(b, (x, [id, o]: [string, object]) => x.begin(id, o), [bob, optionsFor(target)]);
    await h(a, (x) => x.opened());
    await h(b, (x) => x.opened());
    await h(a, (x, id: string) => x.call(id), bob);
    await waitFor(a, "bob's video", (s) => s.remoteVideoTracks === 1);

    await b.close();
    const deadline = Date.now() + 15_000;
    while ((await target.peers()).includes(bob)) {
      if (Date.now() > deadline) throw new Error("the server never dropped bob");
      await new Promise((r) => setTimeout(r, 50));
    }
    // Anything the server sent A about B before it dropped B arrives before this echo.
    await h(a, (x) => x.echoThroughServer());
    const s = await stateOf(a);
    return { leaveFromBob: s.serverMessages.some((m) => m.type === "LEAVE" && m.src === bob), callsClosed: s.callsClosed, dataClosed: s.dataClosed };
  }

  test("a peer whose page closes: Switchboard sends LEAVE at once and the remote call closes; PeerJS server tells nobody", async (t) => {
    const switchboard = await startSwitchboardTarget();
    t.after(() => switchboard.close());
    const reference = await startReferenceTarget();
    t.after(() => reference.close());

    const withSwitchboard = await pageCloses(switchboard);
    assert.equal(withSwitchboard.leaveFromBob, true);
    assert.equal(withSwitchboard.callsClosed, 1, "peerjs closes the MediaConnection on LEAVE");

    const withReference = await pageCloses(reference);
    assert.equal(withReference.leaveFromBob, false);
    assert.equal(withReference.callsClosed, 0, "the remote MediaConnection stays open (peers/peerjs #636)");
  });

  /** A1 holds an id; A2 comes with the same id and token while A1's socket is still open. */
  async function sameTokenWhileOpen(target: PeerJsTarget): Promise<{ secondOpen: boolean; secondGotOpen: boolean; firstDisconnected: number; secondErrors: string[] }> {
    const [a1, a2] = await Promise.all([newPage(), newPage()]);
    const id = unique("carol");
    const options = optionsFor(target, { token: "carols-saved-token" });
    await h(a1, (x, [i, o]: [string, object]) => x.begin(i, o), [id, options]);
    await h(a1, (x) => x.opened());
    await h(a2, (x, [i, o]: [string, object]) => x.begin(i, o), [id, options]);
    // The id now routes to A2 on both servers; the echo proves A2's socket is registered.
    await h(a2, (x) => x.echoThroughServer());
    if (target.name === "switchboard") await waitFor(a1, "the old page to be disconnected", (s) => s.disconnected === 1);
    const second = await stateOf(a2);
    const first = await stateOf(a1);
    return { secondOpen: second.open, secondGotOpen: second.serverMessages.some((m) => m.type === "OPEN"), firstDisconnected: first.disconnected, secondErrors: second.errors };
  }

  test("the same id and token while the old socket is open: Switchboard takes over with OPEN; PeerJS server never opens the new Peer", async (t) => {
    const switchboard = await startSwitchboardTarget();
    t.after(() => switchboard.close());
    const reference = await startReferenceTarget();
    t.after(() => reference.close());

    assert.deepEqual(await sameTokenWhileOpen(switchboard), { secondOpen: true, secondGotOpen: true, firstDisconnected: 1, secondErrors: [] });
    assert.deepEqual(await sameTokenWhileOpen(reference), { secondOpen: false, secondGotOpen: false, firstDisconnected: 0, secondErrors: [] });
  });

  test("Switchboard: a peer that drops and reconnects with its token within the grace keeps its connections (no LEAVE)", async (t) => {
    const switchboard = await startSwitchboardTarget();
    t.after(() => switchboard.close());
    const [a, b] = await Promise.all([newPage(), newPage()]);
    const alice = unique("alice");
    const bob = unique("bob");
    await h(a, (x, [id, o]: [string, object]) => x.begin(id, o), [alice, optionsFor(switchboard)]);
    await h(b, (x, [id, o]: [string, object]) => x.begin(id, o), [bob, optionsFor(switchboard)]);
    await h(a, (x) => x.opened());
    await h(b, (x) => x.opened());
    await h(a, (x, id: string) => x.connect(id), bob);
    await waitFor(b, "the data connection", (s) => s.dataOpen === 1);

    // A signaling blip: the pod closes bob's socket (admin disconnect, 1012); bob's app reconnects
    // with the same id and token (Peer.reconnect()), well within peerjs.leaveGraceMs.
    const [session] = [...switchboard.pod.hub.sessions.devicesOf(bob)];
    assert.ok(session && switchboard.pod.hub.disconnect(session.peerId));
    await waitFor(b, "bob to notice", (s) => s.disconnected === 1);
    await h(b, (x) => x.reconnect());
    await waitFor(b, "bob to be open again", (s) => s.open && s.serverMessages.filter((m) => m.type === "OPEN").length === 2);
    assert.equal([...switchboard.pod.hub.sessions.devicesOf(bob)][0], session, "the same session resumed");

    await h(a, (x) => x.echoThroughServer());
    const aState = await stateOf(a);
    assert.equal(aState.serverMessages.filter((m) => m.type === "LEAVE").length, 0);
    assert.equal(aState.dataClosed, 0);
    assert.equal(await h(a, (x) => x.sendAll("after the blip")), 1);
    await waitFor(b, "data after the blip", (s) => s.received.includes("after the blip"));
  });
});