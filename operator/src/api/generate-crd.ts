#!/usr/bin/env node
/**
 * Writes what the zod schemas define: the SignalingCluster CRD (`crds/…yaml`, and the same file in
 * the Helm chart's `crds/`) and the chart's `values.schema.json`: `npm run crd`. `crd.test.ts`
 * fails when a committed file is stale.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CHART_CRD_FILE, CHART_VALUES_SCHEMA_FILE, CRD_FILE, chartValuesSchemaText, signalingClusterCrdYaml } from "./crd.ts";

for (const [file, text] of [
  [CRD_FILE, signalingClusterCrdYaml()],
  [CHART_CRD_FILE, signalingClusterCrdYaml()],
  [CHART_VALUES_SCHEMA_FILE, chartValuesSchemaText()],
] as const) {
  writeFileSync(fileURLToPath(new URL(`../../../${file}`, import.meta.url)), text);
  process.stdout.write(`wrote ${file}\n`);
}
