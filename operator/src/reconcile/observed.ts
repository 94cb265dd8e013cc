/**
 * What the reconcile reads: the few facts of each observed object that decisions depend on,
 * extracted once at the edge (`fromPod`, `fromStatefulSet`) so the reconcile is a function of
 * plain values and its tests are tables.
 *
 * @module
 */
import type { PodReport, RingDocument } from "@switchboard/ring";
import type { SignalingCluster } from "../api/signaling-cluster.ts";
import { podOrdinal } from "./names.ts";

/** One pod of the cluster's StatefulSet. */
export interface PodView {
  readonly name: string;
  readonly uid: string;
  readonly ordinal: number;
  /** Pod IP, once the pod has one. */
  readonly ip: string | undefined;
  /** The pod's Ready condition. */
  readonly ready: boolean;
  /** Set once the pod is being deleted (its drain runs): when that started, in ms. */
  readonly terminatingSinceMs: number | undefined;
  /** The StatefulSet revision the pod was made from (`controller-revision-hash`). */
  readonly revision: string | undefined;
  /**
   * Why a container of the pod cannot run, when it cannot (`CrashLoopBackOff`,
   * `CreateContainerConfigError` for a missing Secret key, `ErrImagePull`, …).
   */
  readonly problem: string | undefined;
}

/** The cluster's StatefulSet, as far as decisions need it. */
export interface StatefulSetView {
  readonly replicas: number;
  /** The revision pods should run; undefined until the controller has observed the current spec. */
  readonly updateRevision: string | undefined;
}

/** A pod's last report (`GET /status`) and when it was read. */
export interface ReportReading {
  readonly report: PodReport;
  readonly atMs: number;
}

/** Everything one reconcile of one SignalingCluster reads. */
export interface Observed {
  readonly cluster: SignalingCluster;
  readonly statefulSet: StatefulSetView | undefined;
  readonly pods: readonly PodView[];
  /** The ring document of the ConfigMap, and its resourceVersion; undefined when it does not exist. */
  readonly ring: { readonly doc: RingDocument; readonly resourceVersion: string } | undefined;
  /** Last report of each pod, by pod name. */
  readonly reports: ReadonlyMap<string, ReportReading>;
  readonly nowMs: number;
}

/** A report older than this is not used (its pod may be gone or stuck). */
export const REPORT_MAX_AGE_MS = 10_000;

/** The ring versions pods report, fresh reports only, by pod name. */
export function appliedVersions(reports: ReadonlyMap<string, ReportReading>, nowMs: number): Record<string, number> {
  const applied: Record<string, number> = {};
  for (const [name, { report, atMs }] of reports) {
    if (nowMs - atMs <= REPORT_MAX_AGE_MS) applied[name] = report.ring.version;
  }
  return applied;
}

// The subset of a Pod and a StatefulSet the views are made of (as JSON from the API).
interface RawPod {
  metadata?: { name?: string; uid?: string; deletionTimestamp?: string | Date; labels?: Record<string, string> };
  status?: {
    podIP?: string;
    conditions?: { type?: string; status?: string }[];
    containerStatuses?: { name?: string; state?: { waiting?: { reason?: string; message?: string } } }[];
  };
}
interface RawStatefulSet {
  metadata?: { generation?: number };
  spec?: { replicas?: number };
  status?: { observedGeneration?: number; updateRevision?: string };
}

/** The view of a raw Pod of StatefulSet `statefulSet`, or undefined for a pod that is not one of its ordinals. */
export function fromPod(statefulSet: string, pod: RawPod): PodView | undefined {
  const name = pod.metadata?.name;
  const uid = pod.metadata?.uid;
  if (name === undefined || uid === undefined) return undefined;
  const ordinal = podOrdinal(statefulSet, name);
  if (ordinal === undefined) return undefined;
  const deletion = pod.metadata?.deletionTimestamp;
  return {
    name,
    uid,
    ordinal,
    ip: pod.status?.podIP || undefined,
    ready: pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    terminatingSinceMs: deletion === undefined ? undefined : new Date(deletion).getTime(),
    revision: pod.metadata?.labels?.["controller-revision-hash"],
    problem: podProblem(pod),
  };
}

// Waiting reasons that mean "will not start by itself"; ContainerCreating and PodInitializing do not.
const PROBLEM_REASONS = new Set(["CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "RunContainerError"]);

function podProblem(pod: RawPod): string | undefined {
  for (const c of pod.status?.containerStatuses ?? []) {
    const w = c.state?.waiting;
    if (w?.reason !== undefined && PROBLEM_REASONS.has(w.reason)) return w.message ? `${w.reason}: ${w.message}` : w.reason;
  }
  return undefined;
}

/** The view of a raw StatefulSet. */
export function fromStatefulSet(sts: RawStatefulSet): StatefulSetView {
  const current = sts.status?.observedGeneration !== undefined && sts.status.observedGeneration >= (sts.metadata?.generation ?? 0);
  return { replicas: sts.spec?.replicas ?? 0, updateRevision: current ? sts.status?.updateRevision : undefined };
}
