import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseRingDocument, type PodReport, type RingDocument } from "@switchboard/ring";
import { parseSignalingCluster, type SignalingCluster, type SignalingClusterSpecInput } from "../api/signaling-cluster.ts";
import type { KubeObject } from "./desired-objects.ts";
import type { Observed, PodView, ReportReading } from "./observed.ts";
import { reconcile, specScale } from "./reconcile.ts";

const NOW = Date.parse("2026-12-07T00:00:00Z");

function cluster(spec: Partial<SignalingClusterSpecInput> = {}, status?: SignalingCluster["status"]): SignalingCluster {
  const parsed = parseSignalingCluster({
    apiVersion: "switchboard.dev/v1alpha1",
    kind: "SignalingCluster",
    metadata: { name: "sc", namespace: "ns", uid: "0a1b2c3d-0000-4000-8000-000000000000", generation: 2 },
    spec: { image: "ghcr.io/x/switchboard/signaling:1", nats: { url: "nats://nats:4222" }, redis: { url: "redis://redis:6379" }, auth: { mode: "insecure-dev" }, ...spec },
    ...(status ? { status } : {}),
  });
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.issues.join("\n"));
  return parsed.cluster;
}
const pod = (i: number, over: Partial<PodView> = {}): PodView => ({
  name: `sc-${i}`,
  uid: `u${i}`,
  ordinal: i,
  ip: `10.0.0.${i + 10}`,
  ready: true,
  terminatingSinceMs: undefined,
  revision: "r1",
  problem: undefined,
  ...over,
});
function report(name: string, version: number, connections = 0): ReportReading {
  const r: PodReport = { pod: name, ready: true, draining: false, ring: { version, state: "ACTIVE" }, connections, sessions: connections, rooms: 0, eventLoopLagP99Ms: 1 };
  return { report: r, atMs: NOW - 1000 };
}
function observed(c: SignalingCluster, over: Partial<Observed> = {}): Observed {
  return { cluster: c, statefulSet: { replicas: 3, updateRevision: "r1" }, pods: [], ring: undefined, reports: new Map(), nowMs: NOW, ...over };
}
const activeRing = (version: number, n: number): RingDocument => ({
  version,
  members: Array.from({ length: n }, (_, i) => ({ name: `sc-${i}`, address: `10.0.0.${i + 10}:8080`, state: "ACTIVE" as const, uid: `u${i}` })),
});
const cond = (status: ReturnType<typeof reconcile>["status"], type: string) => status.conditions?.find((c) => c.type === type);
const env = (sts: KubeObject) => (sts as unknown as { spec: { template: { spec: { containers: { env: { name: string; value?: string; valueFrom?: unknown }[] }[] } } } }).spec.template.spec.containers[0]!.env;

