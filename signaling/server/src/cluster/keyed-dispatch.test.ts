import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { KeyedDispatch } from "./keyed-dispatch.ts";

test("items of one key run one at a time in order; other keys run meanwhile; a barrier waits for all", async () => {
  const d = new KeyedDispatch({ limit: 100, retryDelayMs: () => 5 });
  const log: string[] = [];
  const acked: number[] = [];
  const item = (pos: number, key: string | null, ms: number) =>
    d.push(
      pos,
      key,
      async () => {
        log.push(`start ${pos}`);
        await sleep(ms);
        log.push(`end ${pos}`);
      },
      { done: () => acked.push(pos), onError: () => undefined },
    );
  item(1, "a", 40);
  item(2, "b", 5);
  item(3, "a", 5);
  item(4, null, 5);
  item(5, "b", 5);
  await d.idle();
  const idx = (s: string) => log.indexOf(s);
  assert.ok(idx("end 2") < idx("end 1"), "key b ran while key a was busy");
  assert.ok(idx("end 1") < idx("start 3"), "key a in order");
  assert.ok(idx("end 3") < idx("start 4") && idx("end 2") < idx("start 4"), "the barrier waited for everything before it");
  assert.ok(idx("end 4") < idx("start 5"), "items after the barrier waited for it");
  assert.deepEqual([...acked].sort(), [1, 2, 3, 4, 5]);
});

test("a failing item is retried in place: later items of its key wait, none overtakes it", async () => {
  const d = new KeyedDispatch({ limit: 100, retryDelayMs: () => 5 });
  const done: number[] = [];
  let failures = 2;
  d.push(
    1,
    "a",
    () => {
      if (failures-- > 0) throw new Error("not yet");
    },
    { done: () => done.push(1), onError: () => undefined },
  );
  d.push(2, "a", () => undefined, { done: () => done.push(2), onError: () => undefined });
  d.push(3, "b", () => undefined, { done: () => done.push(3), onError: () => undefined });
  await d.idle();
  assert.deepEqual(done, [3, 1, 2]);
  assert.equal(failures, -1, "retried until it succeeded");
});

test("admit bounds the items in flight; doneBefore tells whether earlier positions finished", async () => {
  const d = new KeyedDispatch({ limit: 2, retryDelayMs: () => 5 });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  d.push(1, "a", () => gate, { done: () => undefined, onError: () => undefined });
  d.push(2, "b", () => gate, { done: () => undefined, onError: () => undefined });
  let admitted = false;
  const waiting = d.admit().then(() => (admitted = true));
  await sleep(20);
  assert.equal(admitted, false, "a third item waits");
  assert.equal(d.doneBefore(2), false);
  release();
  await waiting;
  await d.idle();
  assert.equal(d.doneBefore(10), true);
});

test("an item failing maxAttempts times is given up: every failure reported, the delays asked for, its key goes on", async () => {
  const failures: Array<[number, boolean]> = [];
  const delays: number[] = [];
  const d = new KeyedDispatch({
    limit: 100,
    maxAttempts: 3,
    retryDelayMs: (n) => {
      delays.push(n);
      return 1;
    },
  });
  const outcome: string[] = [];
  let working = 0;
  d.push(
    1,
    "a",
    () => {
      throw new Error("never works");
    },
    {
      done: () => outcome.push("done 1"),
      onError: (_err, n, givenUp) => failures.push([n, givenUp]),
      working: () => working++,
      givenUp: () => outcome.push("given up 1"),
    },
  );
  d.push(2, "a", () => undefined, { done: () => outcome.push("done 2"), onError: () => undefined });
  await d.idle();
  assert.deepEqual(failures, [[1, false], [2, false], [3, true]]);
  assert.deepEqual(delays, [1, 2], "a delay after each failure but the last");
  assert.equal(working, 2, "the lease is extended before each retry");
  assert.deepEqual(outcome, ["given up 1", "done 2"]);
});

test("close wakes an item waiting to retry and stops retrying it (neither done nor given up)", { timeout: 10_000 }, async () => {
  const d = new KeyedDispatch({ limit: 100, retryDelayMs: () => 60_000 });
  let attempts = 0;
  const outcome: string[] = [];
  d.push(
    1,
    "a",
    () => {
      attempts++;
      throw new Error("down");
    },
    { done: () => outcome.push("done"), onError: () => undefined, givenUp: () => outcome.push("given up") },
  );
  await sleep(10);
  await d.close(); // at once: not after the minute the retry would wait
  assert.equal(attempts, 1);
  assert.deepEqual(outcome, []);
});
