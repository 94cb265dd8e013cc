#!/usr/bin/env node
/** Writes the dashboards' JSON under charts/switchboard/dashboards/: `npm run dashboards`. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DASHBOARDS_DIR, dashboardJson, dashboards } from "./index.ts";

const dir = fileURLToPath(new URL(`../../${DASHBOARDS_DIR}`, import.meta.url));
mkdirSync(dir, { recursive: true });
for (const [file, d] of dashboards()) {
  writeFileSync(join(dir, file), dashboardJson(d));
  process.stdout.write(`wrote ${DASHBOARDS_DIR}/${file}\n`);
}
