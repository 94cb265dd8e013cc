/**
 * The operator's Kubernetes edge for SignalingClusters: watches (SignalingClusters, their
 * StatefulSets, pods and ring ConfigMaps), the pods' reports, a keyed work queue, and for each
 * reconcile the I/O around the pure {@link reconcile}: read the observed objects, apply what it
 * decided (server-side apply, field manager `switchboard-operator`), write the ring conditionally
 * on the resourceVersion it read, delete the pods it drains (UID precondition), write the status
 * and record the events. Every watch event and report change enqueues its cluster; every cluster is
 * reconciled again within 30 s anyway (the watches have no resync).
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import { parseRingDocument, RING_DOCUMENT_KEY, type RingDocument } from "@switchboard/ring";
import { parseSignalingCluster, SIGNALING_CLUSTER_API_VERSION, SIGNALING_CLUSTER_KIND, type SignalingCluster, type SignalingClusterStatus } from "./api/signaling-cluster.ts";
import { isKubeStatus } from "./errors.ts";
import { applyObject, applyStatus, deleteObject } from "./kube/apply.ts";
import type { EventRecorder, InvolvedObject } from "./kube/events.ts";
import type { KubeHttp } from "./kube/http.ts";
import { errorFields, type KubeLogger } from "./kube/logger.ts";
import { Reflector } from "./kube/reflector.ts";
import { MANAGED_KINDS } from "./kube/resources.ts";
import type { KubeObject } from "./kube/wire.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { Autoscaler } from "./autoscale/autoscaler.ts";
import { PodReports, type PollTarget } from "./pod-reports.ts";
import { WorkQueue } from "./work-queue.ts";
import { FIELD_MANAGER, SIGNALING_PORT, clusterNames } from "./reconcile/names.ts";
import { fromPod, fromStatefulSet, type Observed, type PodView } from "./reconcile/observed.ts";
import { reconcile, type ScaleDecision } from "./reconcile/reconcile.ts";

/** Decides the replicas of a cluster (tests plug a fixed policy in here). */
export type ScalePolicy = (observed: Observed) => ScaleDecision;

/** Options of {@link ClusterController}. */
export interface ClusterControllerOptions {
  readonly client: KubeHttp;
  readonly events: EventRecorder;
  readonly metrics: OperatorMetrics;
  readonly log: KubeLogger;
  /** Watch only this namespace. @default every namespace */
  readonly namespace?: string;
  /** @default the {@link Autoscaler} (spec.replicas for clusters without autoscaling) */
  readonly scale?: ScalePolicy;
  /** How often pods are asked for their report, in ms. @default 2000 */
  readonly reportIntervalMs?: number;
}

const INSTANCE_LABEL = "app.kubernetes.io/instance";
const MANAGED_SELECTOR = "app.kubernetes.io/managed-by=switchboard-operator";
const POD_SELECTOR = "app.kubernetes.io/name=switchboard,app.kubernetes.io/component=signaling";

/** See the module comment. */
export class ClusterController {
  readonly #o: ClusterControllerOptions;
  readonly #clusters: Reflector;
  readonly #statefulSets: Reflector;
  readonly #pods: Reflector;
  readonly #configMaps: Reflector;
  readonly #reports: PodReports;
  readonly #queue: WorkQueue;
  readonly #autoscaler = new Autoscaler();
  /**
   * The status this process last wrote, per cluster: newer than the cache's until the watch brings
   * the write back. Decisions read from the cache alone would, in that moment, undo what the last
   * reconcile decided (a scale-down just started, the last scale time and reason). Only the leader
   * writes the status; a new leader starts from a fresh list.
   */
  readonly #written = new Map<string, { uid: string; status: SignalingClusterStatus }>();
  readonly #abort = new AbortController();
  #stopping: Promise<void> | null = null;

