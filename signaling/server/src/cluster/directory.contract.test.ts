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
