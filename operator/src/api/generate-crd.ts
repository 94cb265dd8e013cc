#!/usr/bin/env node
/**
 * Writes the SignalingCluster CRD (`crds/…yaml`) from the zod schemas: `npm run crd`.
 * `crd.test.ts` fails when the committed file is stale.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CRD_FILE, signalingClusterCrdYaml } from "./crd.ts";

const target = fileURLToPath(new URL(`../../../${CRD_FILE}`, import.meta.url));
writeFileSync(target, signalingClusterCrdYaml());
process.stdout.write(`wrote ${CRD_FILE}\n`);
