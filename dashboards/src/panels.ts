/**
 * The few building blocks every Switchboard dashboard is made of, on top of the Grafana Foundation
 * SDK's typed builders: the template variables (data source, namespace, SignalingCluster, pod), the
 * label selectors that use them, and panels of one kind each (time series, stat, heatmap, state
 * timeline), laid out in rows of 24 columns.
 *
 * @module
 */
import { DashboardBuilder, DatasourceVariableBuilder, QueryVariableBuilder, VariableRefresh, VariableSort } from "@grafana/grafana-foundation-sdk/dashboard";
import type * as cog from "@grafana/grafana-foundation-sdk/cog";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as HeatmapPanel } from "@grafana/grafana-foundation-sdk/heatmap";
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as StateTimelinePanel } from "@grafana/grafana-foundation-sdk/statetimeline";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";

/** The data source every panel and variable uses. */
export const DATASOURCE = { type: "prometheus", uid: "${datasource}" } as const;

/** A signaling pod's series of the chosen namespace, cluster (its pods are `<cluster>-<ordinal>`) and pods. */
export const PODS = 'namespace="$namespace", pod=~"$cluster-[0-9]+", pod=~"$pod"';
/** The operator's series of the chosen SignalingCluster. */
export const CLUSTER = 'signalingcluster_namespace="$namespace", signalingcluster="$cluster"';

/** One query of a panel. */
export interface Query {
  readonly expr: string;
  /** Legend (`{{pod}}`). */
  readonly legend: string;
}

const target = (q: Query, i: number, format?: "heatmap") => {
  const b = new DataqueryBuilder().datasource(DATASOURCE).expr(q.expr).legendFormat(q.legend).refId(String.fromCharCode(65 + i)).range();
  return format === undefined ? b : b.format(format as never);
};

/** A time series panel `w` columns wide (unit: a Grafana unit such as `s`, `bytes`, `short`). */
export function timeseries(title: string, description: string, unit: string, queries: readonly Query[], w = 12): TimeseriesPanel {
  const p = new TimeseriesPanel().title(title).description(description).datasource(DATASOURCE).unit(unit).span(w).height(8).lineWidth(1).fillOpacity(10);
  queries.forEach((q, i) => p.withTarget(target(q, i)));
  return p;
}

/** A single-number panel. */
export function stat(title: string, description: string, unit: string, q: Query, w = 6): StatPanel {
  return new StatPanel().title(title).description(description).datasource(DATASOURCE).unit(unit).span(w).height(4).withTarget(target(q, 0));
}

/** A heatmap of a histogram's buckets (the query sums rates by `le`). */
export function heatmap(title: string, description: string, q: Query, w = 12): HeatmapPanel {
  return new HeatmapPanel().title(title).description(description).datasource(DATASOURCE).span(w).height(8).withTarget(target(q, 0, "heatmap"));
}

/** A state timeline (a gauge whose values are states, with their names). */
export function stateTimeline(title: string, description: string, q: Query, states: Readonly<Record<number, { text: string; color: string }>>, w = 12): StateTimelinePanel {
  const options: Record<string, { text: string; color: string; index: number }> = {};
  Object.entries(states).forEach(([value, s], index) => (options[value] = { ...s, index }));
  return new StateTimelinePanel()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(w)
    .height(6)
    .mappings([{ type: "value", options } as never])
    .withTarget(target(q, 0));
}

/**
 * A dashboard with Switchboard's variables: `datasource` (Prometheus), `namespace` and `cluster`
 * (from the operator's per-cluster gauges), and `pod` (the cluster's signaling pods, all by default).
 */
export function switchboardDashboard(uid: string, title: string, description: string): DashboardBuilder {
  const query = (name: string, label: string, q: string) =>
    new QueryVariableBuilder(name).label(label).datasource(DATASOURCE).query(q).definition(q).refresh(VariableRefresh.OnTimeRangeChanged).sort(VariableSort.AlphabeticalAsc);
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(["switchboard", "webrtc", "signaling"])
    .editable()
    .time({ from: "now-1h", to: "now" })
    .refresh("30s")
    .withVariable(new DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"))
    .withVariable(query("namespace", "Namespace", "label_values(switchboard_operator_desired_replicas, signalingcluster_namespace)"))
    .withVariable(query("cluster", "SignalingCluster", 'label_values(switchboard_operator_desired_replicas{signalingcluster_namespace="$namespace"}, signalingcluster)'))
    .withVariable(query("pod", "Pod", 'label_values(switchboard_connections{namespace="$namespace", pod=~"$cluster-[0-9]+"}, pod)').multi(true).includeAll(true).allValue(".*"));
}

/** The builders' common shape (anything with `build()`). */
export type Built<T> = cog.Builder<T>;
