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

test("with a probe it opens without traffic and closes by itself once the dependency answers", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let now = 0;
  let up = true;
  let probes = 0;
  const states: BreakerState[] = [];
  const b = new Breaker({
    failureThreshold: 2,
    openMs: 500,
    probeEveryMs: 1000,
    now: () => now,
    onStateChange: (s) => states.push(s),
    probe: () => {
      probes += 1;
      return up ? Promise.resolve() : Promise.reject(new Error("down"));
    },
  });
  t.after(() => b.close());
  const advance = async (ms: number) => {
    now += ms;
    t.mock.timers.tick(ms);
    // Let the probe's promise chain settle (setImmediate is not mocked).
    await new Promise((r) => setImmediate(r));
  };
  await advance(1000);
  assert.equal(probes, 1);
  assert.equal(b.state, "closed");
  up = false;
  await advance(1000);
  assert.equal(b.state, "closed", "one failed probe is below the threshold");
  await advance(1000);
  assert.equal(b.state, "open", "the probe alone opened it");
  await advance(500);
  assert.equal(probes, 4, "probed again as soon as it turned half-open");
  assert.equal(b.state, "open", "and reopened on failure");
  up = true;
  await advance(500);
  assert.equal(b.state, "closed", "closed by itself, without any caller");
  assert.deepEqual(states, ["open", "closed"]);
  await b.close();
  await advance(5000);
  assert.equal(probes, 5, "close stops the probe");
});
