import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import type { ServerMessageOf } from "@switchboard/protocol";
import { serializeRingDocument } from "@switchboard/ring";
import { createSignalingServer, type SignalingServer } from "../app.ts";
import { createLogger } from "../logger.ts";
import { RawClient } from "../testing/raw-client.ts";
import type { ClusterBus } from "./bus.ts";
import type { ClusterHosts } from "./cluster-hosts.ts";
import { ClusterNode } from "./cluster-node.ts";
import type { Directory } from "./directory.ts";
import { MemoryBus } from "./memory-bus.ts";
import { MemoryDirectory } from "./memory-directory.ts";
import { NatsBus } from "./nats-bus.ts";
import { RedisDirectory } from "./redis-directory.ts";
import { RedisSessionStore } from "./redis-session-store.ts";
import { MemorySessionStore } from "./memory-session-store.ts";
import type { SessionStore } from "./session-store.ts";
import { MemoryRoomStore, type RoomStore } from "./room-store.ts";
import { RedisRoomStore } from "./redis-room-store.ts";
import { FileRingSource } from "./ring-source.ts";
import { RingView } from "./ring-view.ts";

const NATS_URL = process.env["SWITCHBOARD_TEST_NATS"] ?? "nats://127.0.0.1:4222";
const REDIS_URL = process.env["SWITCHBOARD_TEST_REDIS"] ?? "redis://127.0.0.1:6379";
const PODS = ["pod-a", "pod-b", "pod-c"];

interface Shared {
  bus(pod: string): Promise<ClusterBus>;
  directory(pod: string): Promise<Directory>;
  sessions(directory: Directory): SessionStore;
  rooms(directory: Directory): RoomStore;
  cleanup(): Promise<void>;
}

const adapters: Record<string, (cluster: string) => Shared> = {
  memory: () => {
    const bus = new MemoryBus({ retryDelayMs: 10 });
    const dir = new MemoryDirectory();
    const sessions = new MemorySessionStore();
    const rooms = new MemoryRoomStore();
    return { bus: async () => bus, directory: async () => dir, sessions: () => sessions, rooms: () => rooms, cleanup: () => bus.close() };
  },
  "nats+redis": (cluster) => {
    const buses: NatsBus[] = [];
    const dirs: RedisDirectory[] = [];
    return {
      bus: async (pod) => {
        const b = await NatsBus.connect({ servers: NATS_URL, stream: `SB_${cluster}`, subjects: [`sb.${cluster}.>`], maxAgeMs: 120_000, storage: "memory", name: pod, retryDelayMs: 20 });
        buses.push(b);
        return b;
      },
      directory: async () => {
        const d = new RedisDirectory({ url: REDIS_URL, cluster });
        await d.ready();
        dirs.push(d);
        return d;
      },
      sessions: (d) => new RedisSessionStore((d as RedisDirectory).redis, cluster),
      rooms: (d) => new RedisRoomStore((d as RedisDirectory).redis, cluster, 120_000),
      cleanup: async () => {
        await buses[0]?.deleteStream();
        for (const b of buses) await b.close();
        await dirs[0]?.deleteAll();
        for (const d of dirs) await d.close();
      },
    };
  },
};

/** Three pods sharing a bus, a directory and a ring file; every pod owns some rooms. */
let lastRingPath = "";