describe("reconcile", () => {
  test("a new cluster: every object, an empty ring written first, the StatefulSet at spec.replicas", () => {
    const c = cluster();
    const r = reconcile(observed(c, { statefulSet: undefined }), specScale(observed(c)));
    assert.deepEqual(
      r.supporting.map((o) => `${o.kind}/${o.metadata.name}`),
      ["ServiceAccount/sc-signaling", "Role/sc-signaling", "RoleBinding/sc-signaling", "Service/sc", "Service/sc-pods", "PodDisruptionBudget/sc"],
    );
    assert.ok(r.ring, "the ring ConfigMap is created");
    const doc = parseRingDocument((r.ring.data as Record<string, string>)["ring.json"]!);
    assert.deepEqual(doc, { version: 0, members: [] });
    assert.equal((r.statefulSet["spec"] as { replicas: number }).replicas, 3);
    for (const o of [...r.supporting, r.ring, r.statefulSet]) {
      assert.deepEqual(o.metadata.ownerReferences?.[0], { apiVersion: "switchboard.dev/v1alpha1", kind: "SignalingCluster", name: "sc", uid: c.metadata.uid, controller: true, blockOwnerDeletion: true });
    }
    assert.equal(cond(r.status, "Ready")?.status, "False");
    assert.equal(cond(r.status, "Progressing")?.reason, "ScalingUp");
    assert.equal(cond(r.status, "Reconciling")?.status, "True", "kstatus: InProgress");
    assert.equal(r.status.observedGeneration, 2);
    assert.equal(r.status.selector, "app.kubernetes.io/name=switchboard,app.kubernetes.io/instance=sc,app.kubernetes.io/component=signaling");
  });

  test("a steady cluster is Ready, converged and not progressing; nothing is written", () => {
    const c = cluster();
    const ring = activeRing(5, 3);
    const reports = new Map([0, 1, 2].map((i) => [`sc-${i}`, report(`sc-${i}`, 5, 100)]));
    const r = reconcile(observed(c, { pods: [pod(0), pod(1), pod(2)], ring: { doc: ring, resourceVersion: "9" }, reports }), specScale(observed(c)));
    assert.equal(r.ring, undefined);
    assert.deepEqual(r.deletePods, []);
    assert.equal(cond(r.status, "Ready")?.status, "True");
    assert.equal(cond(r.status, "RingConverged")?.status, "True");
    assert.equal(cond(r.status, "Progressing")?.status, "False");
    assert.equal(cond(r.status, "Degraded")?.status, "False");
    // kstatus: Current (observedGeneration current, Ready True, neither Reconciling nor Stalled).
    assert.equal(r.status.observedGeneration, 2);
    assert.equal(cond(r.status, "Reconciling")?.status, "False");
    assert.equal(cond(r.status, "Stalled")?.status, "False");
    assert.equal(r.status.connections, 300);
    assert.deepEqual(r.status.ring?.members.map((m) => m.appliedVersion), [5, 5, 5]);
    assert.equal(r.events.length, 0);
    assert.equal(r.requeueAfterMs, 30_000);
  });

  test("a ring change is written conditionally on the observed resourceVersion, and recorded as an event", () => {
    const c = cluster();
    const reports = new Map([0, 1].map((i) => [`sc-${i}`, report(`sc-${i}`, 5)]));
    const r = reconcile(observed(c, { pods: [pod(0), pod(1), pod(2)], ring: { doc: activeRing(5, 2), resourceVersion: "9" }, reports }), specScale(observed(c)));
    assert.equal(r.ring?.metadata.resourceVersion, "9");
    assert.equal(r.ringDocument.version, 6);
    assert.deepEqual(r.events, [{ type: "Normal", reason: "RingUpdated", message: "ring version 6: sc-2 JOINING" }]);
    assert.equal(cond(r.status, "RingConverged")?.reason, "RingChanged");
    assert.equal(r.requeueAfterMs, 2000);
  });

  test("a stale report does not count: the ring is not converged and the pod is named in Degraded", () => {
    const c = cluster();
    const reports = new Map([0, 1, 2].map((i) => [`sc-${i}`, report(`sc-${i}`, 5)]));
    reports.set("sc-2", { ...report("sc-2", 5), atMs: NOW - 60_000 });
    const r = reconcile(observed(c, { pods: [pod(0), pod(1), pod(2)], ring: { doc: activeRing(5, 3), resourceVersion: "9" }, reports }), specScale(observed(c)));
    assert.equal(cond(r.status, "RingConverged")?.status, "False");
    assert.equal(cond(r.status, "Degraded")?.reason, "PodsNotReporting");
    assert.match(cond(r.status, "Degraded")?.message ?? "", /sc-2/);
  });

  test("a change of spec.replicas is a scale event with its time and reason in status", () => {
    const before = cluster({ replicas: 5 }, { desiredReplicas: 3, lastScaleTime: "2026-01-01T00:00:00Z", lastScaleReason: "spec.replicas" });
    const r = reconcile(observed(before, { pods: [pod(0), pod(1), pod(2)], ring: { doc: activeRing(5, 3), resourceVersion: "9" } }), specScale(observed(before)));
    assert.deepEqual(r.events[0], { type: "Normal", reason: "ScalingUp", message: "replicas 3 → 5 (spec.replicas)" });
    assert.equal(r.status.lastScaleTime, new Date(NOW).toISOString());
    assert.equal((r.statefulSet["spec"] as { replicas: number }).replicas, 5);
  });

  test("conditions keep their transition time while their status holds", () => {
    const c = cluster();
    const input = observed(c, { pods: [pod(0), pod(1), pod(2)], ring: { doc: activeRing(5, 3), resourceVersion: "9" }, reports: new Map([0, 1, 2].map((i) => [`sc-${i}`, report(`sc-${i}`, 5)])) });
    const first = reconcile(input, specScale(input));
    const again = reconcile({ ...input, cluster: { ...c, status: first.status }, nowMs: NOW + 5000 }, specScale(input));
    assert.equal(cond(again.status, "Ready")?.status, "True");
    assert.equal(cond(again.status, "Ready")?.lastTransitionTime, cond(first.status, "Ready")?.lastTransitionTime);
  });

  test("a drain past its deadline and a pod that cannot start are Warnings and Degraded", () => {
    const c = cluster({ drainTimeoutSeconds: 10 });
    const r = reconcile(
      observed(c, { pods: [pod(0, { problem: "CreateContainerConfigError: secret \"jwt\" not found" }), pod(1, { terminatingSinceMs: NOW - 60_000 })], ring: { doc: activeRing(5, 1), resourceVersion: "9" } }),
      specScale(observed(c)),
    );
    assert.deepEqual(
      r.events.filter((e) => e.type === "Warning").map((e) => e.reason),
      ["PodFailing", "DrainOverdue"],
    );
    assert.equal(cond(r.status, "Degraded")?.status, "True");
    assert.equal(cond(r.status, "Degraded")?.reason, "PodsFailing");
    assert.equal(cond(r.status, "Stalled")?.status, "True", "kstatus: Failed");
    assert.match(cond(r.status, "Degraded")?.message ?? "", /sc-0: CreateContainerConfigError/);
  });
});

