/**
 * The autoscaling decision as a pure function: (spec.autoscaling, the pods' readings, the replicas
 * now, the recommendations of the last minutes, the time) → the replicas wanted, the reason, and
 * the recommendation to remember. No I/O; the controller feeds it and carries the result out.
 *
 * - raw = ceil(connections / targetConnectionsPerPod) + buffer, the buffer an absolute count or a
 *   percentage of the total as Agones reads it (total = ceil(needed / (1 − p))), clamped to
 *   [minReplicas, maxReplicas];
 * - lag: while every fresh reading of the last {@link LAG_SUSTAIN_MS} had an event-loop lag p99
 *   above `eventLoopLagP99Ms`, at least one pod more than now;
 * - stabilization as the HPA's `behavior`: up to the lowest recommendation of the scale-up window
 *   (0 s: at once), down to the highest of the scale-down window, at most `maxScaleDownStep` pods;
 * - a missing or stale reading (a pod without a fresh report) never lets the cluster shrink;
 * - nor does a history shorter than the scale-down window (an operator that just started, or a new
 *   leader, has not seen the load for long enough), nor a scale-down still under way (one step is
 *   one drain: the next starts once the pods of the last are gone).
 *
 * @module
 */
import type { AutoscalingSpec } from "../api/signaling-cluster.ts";

/** One pod's load, from its last report (`GET /status`); `fresh` false when missing or too old. */
export interface PodLoad {
  readonly pod: string;
  readonly fresh: boolean;
  readonly connections: number;
  readonly eventLoopLagP99Ms: number;
}

/** A past recommendation (kept by the caller for the longest window). */
export interface Recommendation {
  readonly atMs: number;
  /** Replicas the load asked for then (clamped, before stabilization). */
  readonly replicas: number;
  /** Whether the lag was above its threshold in every fresh reading then. */
  readonly lagHigh: boolean;
}

/** Input of {@link decideScale}. */
export interface ScaleInput {
  readonly autoscaling: AutoscalingSpec;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Replicas wanted now (the last decision, or the pods that exist on a first decision). */
  readonly currentReplicas: number;
  /** One reading per pod that should report (every ring member). */
  readonly pods: readonly PodLoad[];
  /** Recommendations before this one, any order. */
  readonly history: readonly Recommendation[];
  /** Since when the history is complete (the first recommendation this process made). */
  readonly historySinceMs: number;
  /** Pods of an earlier scale-down still leaving or draining. */
  readonly scaleDownInFlight: boolean;
  readonly nowMs: number;
}

/** What {@link decideScale} decided. */
export interface ScaleOutcome {
  readonly replicas: number;
  /** Why, for status.lastScaleReason and the Event (`load: 12000 connections / 5000 per pod + 1`). */
  readonly reason: string;
  /** This round's recommendation, to append to the history. */
  readonly recommendation: Recommendation;
  /** Connections over the fresh readings. */
  readonly connections: number;
  /** Connections the wanted pods carry at the target. */
  readonly capacity: number;
}

/** How long the lag must stay high before it adds a pod. */
export const LAG_SUSTAIN_MS = 30_000;
/** Largest gap between recommendations for the history to count as covering a window. */
export const LAG_REPORT_GAP_MS = 5000;

/** Spare pods on top of `needed` for `buffer` (a count, or `N%` of the total as Agones reads it). */
export function withBuffer(needed: number, buffer: number | string): number {
  if (typeof buffer === "number") return needed + buffer;
  const pct = Number(buffer.replace(/%$/, ""));
  if (!Number.isFinite(pct) || pct < 0 || pct >= 100) throw new RangeError(`bad buffer ${buffer}`);
  return Math.ceil(needed / (1 - pct / 100));
}

const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n));

/** Decides the replicas (see the module comment). */
export function decideScale(input: ScaleInput): ScaleOutcome {
  const { autoscaling: a, minReplicas, maxReplicas, currentReplicas, pods, nowMs } = input;
  const fresh = pods.filter((p) => p.fresh);
  const stale = pods.length - fresh.length;
  const connections = fresh.reduce((n, p) => n + p.connections, 0);
  const needed = Math.ceil(connections / a.targetConnectionsPerPod);
  const lagHigh = a.eventLoopLagP99Ms !== undefined && fresh.length > 0 && fresh.every((p) => p.eventLoopLagP99Ms > a.eventLoopLagP99Ms!);
  const load = clamp(withBuffer(needed, a.buffer), minReplicas, maxReplicas);
  const recommendation: Recommendation = { atMs: nowMs, replicas: load, lagHigh };
  const capacityOf = (n: number) => n * a.targetConnectionsPerPod;
  const loadReason = `load: ${connections} connections / ${a.targetConnectionsPerPod} per pod + buffer ${String(a.buffer)}`;

  const within = (windowMs: number) => [...input.history.filter((r) => r.atMs > nowMs - windowMs && r.atMs <= nowMs), recommendation];
  // Lag: high now and in every recommendation of the sustain window, which the history covers
  // (its oldest entry in the window at most one report gap after the window's start).
  const lagWindow = input.history.filter((r) => r.atMs >= nowMs - LAG_SUSTAIN_MS && r.atMs < nowMs);
  const oldest = Math.min(...lagWindow.map((r) => r.atMs));
  const lagSustained = lagHigh && lagWindow.every((r) => r.lagHigh) && oldest <= nowMs - LAG_SUSTAIN_MS + LAG_REPORT_GAP_MS;

  // The bounds are the user's word: outside them the cluster goes straight to them.
  if (currentReplicas > maxReplicas || currentReplicas < minReplicas) {
    const replicas = clamp(currentReplicas, minReplicas, maxReplicas);
    return { replicas, reason: `spec bounds: minReplicas ${minReplicas}, maxReplicas ${maxReplicas}`, recommendation, connections, capacity: capacityOf(replicas) };
  }
  const upTarget = Math.min(...within(a.scaleUpStabilizationSeconds * 1000).map((r) => r.replicas));
  const lagTarget = lagSustained ? Math.min(maxReplicas, currentReplicas + 1) : 0;
  const up = Math.max(upTarget, lagTarget);
  if (up > currentReplicas) {
    const reason = up === lagTarget && lagTarget > upTarget ? `event-loop lag p99 above ${a.eventLoopLagP99Ms} ms for ${LAG_SUSTAIN_MS / 1000} s` : loadReason;
    return { replicas: up, reason, recommendation, connections, capacity: capacityOf(up) };
  }
  const keep = (reason: string): ScaleOutcome => ({ replicas: currentReplicas, reason, recommendation, connections, capacity: capacityOf(currentReplicas) });
  const downWindowMs = a.scaleDownStabilizationSeconds * 1000;
  const downTarget = Math.max(...within(downWindowMs).map((r) => r.replicas));
  if (downTarget < currentReplicas) {
    if (stale > 0) return keep(`no scale-down: ${stale} pod(s) without a fresh report`);
    if (lagHigh) return keep("no scale-down: event-loop lag p99 above its threshold");
    if (input.scaleDownInFlight) return keep("no scale-down: the previous one is still draining");
    if (nowMs - input.historySinceMs < downWindowMs) return keep(`no scale-down: load seen for ${Math.floor((nowMs - input.historySinceMs) / 1000)} s of the ${a.scaleDownStabilizationSeconds} s window`);
    const replicas = Math.max(downTarget, currentReplicas - a.maxScaleDownStep, minReplicas);
    return { replicas, reason: loadReason, recommendation, connections, capacity: capacityOf(replicas) };
  }
  return keep(loadReason);
}
