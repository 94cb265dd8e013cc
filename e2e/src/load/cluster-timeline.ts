import { setTimeout as sleep } from "node:timers/promises";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { parseRingDocument, type RingDocument } from "@switchboard/ring";
import type { LocalCluster } from "../cluster/local-cluster.ts";

/**
 * A SignalingCluster watched as a person would watch it (`kubectl get signalingclusters -w`, the
 * ring ConfigMap, the pods), sampled every `intervalMs` into a timeline, for the autoscaling test
 * and the demo: what the operator wanted, what is ready, and each ring member's state.
 */

/** One look at the cluster. */
export interface ClusterSample {
  /** performance.now() of the sample. */
  readonly atMs: number;
  readonly desired: number | undefined;
  readonly ready: number | undefined;
  readonly connections: number | undefined;
  readonly capacity: number | undefined;
  readonly lastScaleReason: string | undefined;
  readonly ring: RingDocument | undefined;
  /** The status's RingConverged condition is True. */
  readonly converged: boolean;
  /** Pods by name: terminating or not. */
  readonly pods: ReadonlyMap<string, { uid: string; terminating: boolean; ready: boolean }>;
}

interface ClusterStatusJson {
  status?: {
    desiredReplicas?: number;
    readyReplicas?: number;
    connections?: number;
    capacity?: number;
    lastScaleReason?: string;
    conditions?: { type: string; status: string }[];
  };
}

/** See the module comment. */
export class ClusterTimeline {
  readonly samples: ClusterSample[] = [];
  readonly #cluster: LocalCluster;
  readonly #custom: CustomObjectsApi;
  readonly #namespace: string;
  readonly #name: string;
  #running = false;
  #loop: Promise<void> | null = null;

  constructor(cluster: LocalCluster, namespace: string, name: string) {
    this.#cluster = cluster;
    this.#custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#namespace = namespace;
    this.#name = name;
  }

  /** Starts sampling; `onSample` sees each sample as it is taken. */
  start(intervalMs = 250, onSample?: (s: ClusterSample) => void): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        const s = await this.sample().catch(() => undefined); // a read between two writes: the next one sees it
        if (s !== undefined) {
          this.samples.push(s);
          onSample?.(s);
        }
        await sleep(intervalMs);
      }
    })();
  }

  /** Stops sampling. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** The latest sample, if any. */
  get last(): ClusterSample | undefined {
    return this.samples.at(-1);
  }

  /** Samples taken in [fromMs, toMs] (performance.now() times). */
  between(fromMs: number, toMs = Infinity): ClusterSample[] {
    return this.samples.filter((s) => s.atMs >= fromMs && s.atMs <= toMs);
  }

  /** Takes one sample now. */
  async sample(): Promise<ClusterSample> {
    const ns = this.#namespace;
    const [sc, cm, pods] = await Promise.all([
      this.#custom.getNamespacedCustomObject({ group: "switchboard.dev", version: "v1alpha1", namespace: ns, plural: "signalingclusters", name: this.#name }) as Promise<ClusterStatusJson>,
      this.#cluster.core.readNamespacedConfigMap({ namespace: ns, name: `${this.#name}-ring` }).catch(() => undefined),
      this.#cluster.core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${this.#name},app.kubernetes.io/component=signaling` }),
    ]);
    const text = cm?.data?.["ring.json"];
    const st = sc.status;
    return {
      atMs: performance.now(),
      desired: st?.desiredReplicas,
      ready: st?.readyReplicas,
      connections: st?.connections,
      capacity: st?.capacity,
      lastScaleReason: st?.lastScaleReason,
      ring: text === undefined ? undefined : parseRingDocument(text),
      converged: st?.conditions?.some((c) => c.type === "RingConverged" && c.status === "True") ?? false,
      pods: new Map(
        pods.items.map((p) => [
          p.metadata?.name ?? "",
          {
            uid: p.metadata?.uid ?? "",
            terminating: p.metadata?.deletionTimestamp !== undefined,
            ready: p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
          },
        ]),
      ),
    };
  }
}

/** `demo-0:ACTIVE demo-1:LEAVING …` */
export function describeRing(ring: RingDocument | undefined): string {
  return ring === undefined ? "(no ring)" : ring.members.map((m) => `${m.name}:${m.state}`).join(" ") || "(empty)";
}

/** Whether a sample shows `replicas` pods, every one Ready, ACTIVE in a converged ring, none terminating. */
export function settledAt(s: ClusterSample, replicas: number): boolean {
  const members = s.ring?.members ?? [];
  return (
    s.desired === replicas &&
    s.ready === replicas &&
    s.converged &&
    members.length === replicas &&
    members.every((m) => m.state === "ACTIVE") &&
    s.pods.size === replicas &&
    [...s.pods.values()].every((p) => p.ready && !p.terminating)
  );
}
