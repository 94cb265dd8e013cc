/**
 * Switchboard's Grafana dashboards: built with the Grafana Foundation SDK, written as JSON to
 * `charts/switchboard/dashboards/` (`npm run dashboards`; a unit test fails when that JSON is
 * stale), shipped by the Helm chart as ConfigMaps for Grafana's dashboard sidecar.
 *
 * @module
 */
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { autoscaling } from "./autoscaling.ts";
import { cluster } from "./cluster.ts";
import { overview } from "./overview.ts";

/** Where the generated JSON goes, relative to the repository root. */
export const DASHBOARDS_DIR = "charts/switchboard/dashboards";

/** Every dashboard, by file name. */
export function dashboards(): ReadonlyMap<string, Dashboard> {
  return new Map([
    ["switchboard-overview.json", overview().build()],
    ["switchboard-autoscaling.json", autoscaling().build()],
    ["switchboard-cluster.json", cluster().build()],
  ]);
}

/** A dashboard as the committed JSON text. */
export function dashboardJson(d: Dashboard): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

/** One query of one panel (or of an annotation). */
export interface PanelQuery {
  readonly dashboard: string;
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
  readonly legend: string;
}

interface RawTarget {
  refId?: string;
  expr?: string;
  legendFormat?: string;
}

/** Every Prometheus expression of a dashboard's panels and annotations. */
export function panelQueries(d: Dashboard): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const p of d.panels ?? []) {
    const panel = p as { type?: string; title?: string; targets?: RawTarget[] };
    if (panel.type === "row") continue;
    for (const t of panel.targets ?? []) {
      if (t.expr !== undefined) out.push({ dashboard: d.uid ?? "", panel: panel.title ?? "", refId: t.refId ?? "", expr: t.expr, legend: t.legendFormat ?? "" });
    }
  }
  for (const a of d.annotations?.list ?? []) {
    const t = (a as { name?: string; target?: RawTarget }).target;
    if (t?.expr !== undefined) out.push({ dashboard: d.uid ?? "", panel: `annotation: ${(a as { name?: string }).name ?? ""}`, refId: t.refId ?? "", expr: t.expr, legend: "" });
  }
  return out;
}

/** Values of the template variables, for evaluating a query outside Grafana. */
export interface Variables {
  readonly namespace: string;
  readonly cluster: string;
  /** A regex of pods (Grafana's "All" is `.*`). @default ".*" */
  readonly pod?: string;
  /** What Grafana's `$__rate_interval` would be: at least four scrape intervals. */
  readonly rateInterval: string;
}

/** Substitutes the dashboards' variables as Grafana would. */
export function expandVariables(expr: string, v: Variables): string {
  return expr
    .replaceAll("$__rate_interval", v.rateInterval)
    .replaceAll("$namespace", v.namespace)
    .replaceAll("$cluster", v.cluster)
    .replaceAll("$pod", v.pod ?? ".*");
}
