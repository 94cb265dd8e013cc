import assert from "node:assert/strict";
import { test } from "node:test";
import { FixedWindowCounter } from "./fixed-window.ts";

test("counts per key up to the limit within a window, and starts afresh in the next", () => {
  const c = new FixedWindowCounter(60_000);
  assert.equal(c.allow("u1", 2, 1_000), true);
  assert.equal(c.allow("u1", 2, 2_000), true);
  assert.equal(c.allow("u1", 2, 59_999), false, "third in the window refused");
  assert.equal(c.allow("u2", 2, 59_999), true, "keys are counted apart");
  assert.equal(c.allow("u1", 2, 60_000), true, "a new window");
});
