/**
 * Cluster: the pods' dependencies in cluster mode — JetStream publish latency and consumer lag,
 * Redis command latency, and the circuit breaker of each dependency.
 *
 * @module
 */
import { RowBuilder } from "@grafana/grafana-foundation-sdk/dashboard";
import { PODS, stateTimeline, switchboardDashboard, timeseries } from "./panels.ts";

const quantile = (q: number, metric: string, by: string) => `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ""}) (rate(${metric}_bucket{${PODS}}[$__rate_interval])))`;

/** The Cluster dashboard. */
export function cluster() {
  return switchboardDashboard("switchboard-cluster", "Switchboard / Cluster", "NATS JetStream and Redis as the signaling pods see them.")
    .withRow(new RowBuilder("NATS JetStream"))
    .withPanel(timeseries("JetStream publish latency", "From a publish to its PubAck (p50, p99).", "s", [
      { expr: quantile(0.5, "switchboard_jetstream_publish_duration_seconds", ""), legend: "p50" },
      { expr: quantile(0.99, "switchboard_jetstream_publish_duration_seconds", ""), legend: "p99" },
    ]))
    .withPanel(timeseries("JetStream consumer lag", "Messages not yet delivered to the pod or not yet acknowledged, per consumer.", "short", [
      { expr: `max by (pod, consumer) (switchboard_jetstream_consumer_pending{${PODS}})`, legend: "{{pod}} {{consumer}}" },
    ]))
    .withRow(new RowBuilder("Redis"))
    .withPanel(timeseries("Redis command latency", "Time of the pods' Redis calls by store (p50, p99).", "s", [
      { expr: quantile(0.5, "switchboard_redis_command_duration_seconds", "store"), legend: "p50 {{store}}" },
      { expr: quantile(0.99, "switchboard_redis_command_duration_seconds", "store"), legend: "p99 {{store}}" },
    ]))
    .withPanel(timeseries("Dependency failures", "Failed JetStream publishes and Redis calls per second.", "reqps", [
      { expr: `sum(rate(switchboard_jetstream_publish_failures_total{${PODS}}[$__rate_interval]))`, legend: "jetstream publish" },
      { expr: `sum by (store) (rate(switchboard_redis_command_failures_total{${PODS}}[$__rate_interval]))`, legend: "redis {{store}}" },
    ]))
    .withRow(new RowBuilder("Breakers"))
    .withPanel(stateTimeline("Breaker state", "Each pod's circuit breaker per dependency: closed, half-open (probing), open (failing fast).", { expr: `max by (pod, dependency) (switchboard_dependency_breaker_state{${PODS}})`, legend: "{{pod}} {{dependency}}" }, {
      0: { text: "closed", color: "green" },
      1: { text: "half-open", color: "yellow" },
      2: { text: "open", color: "red" },
    }, 24));
}