describe("the pods' settings", () => {
  test("the signaling container gets its cluster, ring, endpoints and auth from the spec; Secrets stay references", () => {
    const c = cluster({
      nats: { urlSecretRef: { name: "nats", key: "url" } },
      auth: { mode: "jwt", audience: "aud", issuer: "iss", hs256SecretRef: { name: "jwt", key: "secret" } },
      resumeWindowSeconds: 20,
      env: [{ name: "SWITCHBOARD_LOG_LEVEL", value: "debug" }],
    });
    const e = env(reconcile(observed(c), specScale(observed(c))).statefulSet);
    const byName = new Map(e.map((v) => [v.name, v]));
    assert.equal(byName.get("SWITCHBOARD_CLUSTER_NAME")?.value, "sc-0a1b2c3d");
    assert.equal(byName.get("SWITCHBOARD_RING_CONFIGMAP")?.value, "sc-ring");
    assert.deepEqual(byName.get("SWITCHBOARD_NATS_URL")?.valueFrom, { secretKeyRef: { name: "nats", key: "url" } });
    assert.equal(byName.get("SWITCHBOARD_REDIS_URL")?.value, "redis://redis:6379");
    assert.deepEqual(byName.get("SWITCHBOARD_JWT_HS256_SECRET")?.valueFrom, { secretKeyRef: { name: "jwt", key: "secret" } });
    assert.equal(byName.get("SWITCHBOARD_RESUME_WINDOW_MS")?.value, "20000");
    assert.equal(byName.get("SWITCHBOARD_LOG_LEVEL")?.value, "debug", "the spec's env wins");
    assert.equal(e.filter((v) => v.name === "SWITCHBOARD_LOG_LEVEL").length, 1);
  });

  test("the StatefulSet is OnDelete (the operator rolls), Parallel, with a grace period past the drain", () => {
    const c = cluster({ drainTimeoutSeconds: 40 });
    const sts = reconcile(observed(c), specScale(observed(c))).statefulSet as unknown as {
      spec: { updateStrategy: { type: string }; podManagementPolicy: string; template: { spec: { terminationGracePeriodSeconds: number } } };
    };
    assert.equal(sts.spec.updateStrategy.type, "OnDelete");
    assert.equal(sts.spec.podManagementPolicy, "Parallel");
    assert.equal(sts.spec.template.spec.terminationGracePeriodSeconds, 55);
  });
});
