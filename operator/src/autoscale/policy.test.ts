import assert from "node:assert/strict";
import { test } from "node:test";
import type { AutoscalingSpec } from "../api/signaling-cluster.ts";
import { decideScale, LAG_SUSTAIN_MS, type PodLoad, type Recommendation, type ScaleInput, withBuffer } from "./policy.ts";

const SPEC: AutoscalingSpec = {
  enabled: true,
  targetConnectionsPerPod: 1000,
  buffer: 1,
  scaleUpStabilizationSeconds: 0,
  scaleDownStabilizationSeconds: 300,
  maxScaleDownStep: 1,
};
const NOW = 1_000_000;

function pods(connections: readonly number[], extra: Partial<PodLoad> = {}): PodLoad[] {
  return connections.map((c, i) => ({ pod: `p-${i}`, fresh: true, connections: c, eventLoopLagP99Ms: 2, ...extra }));
}

function input(over: Partial<ScaleInput> & { spec?: Partial<AutoscalingSpec> }): ScaleInput {
  const { spec, ...rest } = over;
  return { autoscaling: { ...SPEC, ...spec }, minReplicas: 2, maxReplicas: 10, currentReplicas: 3, pods: pods([500, 500, 500]), history: [], historySinceMs: NOW - 3_600_000, scaleDownInFlight: false, nowMs: NOW, ...rest };
}

/** A history of `replicas` recommended every 2 s over the last `seconds`. */
function steady(replicas: number, seconds: number, lagHigh = false): Recommendation[] {
  const out: Recommendation[] = [];
  for (let t = 2; t <= seconds; t += 2) out.push({ atMs: NOW - t * 1000, replicas, lagHigh });
  return out;
}

test("withBuffer: a count is added; a percentage is of the total, as Agones reads it", () => {
  const cases: Array<[number, number | string, number]> = [
    [0, 0, 0], [4, 1, 5], [4, "0%", 4], [4, "20%", 5], [9, "10%", 10], [10, "10%", 12], [1, "50%", 2], [3, "99%", 300],
  ];
  for (const [needed, buffer, want] of cases) assert.equal(withBuffer(needed, buffer), want, `${needed} + ${String(buffer)}`);
  assert.throws(() => withBuffer(1, "100%"), RangeError);
});

