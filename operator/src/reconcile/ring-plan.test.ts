import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RingDocument, RingMember } from "@switchboard/ring";
import type { PodView } from "./observed.ts";
import { planRing, type RingPlanInput } from "./ring-plan.ts";

const NOW = "2026-12-07T00:00:00.000Z";

function pod(ordinal: number, over: Partial<PodView> = {}): PodView {
  return { name: `sc-${ordinal}`, uid: `u${ordinal}`, ordinal, ip: `10.0.0.${ordinal + 10}`, ready: true, terminatingSinceMs: undefined, revision: "r1", problem: undefined, ...over };
}
function member(ordinal: number, state: RingMember["state"], over: Partial<RingMember> = {}): RingMember {
  return { name: `sc-${ordinal}`, address: `10.0.0.${ordinal + 10}:8080`, state, uid: `u${ordinal}`, ...over };
}
function ring(version: number, ...members: RingMember[]): RingDocument {
  return { version, members };
}
/** Every pod named applied `version`. */
function applied(version: number, ...ordinals: number[]): Record<string, number> {
  return Object.fromEntries(ordinals.map((o) => [`sc-${o}`, version]));
}
function input(over: Partial<RingPlanInput>): RingPlanInput {
  return { ring: ring(0), pods: [], applied: {}, desiredReplicas: 3, currentReplicas: 3, updateRevision: "r1", port: 8080, nowIso: NOW, ...over };
}
const states = (doc: RingDocument) => Object.fromEntries(doc.members.map((m) => [m.name, m.state]));

describe("planRing: joining", () => {
  test("an empty ring gets every running pod with an IP as JOINING, in one version", () => {
    const plan = planRing(input({ pods: [pod(0), pod(1), pod(2, { ip: undefined })], currentReplicas: 0 }));
    assert.equal(plan.changed, true);
    assert.equal(plan.ring.version, 1);
    assert.deepEqual(states(plan.ring), { "sc-0": "JOINING", "sc-1": "JOINING" });
    assert.equal(plan.ring.members[0]?.address, "10.0.0.10:8080");
    assert.equal(plan.ring.members[0]?.uid, "u0");
    assert.equal(plan.statefulSetReplicas, 3, "scale-up is immediate");
  });

  test("JOINING becomes ACTIVE once its pod is Ready and the ring converged", () => {
    const doc = ring(1, member(0, "JOINING"), member(1, "JOINING"));
    const notConverged = planRing(input({ ring: doc, pods: [pod(0), pod(1)], applied: applied(1, 0) }));
    assert.equal(notConverged.changed, false, "sc-1 has not applied version 1");
    const plan = planRing(input({ ring: doc, pods: [pod(0), pod(1, { ready: false })], applied: applied(1, 0, 1) }));
    assert.deepEqual(states(plan.ring), { "sc-0": "ACTIVE", "sc-1": "JOINING" });
    assert.equal(plan.ring.version, 2);
  });

  test("a stable, converged ring is left alone", () => {
    const doc = ring(4, member(0, "ACTIVE"), member(1, "ACTIVE"), member(2, "ACTIVE"));
    const plan = planRing(input({ ring: doc, pods: [pod(0), pod(1), pod(2)], applied: applied(4, 0, 1, 2) }));
    assert.equal(plan.changed, false);
    assert.equal(plan.ring, doc);
    assert.deepEqual(plan.deletePods, []);
    assert.equal(plan.converged, true);
  });
});

