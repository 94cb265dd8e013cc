/**
 * `metav1.Condition` bookkeeping: a condition keeps its `lastTransitionTime` while its status
 * stays the same, and every condition carries the generation it was computed for.
 *
 * @module
 */
import type { Condition, ConditionType } from "../api/signaling-cluster.ts";

/** A condition as the reconcile decides it (times and generation are filled by {@link mergeConditions}). */
export interface ConditionDecision {
  readonly type: ConditionType;
  readonly status: Condition["status"];
  readonly reason: string;
  readonly message: string;
}

/**
 * The next conditions: each decision, with `lastTransitionTime` kept from `previous` when the
 * status did not change, else `nowIso`.
 */
export function mergeConditions(previous: readonly Condition[] | undefined, decisions: readonly ConditionDecision[], generation: number, nowIso: string): Condition[] {
  return decisions.map((d) => {
    const before = previous?.find((c) => c.type === d.type);
    const lastTransitionTime = before !== undefined && before.status === d.status ? before.lastTransitionTime : nowIso;
    return { type: d.type, status: d.status, observedGeneration: generation, lastTransitionTime, reason: d.reason, message: d.message };
  });
}