  constructor(options: ClusterControllerOptions) {
    this.#o = options;
    this.#queue = new WorkQueue({
      handle: (key) => this.reconcileKey(key),
      onError: (key, err) => options.log.error({ cluster: key, ...errorFields(err) }, "reconcile failed"),
    });
    const reflector = (resource: (typeof MANAGED_KINDS)[keyof typeof MANAGED_KINDS], name: string, labelSelector?: string) =>
      new Reflector(options.client, {
        resource,
        ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
        ...(labelSelector !== undefined ? { labelSelector } : {}),
        logger: options.log,
        onRestart: (reason) => options.metrics.watchRestarts.inc({ resource: name, reason }),
      });
    this.#clusters = reflector(MANAGED_KINDS[`${SIGNALING_CLUSTER_API_VERSION}/SignalingCluster`], "signalingclusters");
    this.#statefulSets = reflector(MANAGED_KINDS["apps/v1/StatefulSet"], "statefulsets", MANAGED_SELECTOR);
    this.#pods = reflector(MANAGED_KINDS["v1/Pod"], "pods", POD_SELECTOR);
    this.#configMaps = reflector(MANAGED_KINDS["v1/ConfigMap"], "configmaps", MANAGED_SELECTOR);
    this.#reports = new PodReports({
      targets: () => this.#pollTargets(),
      onChange: (key) => this.#queue.add(key),
      onRound: () => this.#sampleLoad(),
      intervalMs: options.reportIntervalMs ?? 2000,
    });
  }

  /** Starts the watches and the report polling; reconciles begin as objects are seen. */
  start(): void {
    this.#clusters.subscribe((type, obj) => {
      const key = keyOf(obj);
      if (type === "DELETED") {
        this.#queue.forget(key);
        this.#autoscaler.forget(key);
        this.#written.delete(key);
        this.#o.metrics.forgetCluster(obj.metadata.namespace ?? "", obj.metadata.name ?? "");
      } else this.#queue.add(key);
    });
    for (const r of [this.#statefulSets, this.#pods, this.#configMaps]) {
      r.subscribe((_type, obj) => {
        const instance = obj.metadata.labels?.[INSTANCE_LABEL];
        if (instance !== undefined) this.#queue.add(`${obj.metadata.namespace ?? ""}/${instance}`);
      });
    }
    for (const r of [this.#clusters, this.#statefulSets, this.#pods, this.#configMaps]) r.start();
    this.#reports.start();
  }

  /** Whether every watch has listed once (reconciles before that would act on a partial view). */
  get synced(): boolean {
    return [this.#clusters, this.#statefulSets, this.#pods, this.#configMaps].every((r) => r.hasSynced);
  }

  /** Reconciles one cluster (`namespace/name`): the work queue's handler. */
  async reconcileKey(key: string): Promise<void> {
    if (!this.synced) {
      this.#queue.addAfter(key, 200);
      return;
    }
    const [namespace = "", name = ""] = key.split("/");
    const raw = this.#clusters.get(namespace, name);
    if (raw === undefined || raw.metadata.deletionTimestamp !== undefined) return;
    const started = performance.now();
    let result = "ok";
    try {
      result = await this.#reconcile(raw);
    } catch (err) {
      result = "error";
      throw err;
    } finally {
      this.#o.metrics.reconciles.inc({ result });
      this.#o.metrics.reconcileSeconds.observe((performance.now() - started) / 1000);
    }
  }

  /** Stops the watches, the polling and the writes under way. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#abort.abort();
      await Promise.all([this.#queue.stop(), this.#reports.stop(), ...[this.#clusters, this.#statefulSets, this.#pods, this.#configMaps].map((r) => r.stop())]);
    })();
    return this.#stopping;
  }

  async #reconcile(raw: KubeObject): Promise<string> {
    const { client, log } = this.#o;
    const parsed = parseSignalingCluster(raw);
    const involved = involvedOf(raw);
    if (!parsed.ok) {
      const message = `the spec cannot be used: ${parsed.issues.join("; ")}`;
      this.#o.events.record(involved, "Warning", "InvalidSpec", message);
      log.warn({ cluster: keyOf(raw), issues: parsed.issues }, "invalid SignalingCluster");
      return "invalid";
    }
    const cluster = this.#withWrittenStatus(parsed.cluster);
    const observed = this.#observe(cluster);
    const decision = this.#o.scale ? this.#o.scale(observed) : this.#autoscaler.decide(observed);
    const plan = reconcile(observed, decision);
    const apply = { fieldManager: FIELD_MANAGER, signal: this.#abort.signal };

    for (const obj of plan.supporting) await applyObject(client, obj, apply);
    if (plan.ring !== undefined) {
      try {
        await applyObject(client, plan.ring, apply);
      } catch (err) {
        // Someone (or this operator, a moment ago) wrote the ring since it was read: read again.
        if (isKubeStatus(err, 409)) {
          this.#queue.addAfter(keyOf(raw), 100);
          return "conflict";
        }
        throw err;
      }
    }
    await applyObject(client, plan.statefulSet, apply);
    for (const pod of plan.deletePods) {
      await deleteObject(client, { apiVersion: "v1", kind: "Pod", namespace: cluster.metadata.namespace, name: pod.name }, { uid: pod.uid, ignoreNotFound: true, signal: this.#abort.signal });
    }
    // Compared with what the cache holds (the API's last word), not with what this process wrote.
    if (!isDeepStrictEqual(stripUndefined(plan.status), stripUndefined(parsed.cluster.status ?? {}))) {
      await applyStatus(client, { apiVersion: SIGNALING_CLUSTER_API_VERSION, kind: SIGNALING_CLUSTER_KIND, namespace: cluster.metadata.namespace, name: cluster.metadata.name }, plan.status, apply);
      this.#written.set(keyOf(raw), { uid: cluster.metadata.uid, status: plan.status });
    }
    for (const e of plan.events) this.#o.events.record(involved, e.type, e.reason, e.message);
    if (plan.events.length > 0) log.info({ cluster: keyOf(raw), events: plan.events.map((e) => `${e.reason}: ${e.message}`) }, "reconciled");
    const { namespace, name } = cluster.metadata;
    this.#o.metrics.observeCluster(namespace, name, plan.status, observed.pods.filter((p) => p.terminatingSinceMs !== undefined).length);
    for (const e of plan.events) {
      if (e.reason === "ScalingUp") this.#o.metrics.scaled(namespace, name, "up");
      else if (e.reason === "ScalingDown") this.#o.metrics.scaled(namespace, name, "down");
    }
    this.#queue.addAfter(keyOf(raw), plan.requeueAfterMs);
    return "ok";
  }

  /**
   * After each report round: one recommendation per autoscaled cluster (the stabilization windows
   * need a sample every round, not only when something else made a reconcile run), and a reconcile
   * of those whose wanted replicas changed. A stable cluster is otherwise reconciled every 30 s.
   */
  #sampleLoad(): void {
    if (!this.synced || this.#o.scale !== undefined) return;
    for (const raw of this.#clusters.list()) {
      if (raw.metadata.deletionTimestamp !== undefined) continue;
      const parsed = parseSignalingCluster(raw);
      if (!parsed.ok || !parsed.cluster.spec.autoscaling.enabled) continue;
      try {
        const cluster = this.#withWrittenStatus(parsed.cluster);
        const outcome = this.#autoscaler.evaluate(this.#observe(cluster));
        if (outcome !== undefined && outcome.replicas !== cluster.status?.desiredReplicas) this.#queue.add(keyOf(raw));
      } catch (err) {
        this.#o.log.error({ cluster: keyOf(raw), ...errorFields(err) }, "load sample failed");
      }
    }
  }

  #withWrittenStatus(cluster: SignalingCluster): SignalingCluster {
    const written = this.#written.get(`${cluster.metadata.namespace}/${cluster.metadata.name}`);
    return written !== undefined && written.uid === cluster.metadata.uid ? { ...cluster, status: written.status } : cluster;
  }

  #observe(cluster: SignalingCluster): Observed {
    const { namespace, name, uid } = cluster.metadata;
    const names = clusterNames(name);
    const owned = (obj: KubeObject | undefined) => (obj?.metadata.ownerReferences?.some((r) => r.uid === uid) ? obj : undefined);
    const sts = owned(this.#statefulSets.get(namespace, names.statefulSet));
    const pods = this.#clusterPods(namespace, name);
    const cm = owned(this.#configMaps.get(namespace, names.ringConfigMap));
    let ring: Observed["ring"];
    const text = (cm?.["data"] as Record<string, string> | undefined)?.[RING_DOCUMENT_KEY];
    if (cm !== undefined && text !== undefined) {
      let doc: RingDocument | undefined;
      try {
        doc = parseRingDocument(text);
      } catch (err) {
        // A ring edited into nonsense by hand: rewritten from what the operator knows (conditionally).
        this.#o.log.warn({ cluster: `${namespace}/${name}`, ...errorFields(err) }, "ring ConfigMap holds an invalid document");
      }
      ring = { doc: doc ?? { version: 0, members: [] }, resourceVersion: cm.metadata.resourceVersion ?? "" };
    }
    return {
      cluster,
      statefulSet: sts === undefined ? undefined : fromStatefulSet(sts),
      pods,
      ring,
      reports: this.#reports.readings(`${namespace}/${name}`, pods),
      nowMs: Date.now(),
    };
  }

  #clusterPods(namespace: string, name: string): PodView[] {
    const sts = clusterNames(name).statefulSet;
    return this.#pods
      .list()
      .filter((p) => p.metadata.namespace === namespace && p.metadata.labels?.[INSTANCE_LABEL] === name)
      .flatMap((p) => fromPod(sts, p as Parameters<typeof fromPod>[1]) ?? []);
  }

  #pollTargets(): PollTarget[] {
    const targets: PollTarget[] = [];
    for (const c of this.#clusters.list()) {
      const namespace = c.metadata.namespace ?? "";
      const name = c.metadata.name ?? "";
      for (const p of this.#clusterPods(namespace, name)) {
        if (p.ip !== undefined) targets.push({ cluster: `${namespace}/${name}`, name: p.name, uid: p.uid, ip: p.ip, port: SIGNALING_PORT });
      }
    }
    return targets;
  }
}

function keyOf(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ""}/${obj.metadata.name ?? ""}`;
}

function involvedOf(obj: KubeObject): InvolvedObject {
  return {
    apiVersion: SIGNALING_CLUSTER_API_VERSION,
    kind: SIGNALING_CLUSTER_KIND,
    name: obj.metadata.name ?? "",
    namespace: obj.metadata.namespace ?? "",
    uid: obj.metadata.uid ?? "",
  };
}

/** JSON round trip: drops `undefined` fields so a computed status compares equal to one read back. */
function stripUndefined(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}
