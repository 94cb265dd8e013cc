import assert from "node:assert/strict";
import { test } from "node:test";
import { Breaker, BreakerOpenError, type BreakerState } from "./breaker.ts";

test("opens after consecutive failures, fails fast while open, probes once, closes on success", async () => {
  let now = 0;
  const states: BreakerState[] = [];
  const b = new Breaker({ failureThreshold: 2, openMs: 1000, now: () => now, onStateChange: (s) => states.push(s) });
  const fail = () => Promise.reject(new Error("down"));
  let calls = 0;
  const ok = () => {
    calls += 1;
    return Promise.resolve("up");
  };
  await assert.rejects(b.call(fail), /down/);
  assert.equal(b.state, "closed");
  await assert.rejects(b.call(fail), /down/);
  assert.equal(b.state, "open");
  await assert.rejects(b.call(ok), BreakerOpenError);
  assert.equal(calls, 0, "no call reaches the dependency while open");
  now = 1000;
  assert.equal(b.state, "half-open");
  await assert.rejects(b.call(fail), /down/);
  assert.equal(b.state, "open", "a failed probe reopens");
  now = 2000;
  assert.equal(await b.call(ok), "up");
  assert.equal(b.state, "closed");
  assert.deepEqual(states, ["open", "closed"]);
});

test("a call that hangs is cut off by the timeout and counts as a failure", async () => {
  const b = new Breaker({ failureThreshold: 1, timeoutMs: 20 });
  await assert.rejects(b.call(() => new Promise(() => undefined)), BreakerOpenError);
  assert.equal(b.state, "open");
});

test("success resets the failure count", async () => {
  const b = new Breaker({ failureThreshold: 2 });
  await assert.rejects(b.call(() => Promise.reject(new Error("x"))));
  await b.call(() => Promise.resolve(1));
  await assert.rejects(b.call(() => Promise.reject(new Error("x"))));
  assert.equal(b.state, "closed");
});
