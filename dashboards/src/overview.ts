/**
 * Overview: what the pods of one SignalingCluster carry and how they serve it — connections,
 * sessions, rooms, messages, relay latency, errors, resumes, event-loop lag, CPU and memory.
 *
 * @module
 */
import { RowBuilder } from "@grafana/grafana-foundation-sdk/dashboard";
import { heatmap, PODS, stat, switchboardDashboard, timeseries } from "./panels.ts";

const rate = (metric: string, by: string) => `sum by (${by}) (rate(${metric}{${PODS}}[$__rate_interval]))`;
const quantile = (q: number, metric: string) => `histogram_quantile(${q}, sum by (le) (rate(${metric}_bucket{${PODS}}[$__rate_interval])))`;

/** The Overview dashboard. */
export function overview() {
  return switchboardDashboard("switchboard-overview", "Switchboard / Overview", "The signaling pods of one SignalingCluster: load, relay, errors, resumes, runtime.")
    .withRow(new RowBuilder("Load"))
    .withPanel(stat("Connections", "Open WebSocket connections over the chosen pods (both faces).", "short", { expr: `sum(switchboard_connections{${PODS}})`, legend: "connections" }))
    .withPanel(stat("Sessions", "Sessions, attached or waiting to resume.", "short", { expr: `sum(switchboard_sessions{${PODS}})`, legend: "sessions" }))
    .withPanel(stat("Rooms", "Rooms held (in cluster mode, owned) by the chosen pods.", "short", { expr: `sum(switchboard_rooms{${PODS}})`, legend: "rooms" }))
    .withPanel(stat("Messages in/s", "Client messages received per second.", "reqps", { expr: `sum(rate(switchboard_messages_in_total{${PODS}}[$__rate_interval]))`, legend: "in" }))
    .withPanel(timeseries("Connections per pod", "Open WebSocket connections of each pod, and their total.", "short", [
      { expr: `sum by (pod) (switchboard_connections{${PODS}})`, legend: "{{pod}}" },
      { expr: `sum(switchboard_connections{${PODS}})`, legend: "total" },
    ]))
    .withPanel(timeseries("Sessions and rooms per pod", "Sessions (attached or resumable) and rooms of each pod.", "short", [
      { expr: `sum by (pod) (switchboard_sessions{${PODS}})`, legend: "sessions {{pod}}" },
      { expr: `sum by (pod) (switchboard_rooms{${PODS}})`, legend: "rooms {{pod}}" },
    ]))
    .withRow(new RowBuilder("Messages and relay"))
    .withPanel(timeseries("Messages in/s by type", "Client messages received, by protocol type.", "reqps", [{ expr: rate("switchboard_messages_in_total", "type"), legend: "{{type}}" }]))
    .withPanel(timeseries("Messages out/s by type", "Server messages sent, by protocol type.", "reqps", [{ expr: rate("switchboard_messages_out_total", "type"), legend: "{{type}}" }]))
    .withPanel(timeseries("Relay latency", "From receiving a relayed message to writing it to the target socket (p50, p99).", "s", [
      { expr: quantile(0.5, "switchboard_relay_latency_seconds"), legend: "p50" },
      { expr: quantile(0.99, "switchboard_relay_latency_seconds"), legend: "p99" },
    ]))
    .withPanel(heatmap("Relay latency distribution", "Relayed messages per latency bucket.", { expr: `sum by (le) (rate(switchboard_relay_latency_seconds_bucket{${PODS}}[$__rate_interval]))`, legend: "{{le}}" }))
    .withRow(new RowBuilder("Errors and reconnects"))
    .withPanel(timeseries("Errors by code", "Errors sent to clients per second, by stable error code (docs/errors.md).", "reqps", [{ expr: rate("switchboard_errors_total", "code"), legend: "{{code}}" }]))
    .withPanel(timeseries("Resumes and socket closes", "Resume attempts by result, and sockets closed by WebSocket close code (1012: drain).", "reqps", [
      { expr: rate("switchboard_resumes_total", "result"), legend: "resume {{result}}" },
      { expr: rate("switchboard_socket_closes_total", "code"), legend: "close {{code}}" },
    ]))
    .withRow(new RowBuilder("Runtime"))
    .withPanel(timeseries("Event-loop lag p99", "The pods' event-loop delay, 99th percentile (the autoscaler's lag signal).", "s", [{ expr: `max by (pod) (nodejs_eventloop_lag_p99_seconds{${PODS}})`, legend: "{{pod}}" }], 8))
    .withPanel(timeseries("CPU per pod", "CPU time per second (1 = one core).", "short", [{ expr: `sum by (pod) (rate(process_cpu_seconds_total{${PODS}}[$__rate_interval]))`, legend: "{{pod}}" }], 8))
    .withPanel(timeseries("Memory per pod", "Resident set size.", "bytes", [{ expr: `sum by (pod) (process_resident_memory_bytes{${PODS}})`, legend: "{{pod}}" }], 8));
}