test("decideScale: table", () => {
  const cases: Array<[string, ScaleInput, number, RegExp]> = [
    ["steady load keeps the replicas", input({ pods: pods([700, 700, 600]) }), 3, /load: 2000 connections/],
    ["more load scales up at once (window 0)", input({ pods: pods([2000, 2000, 2000]) }), 7, /load: 6000 connections \/ 1000 per pod \+ buffer 1/],
    ["up is clamped to maxReplicas", input({ pods: pods([9000, 9000, 9000]) }), 10, /load/],
    ["a percentage buffer", input({ pods: pods([2000, 2000, 2000]), spec: { buffer: "25%" } }), 8, /buffer 25%/],
    ["up waits for its window: the lowest recommendation in it counts", input({ pods: pods([2000, 2000, 2000]), spec: { scaleUpStabilizationSeconds: 60 }, history: steady(3, 60) }), 3, /load/],
    ["up after the window asked for it throughout", input({ pods: pods([2000, 2000, 2000]), spec: { scaleUpStabilizationSeconds: 60 }, history: [...steady(6, 58), { atMs: NOW - 61_000, replicas: 3, lagHigh: false }] }), 6, /load/],
    ["less load: no scale-down inside the window", input({ currentReplicas: 6, pods: pods([100, 100, 100, 100, 100, 100]), history: steady(6, 120) }), 6, /load/],
    ["less load for the whole window: down by one step", input({ currentReplicas: 6, pods: pods([100, 100, 100, 100, 100, 100]), history: steady(2, 300) }), 5, /load/],
    ["down by maxScaleDownStep at most", input({ currentReplicas: 6, pods: pods([100, 100, 100, 100, 100, 100]), spec: { maxScaleDownStep: 3 }, history: steady(2, 300) }), 3, /load/],
    ["down to the highest recommendation of the window", input({ currentReplicas: 6, pods: pods([0, 0, 0, 0, 0, 0]), spec: { maxScaleDownStep: 5 }, history: [...steady(2, 300), { atMs: NOW - 100_000, replicas: 4, lagHigh: false }] }), 4, /load/],
    ["never below minReplicas", input({ currentReplicas: 3, pods: pods([0, 0, 0]), spec: { maxScaleDownStep: 5, buffer: 0 }, history: steady(0, 300) }), 2, /load/],
    ["a stale reading blocks scale-down", input({ currentReplicas: 6, pods: [...pods([0, 0, 0, 0, 0]), { pod: "p-5", fresh: false, connections: 0, eventLoopLagP99Ms: 0 }], history: steady(2, 300) }), 6, /1 pod\(s\) without a fresh report/],
    ["a stale reading does not block scale-up", input({ pods: [...pods([3000, 3000]), { pod: "p-2", fresh: false, connections: 0, eventLoopLagP99Ms: 0 }] }), 7, /load: 6000/],
    ["no readings at all: nothing moves", input({ currentReplicas: 4, pods: pods([0, 0, 0, 0]).map((p) => ({ ...p, fresh: false })), history: steady(2, 300) }), 4, /without a fresh report/],
    ["lag high for the sustain window: one pod more", input({ pods: pods([100, 100, 100], { eventLoopLagP99Ms: 80 }), spec: { eventLoopLagP99Ms: 50 }, history: steady(2, LAG_SUSTAIN_MS / 1000 + 2, true) }), 4, /event-loop lag p99 above 50 ms/],
    ["lag high only lately: no scale-up yet, and no scale-down", input({ currentReplicas: 4, pods: pods([100, 100, 100, 100], { eventLoopLagP99Ms: 80 }), spec: { eventLoopLagP99Ms: 50 }, history: steady(2, 10, true) }), 4, /no scale-down: event-loop lag/],
    ["lag high in one pod only: not sustained load", input({ pods: [...pods([100, 100], { eventLoopLagP99Ms: 80 }), ...pods([100])], spec: { eventLoopLagP99Ms: 50 }, history: steady(3, 40, false) }), 3, /load/],
    ["a history shorter than the window (operator just started) blocks scale-down", input({ currentReplicas: 6, pods: pods([100, 100, 100, 100, 100, 100]), history: steady(2, 120), historySinceMs: NOW - 120_000 }), 6, /load seen for 120 s of the 300 s window/],
    ["a window of 0 s scales down on a history of one round", input({ currentReplicas: 6, pods: pods([100, 100, 100, 100, 100, 100]), spec: { scaleDownStabilizationSeconds: 0 }, historySinceMs: NOW }), 5, /load/],
    ["a scale-down still draining blocks the next step", input({ currentReplicas: 5, pods: pods([100, 100, 100, 100, 100, 100]), history: steady(2, 300), scaleDownInFlight: true }), 5, /still draining/],
    ["a scale-down still draining does not block scale-up", input({ currentReplicas: 5, pods: pods([2000, 2000, 2000, 2000, 2000, 2000]), scaleDownInFlight: true }), 10, /load: 12000/],
    ["replicas above a lowered maxReplicas come down to it", input({ currentReplicas: 12, pods: pods(Array(12).fill(2000)), history: steady(10, 300) }), 10, /spec bounds/],
    ["replicas below a raised minReplicas go up to it", input({ currentReplicas: 1, pods: pods([0]) }), 2, /spec bounds/],
  ];
  for (const [what, inp, want, reason] of cases) {
    const out = decideScale(inp);
    assert.equal(out.replicas, want, what);
    assert.match(out.reason, reason, `${what}: ${out.reason}`);
  }
});

test("decideScale reports connections, capacity and this round's recommendation", () => {
  const out = decideScale(input({ pods: pods([2000, 2000, 2000]) }));
  assert.equal(out.connections, 6000);
  assert.equal(out.capacity, 7000);
  assert.deepEqual(out.recommendation, { atMs: NOW, replicas: 7, lagHigh: false });
});
