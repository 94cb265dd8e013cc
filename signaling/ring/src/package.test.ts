/**
 * The package's own rules: one public entry, and nothing that ties it to Node (the operator, the
 * pods and tools in other runtimes load it).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import * as ring from "./index.ts";

const SRC = new URL(".", import.meta.url);

test("no source file (tests aside) imports node:* or another workspace package", () => {
  const sources = readdirSync(SRC).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
  assert.ok(sources.includes("index.ts"));
  for (const file of sources) {
    const text = readFileSync(new URL(file, SRC), "utf8");
    const specifiers = [...text.matchAll(/^\s*(?:import|export)\b[^"']*?from\s+["']([^"']+)["']/gm)].map((m) => m[1] ?? "");
    for (const spec of specifiers) assert.ok(spec === "zod" || spec.startsWith("./"), `${file} imports ${spec}`);
  }
});

test("the entry exports the contract", () => {
  for (const name of ["RingDocument", "RingMember", "parseRingDocument", "serializeRingDocument", "HashRing", "roomHash", "PodReport", "POD_REPORT_PATH", "ringConverged", "RING_DOCUMENT_KEY"]) {
    assert.ok(name in ring, name);
  }
});
