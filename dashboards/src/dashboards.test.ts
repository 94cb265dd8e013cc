import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { DASHBOARDS_DIR, DASHBOARDS_DOC, dashboardJson, dashboards, dashboardsDoc, expandVariables, panelQueries } from "./index.ts";

const dir = fileURLToPath(new URL(`../../${DASHBOARDS_DIR}`, import.meta.url));

test("the committed dashboard JSON is what the builders make (run `npm run dashboards` after a change)", () => {
  const built = dashboards();
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".json")).sort(), [...built.keys()].sort(), "no dashboard file without a builder");
  for (const [file, d] of built) assert.equal(readFileSync(`${dir}/${file}`, "utf8"), dashboardJson(d), file);
  assert.equal(readFileSync(fileURLToPath(new URL(`../../${DASHBOARDS_DOC}`, import.meta.url)), "utf8"), dashboardsDoc(), DASHBOARDS_DOC);
});

test("every dashboard has the namespace, cluster and pod variables, and every panel a query", () => {
  for (const [file, d] of dashboards()) {
    assert.deepEqual(d.templating?.list?.map((v) => v.name), ["datasource", "namespace", "cluster", "pod"], file);
    for (const p of d.panels ?? []) {
      const panel = p as { type?: string; title?: string; targets?: unknown[] };
      if (panel.type !== "row") assert.ok((panel.targets?.length ?? 0) > 0, `${file}: ${panel.title} has a query`);
    }
    assert.equal(new Set(d.panels?.map((p) => (p as { title?: string }).title)).size, d.panels?.length, `${file}: panel titles are unique`);
  }
});

test("rates and increases use $__rate_interval (annotations a fixed window); pod series select the cluster's pods", () => {
  for (const d of dashboards().values()) {
    for (const q of panelQueries(d)) {
      for (const [, window] of q.expr.matchAll(/(?:rate|increase)\([^[]*\[([^\]]+)\]\)/g)) {
        assert.equal(window, q.panel.startsWith("annotation:") ? "1m" : "$__rate_interval", `${q.dashboard} / ${q.panel}: ${q.expr}`);
      }
      if (/\bswitchboard_(?!operator_)|nodejs_|process_/.test(q.expr)) assert.match(q.expr, /pod=~"\$cluster-\[0-9\]\+", pod=~"\$pod"/, `${q.dashboard} / ${q.panel}`);
      if (q.expr.includes("switchboard_operator_")) assert.match(q.expr, /signalingcluster_namespace="\$namespace", signalingcluster="\$cluster"/, `${q.dashboard} / ${q.panel}`);
    }
  }
});

test("expandVariables substitutes as Grafana does, All pods as .*", () => {
  assert.equal(
    expandVariables('rate(x{namespace="$namespace", pod=~"$cluster-[0-9]+", pod=~"$pod"}[$__rate_interval])', { namespace: "ns", cluster: "demo", rateInterval: "20s" }),
    'rate(x{namespace="ns", pod=~"demo-[0-9]+", pod=~".*"}[20s])',
  );
});
