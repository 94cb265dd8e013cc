import assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "./errors.ts";
import { type FakeApiServer, sendJson, sendStatus, startFakeApiServer } from "./kube/fake-api-server.ts";
import { KubeHttp } from "./kube/http.ts";
import { heldByOther, LeaderElector, microTime, nextLeaseSpec, validateTimings } from "./leader-election.ts";

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

/** A Lease store behind the fake API: GET, POST (409 when it exists), PUT (409 on a stale resourceVersion). */
interface StoredLease {
  metadata: { resourceVersion?: string } & Record<string, unknown>;
  spec: { holderIdentity?: string } & Record<string, unknown>;
}

function leaseStore(api: FakeApiServer): { lease: () => StoredLease | undefined; puts: () => number } {
  let lease: StoredLease | undefined;
  let version = 0;
  let puts = 0;
  api.handle((req, res) => {
    if (req.method === "GET") return lease === undefined ? sendStatus(res, 404, "NotFound", "leases not found") : sendJson(res, 200, lease);
    const body = JSON.parse(req.body) as StoredLease;
    if (req.method === "POST") {
      if (lease !== undefined) return sendStatus(res, 409, "AlreadyExists", "exists");
      lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++version) } };
      return sendJson(res, 201, lease);
    }
    if (req.method === "PUT") {
      if (lease === undefined) return sendStatus(res, 404, "NotFound", "leases not found");
      if (body.metadata.resourceVersion !== lease.metadata.resourceVersion) return sendStatus(res, 409, "Conflict", "stale");
      puts += 1;
      lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++version) } };
      return sendJson(res, 200, lease);
    }
    sendStatus(res, 405, "MethodNotAllowed", req.method);
  });
  return { lease: () => lease, puts: () => puts };
}

// Regression: renewals with the default (fractional) performance.now clock passed a fraction of a
// millisecond to AbortSignal.timeout, which threw ERR_OUT_OF_RANGE and crashed every new leader.
test("a leader on the default clocks renews its Lease again and again, then releases it on stop()", async (t) => {
  const api = await startFakeApiServer();
  const client = await KubeHttp.fromKubeConfig(api.kubeConfig);
  t.after(async () => {
    client.close();
    await api.close();
  });
  const store = leaseStore(api);
  let started = 0;
  let stopped = 0;
  const elector = new LeaderElector(client, {
    namespace: "ops",
    name: "switchboard-operator",
    identity: "op-a",
    leaseDurationMs: 2000,
    renewDeadlineMs: 1000,
    retryPeriodMs: 50,
    onStartedLeading: (signal) => {
      started += 1;
      return new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    },
    onStoppedLeading: () => {
      stopped += 1;
    },
  });
  t.after(() => elector.stop());
  elector.start();
  const deadline = Date.now() + 10_000;
  while (store.puts() < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(store.puts() >= 5, `renewals: ${store.puts()}`);
  assert.equal(elector.isLeader, true);
  assert.equal(store.lease()?.spec.holderIdentity, "op-a");
  assert.equal(started, 1);
  await elector.stop();
  assert.equal(elector.isLeader, false);
  assert.equal(stopped, 1);
  assert.equal(store.lease()?.spec.holderIdentity, "", "released");
});
