import assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "./errors.ts";
import { heldByOther, microTime, nextLeaseSpec, validateTimings } from "./leader-election.ts";

test("validateTimings enforces leaseDuration > renewDeadline > retryPeriod x 1.2", () => {
  validateTimings(15_000, 10_000, 2_000);
  for (const [l, r, p] of [[10_000, 10_000, 2_000], [15_000, 2_400, 2_000], [15_000, 10_000, 0]] as const) {
    assert.throws(() => validateTimings(l, r, p), (err) => hasCode(err, "OP_ERR_CONFIG"));
  }
});

test("microTime writes six fractional digits", () => {
  assert.equal(microTime(Date.parse("2030-01-02T03:04:05.678Z")), "2030-01-02T03:04:05.678000Z");
});

test("heldByOther judges expiry by when the observer saw the record change, by its own clock", () => {
  const spec = { holderIdentity: "b", leaseDurationSeconds: 15, renewTime: "1999-01-01T00:00:00.000000Z" };
  // renewTime far in the past does not matter: the observer saw it change at t=1000.
  assert.equal(heldByOther(spec, "a", 1_000, 15_999), true);
  assert.equal(heldByOther(spec, "a", 1_000, 16_000), false);
  assert.equal(heldByOther(spec, "b", 1_000, 2_000), false); // ours
  assert.equal(heldByOther({ ...spec, holderIdentity: "" }, "a", 1_000, 2_000), false); // released
  assert.equal(heldByOther({ ...spec, holderIdentity: null }, "a", 1_000, 2_000), false);
});

test("nextLeaseSpec: a renewal keeps acquireTime and transitions; a takeover counts one more; a new Lease starts at 0", () => {
  const t0 = Date.parse("2030-01-01T00:00:00Z");
  const created = nextLeaseSpec(undefined, "a", 15, t0);
  assert.deepEqual(created, { holderIdentity: "a", leaseDurationSeconds: 15, acquireTime: microTime(t0), renewTime: microTime(t0), leaseTransitions: 0 });
  const renewed = nextLeaseSpec(created, "a", 15, t0 + 2000);
  assert.equal(renewed.acquireTime, microTime(t0));
  assert.equal(renewed.renewTime, microTime(t0 + 2000));
  assert.equal(renewed.leaseTransitions, 0);
  const taken = nextLeaseSpec(renewed, "b", 15, t0 + 20_000);
  assert.equal(taken.holderIdentity, "b");
  assert.equal(taken.acquireTime, microTime(t0 + 20_000));
  assert.equal(taken.leaseTransitions, 1);
  const afterRelease = nextLeaseSpec({ ...taken, holderIdentity: "", leaseDurationSeconds: 1 }, "b", 15, t0 + 30_000);
  assert.equal(afterRelease.leaseTransitions, 2);
  assert.equal(afterRelease.leaseDurationSeconds, 15);
});
