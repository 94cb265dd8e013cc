/**
 * One reconcile of one SignalingCluster as a pure function: (spec, observed objects, pods' reports,
 * the replicas wanted) → the objects to apply, the ring to write, the pods to drain, the status and
 * the events. The Kubernetes I/O that feeds it and carries the result out is `controller.ts`.
 *
 * @module
 */
import type { RingDocument } from "@switchboard/ring";
import type { SignalingClusterStatus } from "../api/signaling-cluster.ts";
import { mergeConditions, type ConditionDecision } from "./conditions.ts";
import { ringConfigMap, statefulSet, supportingObjects, TERMINATION_GRACE_EXTRA_SECONDS, type KubeObject } from "./desired-objects.ts";
import { SIGNALING_PORT, clusterId, selectorString } from "./names.ts";
import { appliedVersions, REPORT_MAX_AGE_MS, type Observed } from "./observed.ts";
import { planRing, type RingTransition } from "./ring-plan.ts";

/** How many pods the cluster should have, and why (from spec.replicas or the autoscaler). */
export interface ScaleDecision {
  readonly replicas: number;
  readonly reason: string;
  /** Connections the wanted pods carry at the autoscaling target (autoscaled clusters only). */
  readonly capacity?: number;
}

/** A Kubernetes Event to record on the SignalingCluster. */
export interface ClusterEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

/** What one reconcile decided. */
export interface ReconcileResult {
  /** Objects to apply first, in order (identity, RBAC, Services, PDB). */
  readonly supporting: readonly KubeObject[];
  /** The ring ConfigMap to write (conditional on the observed resourceVersion), or undefined when unchanged. */
  readonly ring: KubeObject | undefined;
  /** The next ring document (what `ring` holds, or the current one). */
  readonly ringDocument: RingDocument;
  /** The StatefulSet to apply after the ring. */
  readonly statefulSet: KubeObject;
  /** Pods to delete (each LEAVING in a converged ring), with their UID as a precondition. */
  readonly deletePods: readonly { readonly name: string; readonly uid: string }[];
  readonly status: SignalingClusterStatus;
  readonly events: readonly ClusterEvent[];
  /** When to reconcile again at the latest (sooner while something is in flight). */
  readonly requeueAfterMs: number;
}

/** Look again this soon while pods join, leave or roll (reports are polled about as often). */
export const PROGRESS_REQUEUE_MS = 2000;
/** The periodic full reconcile of a stable cluster (the watches have no resync of their own). */
export const STABLE_REQUEUE_MS = 30_000;

/** The scale decision of a cluster without autoscaling: spec.replicas, within min and max. */
export function specScale(o: Observed): ScaleDecision {
  const { replicas, minReplicas, maxReplicas } = o.cluster.spec;
  return { replicas: Math.min(maxReplicas, Math.max(minReplicas, replicas)), reason: "spec.replicas" };
}