describe("planRing: pods that go", () => {
  test("a pod that vanished (killed) is removed at once, even before convergence", () => {
    const doc = ring(4, member(0, "ACTIVE"), member(1, "ACTIVE"));
    const plan = planRing(input({ ring: doc, pods: [pod(0)], applied: {}, desiredReplicas: 2 }));
    assert.deepEqual(plan.transitions, [{ name: "sc-1", from: "ACTIVE", to: undefined }]);
    assert.deepEqual(states(plan.ring), { "sc-0": "ACTIVE" });
  });

  test("a pod replaced under the same name: the old member goes first, the new pod joins only after every pod applied that", () => {
    const doc = ring(4, member(0, "ACTIVE"), member(1, "LEAVING"));
    const replaced = pod(1, { uid: "u1-new", ip: "10.0.0.99" });
    const first = planRing(input({ ring: doc, pods: [pod(0), replaced], applied: applied(4, 0, 1), desiredReplicas: 2 }));
    assert.deepEqual(states(first.ring), { "sc-0": "ACTIVE" }, "removed, not re-added in the same version");
    const second = planRing(input({ ring: first.ring, pods: [pod(0), replaced], applied: applied(5, 0), desiredReplicas: 2 }));
    assert.deepEqual(states(second.ring), { "sc-0": "ACTIVE", "sc-1": "JOINING" });
    assert.equal(second.ring.members.find((m) => m.name === "sc-1")?.uid, "u1-new");
  });

  test("a pod deleted by someone else turns LEAVING at once", () => {
    const doc = ring(4, member(0, "ACTIVE"), member(1, "ACTIVE"));
    const plan = planRing(input({ ring: doc, pods: [pod(0), pod(1, { terminatingSinceMs: 1 })], applied: applied(4, 0, 1), desiredReplicas: 2 }));
    assert.deepEqual(states(plan.ring), { "sc-0": "ACTIVE", "sc-1": "LEAVING" });
  });
});

describe("planRing: scale-down drains before the StatefulSet shrinks", () => {
  const doc = ring(4, member(0, "ACTIVE"), member(1, "ACTIVE"), member(2, "ACTIVE"));
  const pods = [pod(0), pod(1), pod(2)];

  test("step 1: the highest ordinals turn LEAVING; the StatefulSet keeps them", () => {
    const plan = planRing(input({ ring: doc, pods, applied: applied(4, 0, 1, 2), desiredReplicas: 1 }));
    assert.deepEqual(states(plan.ring), { "sc-0": "ACTIVE", "sc-1": "LEAVING", "sc-2": "LEAVING" });
    assert.equal(plan.statefulSetReplicas, 3);
  });

  const leaving = ring(5, member(0, "ACTIVE"), member(1, "LEAVING"), member(2, "LEAVING"));
  test("step 2: until every pod applied the LEAVING version, nothing more happens", () => {
    const plan = planRing(input({ ring: leaving, pods, applied: { ...applied(5, 0, 1), "sc-2": 4 }, desiredReplicas: 1 }));
    assert.equal(plan.changed, false);
    assert.equal(plan.statefulSetReplicas, 3);
  });

  test("step 3: once converged, the StatefulSet is lowered (its controller deletes, the pods drain)", () => {
    const plan = planRing(input({ ring: leaving, pods, applied: applied(5, 0, 1, 2), desiredReplicas: 1 }));
    assert.equal(plan.changed, false);
    assert.equal(plan.statefulSetReplicas, 1);
    assert.deepEqual(plan.deletePods, [], "the StatefulSet controller deletes them, not the operator");
  });

  test("step 4: draining pods stay LEAVING; gone pods leave the ring", () => {
    const draining = [pod(0), pod(1, { terminatingSinceMs: 1 }), pod(2, { terminatingSinceMs: 1 })];
    assert.equal(planRing(input({ ring: leaving, pods: draining, applied: applied(5, 0, 1, 2), desiredReplicas: 1, currentReplicas: 1 })).changed, false);
    const plan = planRing(input({ ring: leaving, pods: [pod(0), pod(1, { terminatingSinceMs: 1 })], applied: applied(5, 0, 1), desiredReplicas: 1, currentReplicas: 1 }));
    assert.deepEqual(states(plan.ring), { "sc-0": "ACTIVE", "sc-1": "LEAVING" });
  });

  test("a victim that never joined does not hold the StatefulSet", () => {
    const plan = planRing(input({ ring: ring(2, member(0, "ACTIVE")), pods: [pod(0), pod(1)], applied: applied(2, 0), desiredReplicas: 1, currentReplicas: 2 }));
    assert.equal(plan.statefulSetReplicas, 1);
  });
});

