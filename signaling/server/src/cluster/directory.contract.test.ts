import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import type { Directory } from "./directory.ts";
import { MemoryDirectory } from "./memory-directory.ts";
import { RedisDirectory } from "./redis-directory.ts";

const REDIS_URL = process.env["SWITCHBOARD_TEST_REDIS"] ?? "redis://127.0.0.1:6379";

const adapters: Record<string, () => Promise<{ dir: Directory; cleanup(): Promise<void> }>> = {
  memory: async () => {
    const dir = new MemoryDirectory();
    return { dir, cleanup: () => dir.close() };
  },
  redis: async () => {
    const dir = new RedisDirectory({ url: REDIS_URL, cluster: `test-${randomBytes(6).toString("hex")}` });
    await dir.ready();
    return {
      dir,
      cleanup: async () => {
        await dir.deleteAll();
        await dir.close();
      },
    };
  },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const [name, make] of Object.entries(adapters)) {
  describe(`Directory contract: ${name}`, () => {
    test("claims bump the epoch and return the previous holder; removal only at the current epoch", async (t) => {
      const { dir, cleanup } = await make();
      t.after(cleanup);
      const base = { sessionId: "s1", userId: "alice", peerId: "p1" };
      const first = await dir.claimSession({ ...base, edge: "pod-a" }, 10_000);
      assert.equal(first.record.epoch, 1);
      assert.equal(first.previous, null);
      const second = await dir.claimSession({ ...base, edge: "pod-b" }, 10_000);
      assert.equal(second.record.epoch, 2);
      assert.equal(second.previous?.edge, "pod-a");
      assert.deepEqual(await dir.getSession("s1"), { ...base, edge: "pod-b", epoch: 2 });
      assert.equal(await dir.removeSession("s1", 1), false, "a fenced edge cannot remove the session");
      assert.ok(await dir.getSession("s1"));
      assert.equal(await dir.removeSession("s1", 2), true);
      assert.equal(await dir.getSession("s1"), null);
    });

    test("session records expire unless refreshed", async (t) => {
      const { dir, cleanup } = await make();
      t.after(cleanup);
      await dir.claimSession({ sessionId: "keep", userId: "u", peerId: "p", edge: "a" }, 300);
      await dir.claimSession({ sessionId: "lose", userId: "u", peerId: "q", edge: "a" }, 300);
      await dir.refreshSessions(["keep"], 30_000);
      await sleep(500);
      assert.ok(await dir.getSession("keep"));
      assert.equal(await dir.getSession("lose"), null);
    });

    test("devices of a user: add, list, remove, expire", async (t) => {
      const { dir, cleanup } = await make();
      t.after(cleanup);
      await dir.addDevice("bob", { sessionId: "s1", peerId: "p1", edge: "a" }, 10_000);
      await dir.addDevice("bob", { sessionId: "s2", peerId: "p2", edge: "b" }, 100);
      const both = await dir.devices("bob");
      assert.deepEqual(both.map((d) => d.sessionId).sort(), ["s1", "s2"]);
      await sleep(150);
      assert.deepEqual((await dir.devices("bob")).map((d) => d.sessionId), ["s1"]);
      await dir.removeDevice("bob", "s1");
      assert.deepEqual(await dir.devices("bob"), []);
      assert.deepEqual(await dir.devices("nobody"), []);
    });

    test("presence per room", async (t) => {
      const { dir, cleanup } = await make();
      t.after(cleanup);
      await dir.setPresence("r", { peerId: "p1", userId: "a", edge: "x", meta: { name: "A" } }, 10_000);
      await dir.setPresence("r", { peerId: "p2", userId: "b", edge: "y", meta: {} }, 10_000);
      await dir.setPresence("other", { peerId: "p3", userId: "c", edge: "y", meta: {} }, 10_000);
      assert.deepEqual((await dir.presence("r")).map((p) => p.peerId).sort(), ["p1", "p2"]);
      await dir.removePresence("r", "p1");
      assert.deepEqual(await dir.presence("r"), [{ peerId: "p2", userId: "b", edge: "y", meta: {} }]);
    });

    test("ring versions applied per pod", async (t) => {
      const { dir, cleanup } = await make();
      t.after(cleanup);
      await dir.reportRingVersion("a", 3, 10_000);
      await dir.reportRingVersion("b", 2, 10_000);
      await dir.reportRingVersion("b", 3, 10_000);
      await dir.reportRingVersion("gone", 1, 50);
      await sleep(100);
      assert.deepEqual(await dir.ringVersions(), { a: 3, b: 3 });
    });

    test("cluster-wide fixed-window rate limit", async (t) => {
      const { dir, cleanup } = await make();
      t.after(cleanup);
      const windowMs = 60_000;
      const results: boolean[] = [];
      for (let i = 0; i < 5; i++) results.push(await dir.allow("ip:1.2.3.4", 3, windowMs));
      assert.deepEqual(results, [true, true, true, false, false]);
      assert.equal(await dir.allow("ip:5.6.7.8", 3, windowMs), true, "keys are independent");
    });
  });
}
