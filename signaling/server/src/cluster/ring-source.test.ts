import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Redis } from "ioredis";
import { serializeRingDocument, type RingDocument } from "@switchboard/ring";
import { FileRingSource, RedisRingSource } from "./ring-source.ts";

const REDIS_URL = process.env["SWITCHBOARD_TEST_REDIS"] ?? "redis://127.0.0.1:6379";

function doc(version: number, names: string[]): string {
  return serializeRingDocument({ version, members: names.map((name) => ({ name, address: `127.0.0.1:${8000 + name.length}`, state: "ACTIVE" as const })) });
}

function nextVersion(seen: RingDocument[], version: number, timeoutMs = 3000): Promise<RingDocument> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      const d = seen.find((x) => x.version === version);
      if (d) return resolve(d);
      if (Date.now() > deadline) return reject(new Error(`version ${version} not seen; saw ${seen.map((x) => x.version).join(",")}`));
      setTimeout(check, 20);
    };
    check();
  });
}

test("file source: initial document, changes (including an atomic rename, as ConfigMaps do), never goes back", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "ring-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "ring.json");
  await writeFile(path, doc(1, ["a"]));
  const seen: RingDocument[] = [];
  const errors: Error[] = [];
  const source = new FileRingSource(path, { pollMs: 100 });
  t.after(() => source.stop());
  const first = await source.start((d) => seen.push(d), (e) => errors.push(e));
  assert.equal(first.version, 1);
  await writeFile(path, doc(2, ["a", "b"]));
  assert.equal((await nextVersion(seen, 2)).members.length, 2);
  await writeFile(join(dir, "next.json"), doc(3, ["a", "b", "c"]));
  await rename(join(dir, "next.json"), path);
  assert.equal((await nextVersion(seen, 3)).members.length, 3);
  await writeFile(path, doc(2, ["a"]));
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(seen.map((d) => d.version), [1, 2, 3], "an older version is ignored");
  await writeFile(path, "{not json");
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(errors.length > 0, "a broken document is reported, not applied");
});

test("redis source: pushed over pub/sub, seen at once", async (t) => {
  const redis = new Redis(REDIS_URL);
  const cluster = `ringtest-${randomBytes(4).toString("hex")}`;
  const source = new RedisRingSource(redis, cluster, { pollMs: 10_000 });
  t.after(async () => {
    await source.stop();
    await redis.del(`sb:${cluster}:ring`);
    await redis.quit();
  });
  await RedisRingSource.publish(redis, cluster, doc(5, ["p0", "p1"]));
  const seen: RingDocument[] = [];
  const first = await source.start((d) => seen.push(d), () => undefined);
  assert.equal(first.version, 5);
  await RedisRingSource.publish(redis, cluster, doc(6, ["p0", "p1", "p2"]));
  assert.equal((await nextVersion(seen, 6, 2000)).members.length, 3);
});
