/**
 * Autoscaling: what the operator wants against what runs — desired, current and ready replicas,
 * connections against capacity, scale events (also as annotations), the ring version each pod
 * applied, ring members by state, and drains in progress.
 *
 * @module
 */
import { AnnotationQueryBuilder, RowBuilder } from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { CLUSTER, DATASOURCE, PODS, switchboardDashboard, timeseries } from "./panels.ts";

/** The operator's gauge of the chosen cluster (max over replicas: only the leader exports it). */
const op = (name: string) => `max(switchboard_operator_${name}{${CLUSTER}})`;

/** The Autoscaling dashboard. */
export function autoscaling() {
  return switchboardDashboard("switchboard-autoscaling", "Switchboard / Autoscaling", "The operator's view of one SignalingCluster: replicas, load against capacity, the ring, drains.")
    .annotation(
      new AnnotationQueryBuilder()
        .name("Scale events")
        .datasource(DATASOURCE)
        .enable(true)
        .iconColor("orange")
        .target(new DataqueryBuilder().datasource(DATASOURCE).expr(`sum by (direction) (increase(switchboard_operator_scale_events_total{${CLUSTER}}[1m])) > 0`).refId("Anno"))
        .titleFormat("scale {{direction}}")
        .step("15s"),
    )
    .withRow(new RowBuilder("Replicas"))
    .withPanel(timeseries("Desired, current and ready replicas", "Pods the operator wants (spec.replicas or the autoscaler), pods that exist, and ready pods.", "short", [
      { expr: op("desired_replicas"), legend: "desired" },
      { expr: op("replicas"), legend: "current" },
      { expr: op("ready_replicas"), legend: "ready" },
    ]))
    .withPanel(timeseries("Connections against capacity", "Live connections over the pods (their reports) and what the wanted pods carry at the target (target × desired).", "short", [
      { expr: op("connections"), legend: "connections" },
      { expr: op("capacity_connections"), legend: "capacity" },
    ]))
    .withPanel(timeseries("Scale events", "Changes of the wanted replicas, by direction.", "short", [
      { expr: `sum by (direction) (increase(switchboard_operator_scale_events_total{${CLUSTER}}[$__rate_interval]))`, legend: "{{direction}}" },
    ], 8))
    .withPanel(timeseries("Drains in progress", "Pods being deleted and draining (their clients resume on other pods).", "short", [{ expr: op("draining_pods"), legend: "draining" }], 8))
    .withPanel(timeseries("Pods ready (own view)", "Each pod's own readiness: 0 while it drains.", "short", [{ expr: `max by (pod) (switchboard_ready{${PODS}})`, legend: "{{pod}}" }], 8))
    .withRow(new RowBuilder("Ring"))
    .withPanel(timeseries("Ring members by state", "Members of the ring document by state: JOINING, ACTIVE, LEAVING.", "short", [
      { expr: `max by (state) (switchboard_operator_ring_members{${CLUSTER}})`, legend: "{{state}}" },
    ]))
    .withPanel(timeseries("Ring version per pod", "The ring version each pod applied, against the version the operator wrote.", "short", [
      { expr: `max by (pod) (switchboard_ring_version{${PODS}})`, legend: "{{pod}}" },
      { expr: op("ring_version"), legend: "written" },
    ]));
}
