import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { WorkQueue } from "./work-queue.ts";

test("a key runs once at a time; adds while it runs coalesce into one more run", async (t) => {
  const runs: string[] = [];
  let release: () => void = () => undefined;
  const q = new WorkQueue({
    handle: async (key) => {
      runs.push(key);
      if (runs.length === 1) await new Promise<void>((resolve) => (release = resolve));
    },
    onError: () => assert.fail("no error expected"),
  });
  t.after(() => q.stop());
  q.add("a");
  await sleep(5);
  q.add("a");
  q.add("a");
  q.add("b");
  await sleep(5);
  assert.deepEqual(runs, ["a", "b"], "b runs beside a; a waits");
  release();
  await sleep(10);
  assert.deepEqual(runs, ["a", "b", "a"], "three adds during the run made one more run");
});

test("a failing key is reported and retried with backoff; addAfter keeps the earliest time", async (t) => {
  const errors: string[] = [];
  let calls = 0;
  const q = new WorkQueue({
    handle: async () => {
      calls += 1;
      if (calls < 3) throw new Error(`fail ${calls}`);
    },
    onError: (key, err) => errors.push(`${key}: ${(err as Error).message}`),
    retryMs: 10,
  });
  t.after(() => q.stop());
  q.add("k");
  await sleep(150);
  assert.equal(calls, 3);
  assert.deepEqual(errors, ["k: fail 1", "k: fail 2"]);
  q.addAfter("k", 10_000);
  q.addAfter("k", 20);
  await sleep(80);
  assert.equal(calls, 4, "the sooner schedule won");
});

test("stop waits for the run under way and drops the rest", async () => {
  let finished = false;
  const q = new WorkQueue({
    handle: async () => {
      await sleep(30);
      finished = true;
    },
    onError: () => undefined,
  });
  q.add("x");
  q.addAfter("y", 10);
  await sleep(1);
  await q.stop();
  assert.equal(finished, true);
  q.add("z");
  assert.equal(q.length, 0);
});