async function startCluster(t: TestContext, adapter: string, config: Record<string, unknown> = {}): Promise<SignalingServer[]> {
  const cluster = `t${randomBytes(5).toString("hex")}`;
  const dir = await mkdtemp(join(tmpdir(), "cluster-"));
  const ringPath = join(dir, "ring.json");
  await writeFile(ringPath, serializeRingDocument({ version: 1, members: PODS.map((name) => ({ name, address: "127.0.0.1:8080", state: "ACTIVE" as const })) }));
  lastRingPath = ringPath;
  const shared = (adapters[adapter] as (c: string) => Shared)(cluster);
  const log = createLogger("silent");
  const servers: SignalingServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.close();
    await shared.cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  for (const podName of PODS) {
    const directory = await shared.directory(podName);
    const bus = await shared.bus(podName);
    const node = (hosts: ClusterHosts) =>
      new ClusterNode(
        {
          podName,
          cluster,
          bus,
          directory,
          ring: new RingView({ podName, source: new FileRingSource(ringPath, { pollMs: 100 }), directory }),
          sessions: shared.sessions(directory),
          sessionTtlMs: 60_000,
          rooms: shared.rooms(directory),
          resumeWindowMs: 30_000,
          log,
        },
        hosts,
      );
    const server = createSignalingServer({ config: { port: 0, podName, logLevel: "silent", auth: { mode: "insecure-dev" }, ...config }, defaultMetrics: false, cluster: node, log });
    await server.listen();
    servers.push(server);
  }
  return servers;
}

/** A room owned by the given pod (found through that pod's ring). */
function roomOwnedBy(server: SignalingServer, prefix: string): string {
  for (let i = 0; ; i++) if (server.cluster?.ownsRoom(`${prefix}-${i}`)) return `${prefix}-${i}`;
}

