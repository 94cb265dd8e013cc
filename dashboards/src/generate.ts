#!/usr/bin/env node
/** Writes the dashboards' JSON under charts/switchboard/dashboards/ and their reference docs/dashboards.md: `npm run dashboards`. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DASHBOARDS_DIR, DASHBOARDS_DOC, dashboardJson, dashboards, dashboardsDoc } from "./index.ts";

const dir = fileURLToPath(new URL(`../../${DASHBOARDS_DIR}`, import.meta.url));
mkdirSync(dir, { recursive: true });
for (const [file, d] of dashboards()) {
  writeFileSync(join(dir, file), dashboardJson(d));
  process.stdout.write(`wrote ${DASHBOARDS_DIR}/${file}\n`);
}
writeFileSync(fileURLToPath(new URL(`../../${DASHBOARDS_DOC}`, import.meta.url)), dashboardsDoc());
process.stdout.write(`wrote ${DASHBOARDS_DOC}\n`);
