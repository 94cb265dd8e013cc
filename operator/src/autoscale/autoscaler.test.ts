import assert from "node:assert/strict";
import { test } from "node:test";
import type { PodReport, RingDocument } from "@switchboard/ring";
import { parseSignalingCluster, type SignalingCluster, type SignalingClusterSpecInput } from "../api/signaling-cluster.ts";
import type { Observed, PodView, ReportReading } from "../reconcile/observed.ts";
import { Autoscaler, podLoads } from "./autoscaler.ts";

const T0 = Date.parse("2026-12-07T00:00:00Z");
const UID = "0a1b2c3d-0000-4000-8000-000000000000";

function cluster(spec: Partial<SignalingClusterSpecInput>, desiredReplicas: number, uid = UID): SignalingCluster {
  const parsed = parseSignalingCluster({
    apiVersion: "switchboard.dev/v1alpha1",
    kind: "SignalingCluster",
    metadata: { name: "sc", namespace: "ns", uid, generation: 1 },
    spec: { image: "img:1", nats: { url: "nats://nats:4222" }, redis: { url: "redis://redis:6379" }, auth: { mode: "insecure-dev" }, ...spec },
    status: { desiredReplicas },
  });
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.issues.join("\n"));
  return parsed.cluster;
}
const AUTO = { enabled: true, targetConnectionsPerPod: 100, buffer: 0, scaleDownStabilizationSeconds: 60 };
const pod = (i: number, over: Partial<PodView> = {}): PodView => ({
  name: `sc-${i}`, uid: `u${i}`, ordinal: i, ip: `10.0.0.${i}`, ready: true, terminatingSinceMs: undefined, revision: "r1", problem: undefined, ...over,
});
function reading(name: string, connections: number, atMs: number): ReportReading {
  const report: PodReport = { pod: name, ready: true, draining: false, ring: { version: 1, state: "ACTIVE" }, connections, sessions: connections, rooms: 0, eventLoopLagP99Ms: 1 };
  return { report, atMs };
}
const ring = (n: number, leaving: number[] = []): RingDocument => ({
  version: 1,
  members: Array.from({ length: n }, (_, i) => ({ name: `sc-${i}`, address: `10.0.0.${i}:8080`, state: leaving.includes(i) ? ("LEAVING" as const) : ("ACTIVE" as const), uid: `u${i}` })),
});
/** n pods with `perPod` connections each, read just now. */
function observed(c: SignalingCluster, n: number, perPod: number, nowMs: number, over: Partial<Observed> = {}): Observed {
  const pods = Array.from({ length: n }, (_, i) => pod(i));
  return {
    cluster: c,
    statefulSet: { replicas: n, updateRevision: "r1" },
    pods,
    ring: { doc: ring(n), resourceVersion: "1" },
    reports: new Map(pods.map((p) => [p.name, reading(p.name, perPod, nowMs - 500)])),
    nowMs,
    ...over,
  };
}

test("autoscaling off: spec.replicas, and no history kept", () => {
  const a = new Autoscaler();
  const c = cluster({ replicas: 4 }, 4);
  assert.deepEqual(a.decide(observed(c, 4, 0, T0)), { replicas: 4, reason: "spec.replicas" });
  assert.equal(a.evaluate(observed(c, 4, 0, T0)), undefined);
});

test("a new history scales up at once but down only after a whole window of samples", () => {
  const a = new Autoscaler();
  const up = a.decide(observed(cluster({ autoscaling: AUTO }, 2), 2, 150, T0));
  assert.equal(up.replicas, 3, "300 connections / 100 per pod: up at once");
  assert.equal(up.capacity, 300);
  // Load falls to 50 per pod: one sample every 2 s; nothing moves until the 60 s window is covered.
  const c = cluster({ autoscaling: AUTO }, 3);
  let t = T0;
  for (; t < T0 + 60_000; t += 2000) assert.equal(a.decide(observed(c, 3, 50, t)).replicas, 3, `at ${(t - T0) / 1000} s`);
  // The up-sample at T0 is out of the window now: 150 connections want 2 pods.
  const down = a.decide(observed(c, 3, 50, t + 2000));
  assert.equal(down.replicas, 2);
  assert.match(down.reason, /load: 150 connections \/ 100 per pod/);
});

test("an operator restarted mid-window (a fresh Autoscaler) waits a whole window again", () => {
  const c = cluster({ autoscaling: AUTO }, 3);
  const first = new Autoscaler();
  for (let t = T0; t <= T0 + 50_000; t += 2000) first.decide(observed(c, 3, 10, t));
  const restarted = new Autoscaler();
  const held = restarted.decide(observed(c, 3, 10, T0 + 52_000));
  assert.equal(held.replicas, 3);
  assert.match(held.reason, /no scale-down: load seen for 0 s of the 60 s window/);
});

test("a cluster made again under the same name (another UID) starts a new history", () => {
  const a = new Autoscaler();
  const old = cluster({ autoscaling: AUTO }, 3);
  for (let t = T0; t <= T0 + 70_000; t += 2000) a.decide(observed(old, 3, 10, t));
  const again = cluster({ autoscaling: AUTO }, 3, "ffffffff-0000-4000-8000-000000000000");
  assert.match(a.decide(observed(again, 3, 10, T0 + 72_000)).reason, /load seen for 0 s/);
});

test("a scale-down in flight (a member LEAVING, a pod terminating, pods past the wanted count) holds the next step", () => {
  const spec = { autoscaling: { ...AUTO, scaleDownStabilizationSeconds: 0 } };
  const cases: Array<[string, Partial<Observed>, number]> = [
    ["a member LEAVING", { ring: { doc: ring(3, [2]), resourceVersion: "1" } }, 3],
    ["a pod terminating", { pods: [pod(0), pod(1), pod(2, { terminatingSinceMs: T0 - 1000 })] }, 3],
  ];
  for (const [what, over, desired] of cases) {
    const out = new Autoscaler().decide(observed(cluster(spec, desired), 3, 0, T0, over));
    assert.equal(out.replicas, desired, what);
    assert.match(out.reason, /still draining/, what);
  }
  const past = new Autoscaler().decide(observed(cluster(spec, 2), 3, 0, T0));
  assert.equal(past.replicas, 2);
  assert.match(past.reason, /still draining/, "3 pods, 2 wanted");
  const quiet = new Autoscaler().decide(observed(cluster(spec, 3), 3, 0, T0));
  assert.equal(quiet.replicas, 2, "nothing in flight: one step down");
});

test("podLoads: a pod not yet reporting counts as missing; a terminating pod counts only while it reports", () => {
  const c = cluster({ autoscaling: AUTO }, 3);
  const pods = [pod(0), pod(1), pod(2, { terminatingSinceMs: T0 - 1000 }), pod(3, { ready: false }), pod(4, { terminatingSinceMs: T0 - 1000 })];
  const reports = new Map([
    ["sc-0", reading("sc-0", 10, T0 - 500)],
    ["sc-1", reading("sc-1", 20, T0 - 60_000)],
    ["sc-2", reading("sc-2", 30, T0 - 500)],
  ]);
  const loads = podLoads({ ...observed(c, 0, 0, T0), pods, reports });
  assert.deepEqual(
    loads.map((l) => `${l.pod}:${l.fresh ? l.connections : "missing"}`),
    ["sc-0:10", "sc-1:missing", "sc-2:30", "sc-3:missing"],
  );
});