/** Reconciles one SignalingCluster (see the module comment). */
export function reconcile(o: Observed, scale: ScaleDecision): ReconcileResult {
  const { cluster, pods, nowMs } = o;
  const nowIso = new Date(nowMs).toISOString();
  const generation = cluster.metadata.generation ?? 0;
  const previous = cluster.status;
  const current: RingDocument = o.ring?.doc ?? { version: 0, members: [] };
  const applied = appliedVersions(o.reports, nowMs);
  const plan = planRing({
    ring: current,
    pods,
    applied,
    desiredReplicas: scale.replicas,
    currentReplicas: o.statefulSet?.replicas ?? 0,
    updateRevision: o.statefulSet?.updateRevision,
    port: SIGNALING_PORT,
    nowIso,
  });
  const writeRing = plan.changed || o.ring === undefined;

  const events: ClusterEvent[] = [];
  const previousDesired = previous?.desiredReplicas;
  const scaled = previousDesired !== undefined && previousDesired !== scale.replicas;
  if (scaled) {
    events.push({
      type: "Normal",
      reason: scale.replicas > previousDesired ? "ScalingUp" : "ScalingDown",
      message: `replicas ${previousDesired} → ${scale.replicas} (${scale.reason})`,
    });
  }
  if (plan.changed) events.push({ type: "Normal", reason: "RingUpdated", message: `ring version ${plan.ring.version}: ${describe(plan.transitions)}` });
  for (const p of plan.deletePods) {
    events.push({ type: "Normal", reason: "DrainStarted", message: `pod ${p.name} left the ring (its rooms moved); deleting it to drain and replace it` });
  }
  const failing = pods.filter((p) => p.problem !== undefined).map((p) => `${p.name}: ${p.problem}`);
  for (const f of failing) events.push({ type: "Warning", reason: "PodFailing", message: f });
  const overdueMs = (cluster.spec.drainTimeoutSeconds + TERMINATION_GRACE_EXTRA_SECONDS) * 1000;
  const overdue = pods.filter((p) => p.terminatingSinceMs !== undefined && nowMs - p.terminatingSinceMs > overdueMs).map((p) => p.name);
  for (const name of overdue) events.push({ type: "Warning", reason: "DrainOverdue", message: `pod ${name} is still terminating past its drain deadline` });

  const readyPods = pods.filter((p) => p.ready && p.terminatingSinceMs === undefined).length;
  const updated = pods.filter((p) => o.statefulSet?.updateRevision !== undefined && p.revision === o.statefulSet.updateRevision).length;
  const converged = !plan.changed && plan.converged;
  const silent = pods.filter((p) => p.ready && p.terminatingSinceMs === undefined && !(p.name in applied)).map((p) => p.name);
  const allActive = plan.ring.members.length === scale.replicas && plan.ring.members.every((m) => m.state === "ACTIVE");
  const steady =
    converged && allActive && readyPods === scale.replicas && pods.length === scale.replicas && plan.outdatedPods.length === 0 && o.statefulSet?.updateRevision !== undefined;

  const progressing: ConditionDecision = steady
    ? { type: "Progressing", status: "False", reason: "Stable", message: `${readyPods} pods ready and ACTIVE` }
    : { type: "Progressing", status: "True", ...progressReason(plan.outdatedPods.length, pods.length, scale.replicas, plan.transitions) };
  const degradedReasons: string[] = [];
  if (failing.length > 0) degradedReasons.push(`pods failing: ${failing.join("; ")}`);
  if (overdue.length > 0) degradedReasons.push(`drain overdue: ${overdue.join(", ")}`);
  if (silent.length > 0) degradedReasons.push(`no report for ${REPORT_MAX_AGE_MS / 1000} s from ${silent.join(", ")}`);
  const degraded: ConditionDecision =
    degradedReasons.length > 0
      ? {
          type: "Degraded",
          status: "True",
          reason: failing.length > 0 ? "PodsFailing" : overdue.length > 0 ? "DrainOverdue" : "PodsNotReporting",
          message: degradedReasons.join("; "),
        }
      : { type: "Degraded", status: "False", reason: "AsExpected", message: "no faults seen" };
  const conditions = mergeConditions(
    previous?.conditions,
    [
      steady
        ? { type: "Ready", status: "True", reason: "AllPodsActive", message: `${readyPods}/${scale.replicas} pods ready, ACTIVE in ring version ${plan.ring.version}` }
        : { type: "Ready", status: "False", reason: "NotAllPodsActive", message: `${readyPods}/${scale.replicas} pods ready; ${progressing.message}` },
      progressing,
      converged
        ? { type: "RingConverged", status: "True", reason: "AllPodsApplied", message: `every pod applied ring version ${plan.ring.version}` }
        : {
            type: "RingConverged",
            status: "False",
            reason: plan.changed ? "RingChanged" : "Applying",
            message: `waiting for ${plan.ring.members.filter((m) => applied[m.name] !== plan.ring.version).map((m) => m.name).join(", ") || "the pods"} to apply ring version ${plan.ring.version}`,
          },
      degraded,
      // kstatus (Argo CD, Flux, kpt, cli-utils): Reconciling while work is under way, Stalled when
      // it cannot go on by itself (pods that will not start); with observedGeneration and Ready.
      { ...progressing, type: "Reconciling" },
      failing.length > 0
        ? { type: "Stalled", status: "True", reason: "PodsFailing", message: `pods failing: ${failing.join("; ")}` }
        : { type: "Stalled", status: "False", reason: "AsExpected", message: "nothing blocks progress" },
    ],
    generation,
    nowIso,
  );

  const connections = [...o.reports.values()].filter((r) => nowMs - r.atMs <= REPORT_MAX_AGE_MS).reduce((sum, r) => sum + r.report.connections, 0);
  const status: SignalingClusterStatus = {
    observedGeneration: generation,
    replicas: pods.length,
    readyReplicas: readyPods,
    updatedReplicas: updated,
    desiredReplicas: scale.replicas,
    selector: selectorString(cluster.metadata.name),
    clusterId: clusterId(cluster.metadata.name, cluster.metadata.uid),
    connections,
    ...(scale.capacity !== undefined ? { capacity: scale.capacity } : {}),
    ring: {
      version: plan.ring.version,
      converged,
      members: plan.ring.members.map((m) => ({
        name: m.name,
        state: m.state,
        address: m.address,
        ...(applied[m.name] !== undefined ? { appliedVersion: applied[m.name] } : {}),
      })),
    },
    conditions,
    ...(scaled ? { lastScaleTime: nowIso, lastScaleReason: scale.reason } : pickScale(previous)),
  };

  return {
    supporting: supportingObjects(cluster),
    ring: writeRing ? ringConfigMap(cluster, plan.ring, o.ring?.resourceVersion) : undefined,
    ringDocument: plan.ring,
    statefulSet: statefulSet(cluster, plan.statefulSetReplicas),
    deletePods: plan.deletePods,
    status,
    events,
    requeueAfterMs: steady ? STABLE_REQUEUE_MS : PROGRESS_REQUEUE_MS,
  };
}

function pickScale(previous: SignalingClusterStatus | undefined): Pick<SignalingClusterStatus, "lastScaleTime" | "lastScaleReason"> {
  return {
    ...(previous?.lastScaleTime !== undefined ? { lastScaleTime: previous.lastScaleTime } : {}),
    ...(previous?.lastScaleReason !== undefined ? { lastScaleReason: previous.lastScaleReason } : {}),
  };
}

function progressReason(outdated: number, pods: number, desired: number, transitions: readonly RingTransition[]): { reason: string; message: string } {
  if (pods < desired) return { reason: "ScalingUp", message: `${pods} of ${desired} pods exist` };
  if (pods > desired) return { reason: "ScalingDown", message: `${pods - desired} pods leaving and draining` };
  if (outdated > 0) return { reason: "RollingUpdate", message: `${outdated} pods to replace, one at a time, each drained first` };
  if (transitions.length > 0) return { reason: "RingChanging", message: describe(transitions) };
  return { reason: "Converging", message: "waiting for pods to be ready, ACTIVE and on the current ring" };
}

function describe(transitions: readonly RingTransition[]): string {
  return transitions.map((t) => (t.to === undefined ? `${t.name} removed` : t.from === undefined ? `${t.name} ${t.to}` : `${t.name} ${t.from}→${t.to}`)).join(", ");
}