for (const adapter of Object.keys(adapters)) {
  describe(`cluster rooms over ${adapter}`, () => {
    test("clients on three pods share a room owned by one of them: snapshot, presence, relay, broadcast, leave", async (t) => {
      const [a, b, c] = (await startCluster(t, adapter)) as [SignalingServer, SignalingServer, SignalingServer];
      const alice = new RawClient(a.wsUrl);
      const bob = new RawClient(b.wsUrl);
      const carol = new RawClient(c.wsUrl);
      t.after(() => Promise.all([alice.close(), bob.close(), carol.close()]));
      await alice.hello("alice");
      const wb = await bob.hello("bob");
      const wc = await carol.hello("carol");
      // A room owned by pod-c: alice (on pod-a) and bob (on pod-b) both reach it through the bus.
      const room = roomOwnedBy(c, "shared");
      const ja = await alice.request({ type: "join", room, meta: { n: "a" } });
      assert.equal(ja.type, "joined");
      const jb = (await bob.request({ type: "join", room })) as ServerMessageOf<"joined">;
      assert.deepEqual(jb.peers.map((p) => p.userId), ["alice"]);
      const pj = await alice.nextOf("peer-joined");
      assert.equal(pj.peer.peerId, wb.peerId);
      await carol.request({ type: "join", room });

      assert.equal((await alice.request({ type: "offer", room, to: wb.peerId, sdp: "v=0\r\nx" })).type, "ok");
      const offer = await bob.nextOf("offer");
      assert.equal(offer.sdp, "v=0\r\nx");

      await carol.request({ type: "broadcast", room, data: { hi: 1 } });
      assert.deepEqual((await alice.nextOf("broadcast")).data, { hi: 1 });
      assert.deepEqual((await bob.nextOf("broadcast")).data, { hi: 1 });

      await carol.request({ type: "leave", room });
      const left = await alice.next((m) => m.type === "peer-left");
      assert.equal((left as ServerMessageOf<"peer-left">).peerId, wc.peerId);
      assert.equal((left as ServerMessageOf<"peer-left">).reason, "left");
    });

    test("messages between pods arrive exactly once, in order per sender and receiver", async (t) => {
      const [a, b, c] = (await startCluster(t, adapter, { limits: { ratePerSecond: 10_000, rateBurst: 10_000 } })) as [SignalingServer, SignalingServer, SignalingServer];
      const alice = new RawClient(a.wsUrl);
      const bob = new RawClient(b.wsUrl);
      t.after(() => Promise.all([alice.close(), bob.close()]));
      await alice.hello("alice");
      const wb = await bob.hello("bob");
      const room = roomOwnedBy(c, "order");
      await alice.request({ type: "join", room });
      await bob.request({ type: "join", room });
      const n = 200;
      for (let i = 0; i < n; i++) alice.send({ type: "message", room, to: wb.peerId, data: i });
      const got: number[] = [];
      for (let i = 0; i < n; i++) got.push((await bob.nextOf("message", 10_000)).data as number);
      assert.deepEqual(got, Array.from({ length: n }, (_, i) => i));
      const seqs = bob.received.filter((m) => "seq" in m).map((m) => (m as { seq: number }).seq);
      seqs.forEach((s, i) => assert.equal(s, i + 1, "the receiver's stream has no gap"));
    });

    test("a session resumes on another pod: exact replay of what it missed, then live traffic both ways", async (t) => {
      const [a, b, c] = (await startCluster(t, adapter, { limits: { ratePerSecond: 10_000, rateBurst: 10_000 } })) as [SignalingServer, SignalingServer, SignalingServer];
      const alice = new RawClient(a.wsUrl);
      const bob = new RawClient(b.wsUrl);
      let moved: RawClient | null = null;
      t.after(() => Promise.all([alice.close(), bob.close(), moved?.close()]));
      const wa = await alice.hello("alice");
      const wb = await bob.hello("bob");
      // One room owned by a third pod, one owned by alice's own (old) edge: both routes must move.
      const rooms = [roomOwnedBy(c, "far"), roomOwnedBy(a, "near")];
      for (const room of rooms) {
        await alice.request({ type: "join", room });
        await bob.request({ type: "join", room });
      }
      const sendBatch = async (from: number, to: number) => {
        for (let i = from; i < to; i++) for (const room of rooms) assert.equal((await bob.request({ type: "message", room, to: wa.peerId, data: i })).type, "ok");
      };
      await sendBatch(0, 30);
      for (let i = 0; i < 60; i++) await alice.nextOf("message");
      const messages = alice.received.filter((m) => m.type === "message") as Array<ServerMessageOf<"message"> & { seq: number }>;
      const lastSeq = (messages[19] as { seq: number }).seq; // alice processed only the first 20
      alice.send({ type: "ack", seq: lastSeq });
      await new Promise((r) => setTimeout(r, 50));
      alice.drop();
      await sendBatch(30, 50); // while alice is away

      moved = new RawClient(c.wsUrl);
      await moved.opened();
      moved.send({ type: "resume", v: 1, sessionId: wa.sessionId, resumeToken: wa.resumeToken, lastSeq });
      const resumed = (await moved.nextOf("resumed")) as ServerMessageOf<"resumed"> & { pod: string };
      assert.equal(resumed.pod, "pod-c");
      await sendBatch(50, 60); // after the move
      const expected = new Map(rooms.map((r) => [r, [] as number[]]));
      for (const m of messages.slice(20)) expected.get(m.room as string)?.push(m.data as number);
      for (const room of rooms) for (let i = 30; i < 60; i++) expected.get(room)?.push(i);
      const got = new Map(rooms.map((r) => [r, [] as number[]]));
      for (let i = 0; i < 100; i++) {
        const m = (await moved.nextOf("message", 10_000)) as ServerMessageOf<"message">;
        got.get(m.room as string)?.push(m.data as number);
      }
      for (const room of rooms) assert.deepEqual(got.get(room), expected.get(room), `room ${room}: every missed and new message once, in order`);
      const seqs = moved.received.filter((m) => "seq" in m).map((m) => (m as { seq: number }).seq);
      seqs.forEach((s, i) => assert.equal(s, lastSeq + 1 + i, "the resumed stream continues without a gap"));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(moved.received.filter((m) => m.type === "message").length, 100, "nothing delivered twice");
      // The moved session still speaks in both rooms.
      for (const room of rooms) {
        assert.equal((await moved.request({ type: "message", room, to: wb.peerId, data: "back" })).type, "ok");
        assert.equal((await bob.nextOf("message")).data, "back");
      }
    });

    test("a ring change hands rooms to their new owner under traffic: nothing lost, duplicated or reordered", async (t) => {
      const [a, b, c] = (await startCluster(t, adapter, { limits: { ratePerSecond: 10_000, rateBurst: 10_000 } })) as [SignalingServer, SignalingServer, SignalingServer];
      const ringPath = lastRingPath;
      const alice = new RawClient(a.wsUrl);
      const bob = new RawClient(b.wsUrl);
      t.after(() => Promise.all([alice.close(), bob.close()]));
      await alice.hello("alice");
      const wb = await bob.hello("bob");
      // Rooms owned by pod-c, which leaves the ring: each moves to pod-a or pod-b.
      const rooms = Array.from({ length: 4 }, (_, i) => roomOwnedBy(c, `moving${i}`));
      for (const room of rooms) {
        await alice.request({ type: "join", room });
        await bob.request({ type: "join", room });
      }
      const perRoom = 150;
      let changed = false;
      const sending = (async () => {
        for (let i = 0; i < perRoom; i++) {
          for (const room of rooms) alice.send({ type: "message", room, to: wb.peerId, data: i });
          if (i === 50) {
            await writeFile(ringPath, serializeRingDocument({ version: 2, members: PODS.map((name) => ({ name, address: "127.0.0.1:8080", state: name === "pod-c" ? ("LEAVING" as const) : ("ACTIVE" as const) })) }));
            changed = true;
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const got = new Map(rooms.map((r) => [r, [] as number[]]));
      for (let i = 0; i < perRoom * rooms.length; i++) {
        const m = (await bob.nextOf("message", 20_000)) as ServerMessageOf<"message">;
        got.get(m.room as string)?.push(m.data as number);
      }
      await sending;
      assert.ok(changed);
      for (const room of rooms) assert.deepEqual(got.get(room), Array.from({ length: perRoom }, (_, i) => i), `room ${room}: every message once, in order: ${JSON.stringify(got.get(room))}`);
      await Promise.all([a, b, c].map((s) => s.cluster?.handoffSettled()));
      for (const room of rooms) {
        assert.equal(c.hub.rooms.has(room), false, "the old owner let the room go");
        const owner = [a, b].find((s) => s.cluster?.ownsRoom(room)) as SignalingServer;
        assert.equal(owner.hub.rooms.members(room)?.length, 2, "the new owner holds both members");
      }
      // Membership changes after the move reach the new owner.
      await bob.request({ type: "leave", room: rooms[0] });
      const left = await alice.nextOf("peer-left");
      assert.equal(left.peerId, wb.peerId);
      const errors = alice.received.filter((m) => m.type === "error");
      assert.deepEqual(errors, [], "no request was refused during the move");
    });

    test("per-user limits hold across the cluster; each pod reports the ring version it applied", async (t) => {
      const servers = (await startCluster(t, adapter, { limits: { sessionsPerUserPerMinute: 2, callsPerUserPerMinute: 1 } })) as [SignalingServer, SignalingServer, SignalingServer];
      const [a, b, c] = servers;
      const first = new RawClient(a.wsUrl);
      const second = new RawClient(b.wsUrl);
      const third = new RawClient(c.wsUrl);
      const callee = new RawClient(c.wsUrl);
      t.after(() => Promise.all([first.close(), second.close(), third.close(), callee.close()]));
      await first.hello("carol");
      await second.hello("carol");
      await third.opened();
      third.send({ type: "hello", v: 1, token: "carol" });
      const refused = (await third.nextOf("error")) as ServerMessageOf<"error">;
      assert.equal(refused.code, "SIG_ERR_TOO_MANY_CONNECTIONS", "the third session of the minute is refused, on a third pod");
      await callee.hello("dave");
      assert.equal((await first.request({ type: "call-invite", to: "dave" })).type, "call-trying");
      const again = (await second.request({ type: "call-invite", to: "dave" })) as ServerMessageOf<"error">;
      assert.equal(again.code, "SIG_ERR_RATE_LIMITED", "the second call of the minute is refused, from another pod");
      for (const s of servers) {
        const metrics = await (await fetch(`${s.httpUrl}/metrics`)).text();
        assert.match(metrics, /^switchboard_ring_version\{pod="[^"]+"\} 1$/m);
      }
    });

    test("a refusal by a remote owner reaches the sender with its request id and frees the reservation", async (t) => {
      const [a, , c] = (await startCluster(t, adapter, { limits: { maxPeersPerRoom: 1 } })) as [SignalingServer, SignalingServer, SignalingServer];
      const first = new RawClient(c.wsUrl);
      const second = new RawClient(a.wsUrl);
      t.after(() => Promise.all([first.close(), second.close()]));
      await first.hello("first");
      await second.hello("second");
      const room = roomOwnedBy(c, "full");
      await first.request({ type: "join", room });
      const refused = await second.request({ type: "join", room, id: "j1" });
      assert.equal(refused.type, "error");
      assert.equal((refused as ServerMessageOf<"error">).code, "SIG_ERR_ROOM_FULL");
      assert.equal((refused as ServerMessageOf<"error">).id, "j1");
      const again = await second.request({ type: "leave", room });
      assert.equal((again as ServerMessageOf<"error">).code, "SIG_ERR_NOT_IN_ROOM", "the refused room was not kept as joined");
    });

    test("a call rings the callee's devices on other pods; the first accept wins; relays reach only that device", async (t) => {
      const [a, b, c] = (await startCluster(t, adapter)) as [SignalingServer, SignalingServer, SignalingServer];
      const alice = new RawClient(a.wsUrl);
      const bobB = new RawClient(b.wsUrl);
      const bobC = new RawClient(c.wsUrl);
      t.after(() => Promise.all([alice.close(), bobB.close(), bobC.close()]));
      await alice.hello("alice");
      await bobB.hello("bob");
      const wc = await bobC.hello("bob");
      // Device registration in the directory is asynchronous: wait until both of bob's devices are listed.
      const deadline = Date.now() + 5000;
      while ((await a.cluster?.devicesOf("bob"))?.length !== 2) {
        assert.ok(Date.now() < deadline, "bob's devices were registered");
        await new Promise((r) => setTimeout(r, 20));
      }
      const trying = (await alice.request({ type: "call-invite", to: "bob" })) as ServerMessageOf<"call-trying">;
      assert.equal(trying.type, "call-trying");
      assert.equal(trying.devices, 2);
      const { callId } = trying;
      await bobB.nextOf("call-incoming");
      await bobC.nextOf("call-incoming");
      await bobC.request({ type: "call-ringing", callId });
      assert.equal((await alice.nextOf("call-ringing")).callId, callId);
      assert.equal((await bobC.request({ type: "call-accept", callId })).type, "ok");
      const elsewhere = await bobB.nextOf("call-ended");
      assert.equal(elsewhere.reason, "answered-elsewhere");
      const accepted = await alice.nextOf("call-accepted");
      assert.equal(accepted.peerId, wc.peerId);
      await alice.request({ type: "call-confirm", callId });
      assert.equal((await bobC.nextOf("call-confirmed")).polite, true);
      await alice.request({ type: "offer", callId, sdp: "v=0\r\noffer" });
      assert.equal((await bobC.nextOf("offer")).sdp, "v=0\r\noffer");
      await bobC.request({ type: "answer", callId, sdp: "v=0\r\nanswer" });
      assert.equal((await alice.nextOf("answer")).sdp, "v=0\r\nanswer");
      await alice.request({ type: "call-hangup", callId });
      assert.equal((await bobC.nextOf("call-ended")).reason, "hangup");
      assert.ok(!bobB.received.some((m) => m.type === "offer"), "the device that only rang never saw the offer");
    });
  });
}