describe("planRing: rollout, one drained pod at a time", () => {
  const active = ring(4, member(0, "ACTIVE"), member(1, "ACTIVE"), member(2, "ACTIVE"));
  const old = [pod(0), pod(1), pod(2)];

  test("the highest-ordinal outdated pod turns LEAVING first", () => {
    const plan = planRing(input({ ring: active, pods: old, applied: applied(4, 0, 1, 2), updateRevision: "r2" }));
    assert.deepEqual(states(plan.ring), { "sc-0": "ACTIVE", "sc-1": "ACTIVE", "sc-2": "LEAVING" });
    assert.deepEqual(plan.deletePods, [], "not deleted before every pod applied LEAVING");
    assert.deepEqual(plan.outdatedPods, ["sc-0", "sc-1", "sc-2"]);
  });

  const leaving = ring(5, member(0, "ACTIVE"), member(1, "ACTIVE"), member(2, "LEAVING"));
  test("once every pod applied it, that pod is deleted (to drain), with its UID as precondition", () => {
    assert.deepEqual(planRing(input({ ring: leaving, pods: old, applied: { ...applied(5, 0, 1), "sc-2": 4 }, updateRevision: "r2" })).deletePods, []);
    const plan = planRing(input({ ring: leaving, pods: old, applied: applied(5, 0, 1, 2), updateRevision: "r2" }));
    assert.deepEqual(plan.deletePods, [{ name: "sc-2", uid: "u2" }]);
    assert.equal(plan.changed, false);
  });

  test("while the replaced pod drains and comes back, nobody else is touched", () => {
    const draining = [pod(0), pod(1), pod(2, { terminatingSinceMs: 1 })];
    const plan = planRing(input({ ring: leaving, pods: draining, applied: applied(5, 0, 1, 2), updateRevision: "r2" }));
    assert.equal(plan.changed, false);
    assert.deepEqual(plan.deletePods, []);
    const back = [pod(0), pod(1), pod(2, { uid: "u2b", revision: "r2", ready: false })];
    const removed = planRing(input({ ring: leaving, pods: back, applied: applied(5, 0, 1), updateRevision: "r2" }));
    assert.deepEqual(states(removed.ring), { "sc-0": "ACTIVE", "sc-1": "ACTIVE" });
    assert.deepEqual(removed.deletePods, []);
  });

  test("the next pod goes only once the new one is Ready and ACTIVE", () => {
    const renewed = [pod(0), pod(1), pod(2, { uid: "u2b", revision: "r2" })];
    const joining = ring(7, member(0, "ACTIVE"), member(1, "ACTIVE"), member(2, "JOINING", { uid: "u2b" }));
    const promote = planRing(input({ ring: joining, pods: renewed, applied: applied(7, 0, 1, 2), updateRevision: "r2" }));
    assert.deepEqual(states(promote.ring), { "sc-0": "ACTIVE", "sc-1": "ACTIVE", "sc-2": "ACTIVE" });
    const next = planRing(input({ ring: promote.ring, pods: renewed, applied: applied(8, 0, 1, 2), updateRevision: "r2" }));
    assert.deepEqual(states(next.ring), { "sc-0": "ACTIVE", "sc-1": "LEAVING", "sc-2": "ACTIVE" });
    assert.deepEqual(next.outdatedPods, ["sc-0", "sc-1"]);
  });

  test("no rollout step while another pod is not Ready, or before the StatefulSet's revision is known", () => {
    const unready = [pod(0), pod(1, { ready: false }), pod(2)];
    assert.equal(planRing(input({ ring: active, pods: unready, applied: applied(4, 0, 1, 2), updateRevision: "r2" })).changed, false);
    assert.equal(planRing(input({ ring: active, pods: old, applied: applied(4, 0, 1, 2), updateRevision: undefined })).changed, false);
  });

  test("no rollout step while scaling", () => {
    const plan = planRing(input({ ring: active, pods: old, applied: applied(4, 0, 1, 2), updateRevision: "r2", desiredReplicas: 4 }));
    assert.equal(plan.changed, false);
    assert.equal(plan.statefulSetReplicas, 4);
  });
});
