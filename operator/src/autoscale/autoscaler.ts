/**
 * The autoscaler of the controller: for each SignalingCluster with `spec.autoscaling.enabled`, turns
 * what a reconcile observed into the input of the pure {@link decideScale} and remembers its
 * recommendations for the stabilization windows. Without autoscaling it is {@link specScale}.
 *
 * The history lives in this process only. An operator that restarts, or a standby that takes the
 * Lease, starts with none and says so (`historySinceMs`): it scales up at once but never down until
 * it has watched the load for a whole scale-down window — the conservative side of a restart. A
 * scale-down it inherits half done (status.desiredReplicas already lowered, a pod LEAVING) carries
 * on, since the wanted count is read back from the status.
 *
 * @module
 */
import { specScale, type ScaleDecision } from "../reconcile/reconcile.ts";
import { REPORT_MAX_AGE_MS, type Observed } from "../reconcile/observed.ts";
import { decideScale, LAG_SUSTAIN_MS, type PodLoad, type Recommendation, type ScaleOutcome } from "./policy.ts";

interface ClusterHistory {
  /** The cluster's UID: a cluster deleted and made again under the same name starts afresh. */
  readonly uid: string;
  readonly sinceMs: number;
  recommendations: Recommendation[];
}

/** See the module comment. */
export class Autoscaler {
  readonly #history = new Map<string, ClusterHistory>();

  /**
   * The replicas a cluster should have now, and why. With autoscaling on, each call is one
   * recommendation of the history (the controller calls it once per report round and once per
   * reconcile).
   */
  decide(o: Observed): ScaleDecision {
    const outcome = this.evaluate(o);
    if (outcome === undefined) return specScale(o);
    return { replicas: outcome.replicas, reason: outcome.reason, capacity: outcome.capacity };
  }

  /** The full outcome for an autoscaled cluster (undefined when autoscaling is off: its history is dropped). */
  evaluate(o: Observed): ScaleOutcome | undefined {
    const { cluster, nowMs } = o;
    const key = `${cluster.metadata.namespace}/${cluster.metadata.name}`;
    const a = cluster.spec.autoscaling;
    if (!a.enabled) {
      this.#history.delete(key);
      return undefined;
    }
    let h = this.#history.get(key);
    if (h === undefined || h.uid !== cluster.metadata.uid) {
      h = { uid: cluster.metadata.uid, sinceMs: nowMs, recommendations: [] };
      this.#history.set(key, h);
    }
    // The status is the one this process wrote last (the controller's, not its cache's, which may
    // be a write behind): deciding from an older value would undo a scale-down just started.
    const currentReplicas = cluster.status?.desiredReplicas ?? o.statefulSet?.replicas ?? cluster.spec.minReplicas;
    const outcome = decideScale({
      autoscaling: a,
      minReplicas: cluster.spec.minReplicas,
      maxReplicas: cluster.spec.maxReplicas,
      currentReplicas,
      pods: podLoads(o),
      history: h.recommendations,
      historySinceMs: h.sinceMs,
      scaleDownInFlight: scaleDownInFlight(o, currentReplicas),
      nowMs,
    });
    const keepMs = Math.max(a.scaleUpStabilizationSeconds, a.scaleDownStabilizationSeconds) * 1000 + LAG_SUSTAIN_MS;
    h.recommendations = [...h.recommendations.filter((r) => r.atMs > nowMs - keepMs), outcome.recommendation];
    return outcome;
  }

  /** Drops a deleted cluster's history. */
  forget(key: string): void {
    this.#history.delete(key);
  }
}

/**
 * One reading per pod that should report: every pod not being deleted (a new pod that has not
 * answered yet counts as missing, so it blocks a scale-down until it reports). A pod being deleted
 * still carries its clients until they moved: its fresh reading counts, its missing one does not.
 */
export function podLoads(o: Observed): PodLoad[] {
  const loads: PodLoad[] = [];
  for (const p of o.pods) {
    const r = o.reports.get(p.name);
    const fresh = r !== undefined && o.nowMs - r.atMs <= REPORT_MAX_AGE_MS;
    if (!fresh && p.terminatingSinceMs !== undefined) continue;
    loads.push({ pod: p.name, fresh, connections: fresh ? r.report.connections : 0, eventLoopLagP99Ms: fresh ? r.report.eventLoopLagP99Ms : 0 });
  }
  return loads;
}

/** Whether pods of an earlier scale-down are still there (past the wanted count, LEAVING, or terminating). */
function scaleDownInFlight(o: Observed, wanted: number): boolean {
  if (o.pods.some((p) => p.terminatingSinceMs !== undefined)) return true;
  if (o.ring?.doc.members.some((m) => m.state === "LEAVING")) return true;
  return o.pods.length > wanted;
}
