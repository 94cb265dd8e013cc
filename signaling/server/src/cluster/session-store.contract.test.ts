import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { MemorySessionStore } from "./memory-session-store.ts";
import { MemoryRoomStore, type RoomStore } from "./room-store.ts";
import { RedisDirectory } from "./redis-directory.ts";
import { RedisRoomStore } from "./redis-room-store.ts";
import { RedisSessionStore } from "./redis-session-store.ts";
import { MAX_LOG_FRAMES, hashResumeToken, type SessionStore, type StoredIdentity } from "./session-store.ts";

const REDIS_URL = process.env["SWITCHBOARD_TEST_REDIS"] ?? "redis://127.0.0.1:6379";

interface Stores {
  sessions: SessionStore;
  rooms: RoomStore;
  cleanup(): Promise<void>;
}

const adapters: Record<string, () => Promise<Stores>> = {
  memory: async () => ({ sessions: new MemorySessionStore(), rooms: new MemoryRoomStore(), cleanup: async () => undefined }),
  redis: async () => {
    const cluster = `test-${randomBytes(6).toString("hex")}`;
    const dir = new RedisDirectory({ url: REDIS_URL, cluster });
    await dir.ready();
    return {
      sessions: new RedisSessionStore(dir.redis, cluster),
      rooms: new RedisRoomStore(dir.redis, cluster, 60_000),
      cleanup: async () => {
        await dir.deleteAll();
        await dir.close();
      },
    };
  },
};

const identity = (sessionId: string, token = "tok"): StoredIdentity => ({
  sessionId,
  peerId: "p1",
  userId: "alice",
  resumeTokenHash: hashResumeToken(token),
  device: "phone",
  face: "switchboard",
  principal: { userId: "alice", roomPatterns: ["*"], grants: ["join", "signal"], expiresAt: null },
});

const frame = (seq: number) => `{"seq":${seq},"type":"message","data":${seq}}`;

for (const [name, make] of Object.entries(adapters)) {
  describe(`SessionStore and RoomStore contract: ${name}`, () => {
    test("a claim moves the session to a new edge with everything not acknowledged, and fences the old edge", async (t) => {
      const { sessions, cleanup } = await make();
      t.after(cleanup);
      await sessions.create(identity("s1"), "pod-a", 10_000);
      assert.deepEqual(
        await sessions.append([{ sessionId: "s1", epoch: 1, frames: [frame(1), frame(2), frame(3)], src: 17, acked: 0, rooms: ["r1"], calls: [] }], 10_000),
        ["stored"],
      );
      assert.deepEqual(await sessions.append([{ sessionId: "s1", epoch: 1, frames: [frame(4)], src: 0, acked: 2 }], 10_000), ["stored"]);
      assert.equal(await sessions.claim("s1", "pod-b", 10_000, hashResumeToken("wrong")), "bad-token");
      assert.deepEqual(await sessions.locate("s1"), { edge: "pod-a", epoch: 1 }, "a refused claim changes nothing");
      const claimed = await sessions.claim("s1", "pod-b", 10_000, hashResumeToken("tok"));
      assert.ok(claimed && claimed !== "bad-token");
      assert.equal(claimed.epoch, 2);
      assert.equal(claimed.previousEdge, "pod-a");
      assert.deepEqual(claimed.frames, [frame(3), frame(4)], "acknowledged frames are gone");
      assert.equal(claimed.firstSeq, 3);
      assert.equal(claimed.lastSeq, 4);
      assert.equal(claimed.src, 17, "the highest source position stays");
      assert.deepEqual(claimed.rooms, ["r1"]);
      assert.deepEqual(claimed.identity, identity("s1"));
      assert.deepEqual(await sessions.append([{ sessionId: "s1", epoch: 1, frames: [frame(5)], src: 0, acked: 0 }], 10_000), ["fenced"], "the old edge is fenced");
      assert.deepEqual(await sessions.append([{ sessionId: "s1", epoch: 2, frames: [frame(5)], src: 0, acked: 0 }], 10_000), ["stored"]);
      assert.equal(await sessions.claim("nope", "pod-b", 10_000, hashResumeToken("tok")), null);
      assert.deepEqual(await sessions.append([{ sessionId: "nope", epoch: 1, frames: [frame(1)], src: 0, acked: 0 }], 10_000), ["gone"], "a lost record is told apart from a takeover");
      await sessions.remove("s1", 1);
      assert.deepEqual(await sessions.locate("s1"), { edge: "pod-b", epoch: 2 }, "removal by a fenced edge does nothing");
      await sessions.remove("s1", 2);
      assert.equal(await sessions.locate("s1"), null);
    });

    test("the log keeps at most MAX_LOG_FRAMES frames; appends for several sessions go in one call", async (t) => {
      const { sessions, cleanup } = await make();
      t.after(cleanup);
      await sessions.create(identity("s1"), "pod-a", 10_000);
      await sessions.create(identity("s2"), "pod-a", 10_000);
      const many = Array.from({ length: MAX_LOG_FRAMES + 10 }, (_, i) => frame(i + 1));
      for (let i = 0; i < many.length; i += 500) {
        const r = await sessions.append(
          [
            { sessionId: "s1", epoch: 1, frames: many.slice(i, i + 500), src: 0, acked: 0 },
            { sessionId: "s2", epoch: 1, frames: [frame(i / 500 + 1)], src: 0, acked: 0 },
          ],
          10_000,
        );
        assert.deepEqual(r, ["stored", "stored"]);
      }
      const c1 = await sessions.claim("s1", "pod-b", 10_000, hashResumeToken("tok"));
      assert.ok(c1 && c1 !== "bad-token");
      assert.equal(c1.frames.length, MAX_LOG_FRAMES);
      assert.equal(c1.firstSeq, 11);
      assert.equal(c1.frames[0], frame(11));
      const c2 = await sessions.claim("s2", "pod-b", 10_000, hashResumeToken("tok"));
      assert.ok(c2 && c2 !== "bad-token");
      assert.equal(c2.lastSeq, Math.ceil(many.length / 500));
    });

    test("rooms: saved in join order, listed, removed when empty", async (t) => {
      const { rooms, cleanup } = await make();
      t.after(cleanup);
      const m = (peerId: string, edge: string) => ({ sessionId: `s-${peerId}`, peerId, userId: `u-${peerId}`, meta: { n: peerId }, edge, connected: true });
      await rooms.save("r1", [m("b", "pod-a"), m("a", "pod-b")]);
      await rooms.save("r2", [m("c", "pod-c")]);
      assert.deepEqual(await rooms.load("r1"), [m("b", "pod-a"), m("a", "pod-b")]);
      assert.deepEqual((await rooms.rooms()).sort(), ["r1", "r2"]);
      await rooms.save("r2", []);
      assert.deepEqual(await rooms.load("r2"), []);
      assert.deepEqual(await rooms.rooms(), ["r1"]);
    });
  });
}
