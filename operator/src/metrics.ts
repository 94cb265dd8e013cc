/**
 * The operator's own metrics (served at `/metrics` of its HTTP port), on a registry of its own.
 *
 * | metric | labels | meaning |
 * |---|---|---|
 * | `switchboard_operator_reconciles_total` | `result` (`ok`, `error`, `invalid`, `conflict`) | reconciles done |
 * | `switchboard_operator_reconcile_duration_seconds` | | time of one reconcile, I/O included |
 * | `switchboard_operator_watch_restarts_total` | `resource`, `reason` | list/watch restarts |
 * | `switchboard_operator_leader` | | 1 while this replica holds the Lease |
 * | `switchboard_operator_desired_replicas` | `signalingcluster_namespace`, `signalingcluster` | pods wanted |
 * | `switchboard_operator_replicas` / `_ready_replicas` | `signalingcluster_namespace`, `signalingcluster` | pods / ready pods |
 * | `switchboard_operator_ring_version` | `signalingcluster_namespace`, `signalingcluster` | the ring version written |
 * | `switchboard_operator_ring_converged` | `signalingcluster_namespace`, `signalingcluster` | 1 when every pod applied it |
 * | `switchboard_operator_connections` | `signalingcluster_namespace`, `signalingcluster` | live connections over the pods |
 * | `switchboard_operator_capacity_connections` | `signalingcluster_namespace`, `signalingcluster` | connections the wanted pods carry at the autoscaling target |
 * | `switchboard_operator_ring_members` | `signalingcluster_namespace`, `signalingcluster`, `state` | ring members by state (JOINING, ACTIVE, LEAVING) |
 * | `switchboard_operator_draining_pods` | `signalingcluster_namespace`, `signalingcluster` | pods being deleted (draining) |
 * | `switchboard_operator_scale_events_total` | `signalingcluster_namespace`, `signalingcluster`, `direction` (`up`, `down`) | changes of the wanted replicas |
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { SignalingClusterStatus } from "./api/signaling-cluster.ts";

const RING_STATES = ["JOINING", "ACTIVE", "LEAVING"] as const;

/**
 * The labels of a cluster's series. Not `namespace` and `cluster`: a scrape sets `namespace` to the
 * operator pod's own (the SignalingCluster's would become `exported_namespace`), and `cluster` is
 * the usual external label of a multi-cluster Prometheus.
 */
function clusterLabels(namespace: string, cluster: string): { signalingcluster_namespace: string; signalingcluster: string } {
  return { signalingcluster_namespace: namespace, signalingcluster: cluster };
}

/** See the module comment. */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: "switchboard_operator_reconciles_total", help: "Reconciles by result", labelNames: ["result"], registers: [this.registry] });
  readonly reconcileSeconds = new Histogram({
    name: "switchboard_operator_reconcile_duration_seconds",
    help: "Duration of one reconcile, Kubernetes I/O included",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly watchRestarts = new Counter({ name: "switchboard_operator_watch_restarts_total", help: "List/watch restarts", labelNames: ["resource", "reason"], registers: [this.registry] });
  readonly leader = new Gauge({ name: "switchboard_operator_leader", help: "1 while this replica holds the leader Lease", registers: [this.registry] });
  readonly #desired = this.#clusterGauge("desired_replicas", "Pods the operator wants");
  readonly #replicas = this.#clusterGauge("replicas", "Pods that exist");
  readonly #ready = this.#clusterGauge("ready_replicas", "Ready pods");
  readonly #ringVersion = this.#clusterGauge("ring_version", "Ring version written to the ConfigMap");
  readonly #converged = this.#clusterGauge("ring_converged", "1 when every pod applied the ring");
  readonly #connections = this.#clusterGauge("connections", "Live connections over the pods (fresh reports)");
  readonly #capacity = this.#clusterGauge("capacity_connections", "Connections the wanted pods carry at the autoscaling target");
  readonly #draining = this.#clusterGauge("draining_pods", "Pods being deleted (draining)");
  readonly #members = new Gauge({
    name: "switchboard_operator_ring_members",
    help: "Ring members by state",
    labelNames: ["signalingcluster_namespace", "signalingcluster", "state"],
    registers: [this.registry],
  });
  readonly #scaleEvents = new Counter({
    name: "switchboard_operator_scale_events_total",
    help: "Changes of the wanted replicas, by direction",
    labelNames: ["signalingcluster_namespace", "signalingcluster", "direction"],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Sets the per-cluster gauges from a status just written and the pods being deleted. */
  observeCluster(namespace: string, cluster: string, status: SignalingClusterStatus, drainingPods: number): void {
    const labels = clusterLabels(namespace, cluster);
    this.#desired.set(labels, status.desiredReplicas ?? 0);
    this.#replicas.set(labels, status.replicas ?? 0);
    this.#ready.set(labels, status.readyReplicas ?? 0);
    this.#ringVersion.set(labels, status.ring?.version ?? 0);
    this.#converged.set(labels, status.ring?.converged ? 1 : 0);
    this.#connections.set(labels, status.connections ?? 0);
    if (status.capacity !== undefined) this.#capacity.set(labels, status.capacity);
    else this.#capacity.remove(labels);
    this.#draining.set(labels, drainingPods);
    for (const state of RING_STATES) this.#members.set({ ...labels, state }, status.ring?.members.filter((m) => m.state === state).length ?? 0);
    // Both directions exported from 0, so that the first scale event is an increase Prometheus sees.
    for (const direction of ["up", "down"]) this.#scaleEvents.inc({ ...labels, direction }, 0);
  }

  /** Counts a change of the wanted replicas. */
  scaled(namespace: string, cluster: string, direction: "up" | "down"): void {
    this.#scaleEvents.inc({ ...clusterLabels(namespace, cluster), direction });
  }

  /** Drops the gauges of a cluster that is gone. */
  forgetCluster(namespace: string, cluster: string): void {
    for (const g of [this.#desired, this.#replicas, this.#ready, this.#ringVersion, this.#converged, this.#connections, this.#capacity, this.#draining]) g.remove(clusterLabels(namespace, cluster));
    for (const state of RING_STATES) this.#members.remove({ ...clusterLabels(namespace, cluster), state });
    for (const direction of ["up", "down"]) this.#scaleEvents.remove({ ...clusterLabels(namespace, cluster), direction });
  }

  /**
   * Drops every cluster's series: a replica that stops leading must not keep exporting the last
   * values it saw (dashboards would show two leaders' views, one frozen).
   */
  forgetAllClusters(): void {
    for (const m of [this.#desired, this.#replicas, this.#ready, this.#ringVersion, this.#converged, this.#connections, this.#capacity, this.#draining, this.#members, this.#scaleEvents]) m.reset();
  }

  #clusterGauge(name: string, help: string): Gauge<"signalingcluster_namespace" | "signalingcluster"> {
    return new Gauge({ name: `switchboard_operator_${name}`, help, labelNames: ["signalingcluster_namespace", "signalingcluster"], registers: [this.registry] });
  }
}
