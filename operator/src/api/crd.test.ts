import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { CHART_CRD_FILE, CHART_VALUES_SCHEMA_FILE, CRD_FILE, chartValuesSchemaText, signalingClusterCrdYaml } from "./crd.ts";
import { parseSignalingCluster } from "./signaling-cluster.ts";
import { StructuralSchemaError, toStructuralSchema } from "./structural-schema.ts";

test("the committed CRD (crds/ and the chart's) and the chart's values schema are what the zod schemas generate (run `npm run crd` after a schema change)", () => {
  const committed = (file: string) => readFileSync(fileURLToPath(new URL(`../../../${file}`, import.meta.url)), "utf8");
  assert.equal(committed(CRD_FILE), signalingClusterCrdYaml(), CRD_FILE);
  assert.equal(committed(CHART_CRD_FILE), signalingClusterCrdYaml(), CHART_CRD_FILE);
  assert.equal(committed(CHART_VALUES_SCHEMA_FILE), chartValuesSchemaText(), CHART_VALUES_SCHEMA_FILE);
});

test("int-or-string and opaque objects become their Kubernetes markers; zod's safe-integer bounds go", () => {
  const s = toStructuralSchema(
    z.object({
      n: z.number().int(),
      q: z.union([z.number().int(), z.string()]).meta({ "x-kubernetes-int-or-string": true }),
      o: z.record(z.string(), z.unknown()).meta({ "x-kubernetes-preserve-unknown-fields": true }),
    }),
  );
  assert.deepEqual(s, {
    type: "object",
    properties: { n: { type: "integer" }, q: { "x-kubernetes-int-or-string": true }, o: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
    required: ["n", "q", "o"],
  });
});

test("what a structural schema cannot say fails the generator, naming the field", () => {
  assert.throws(
    () => toStructuralSchema(z.object({ a: z.object({ b: z.union([z.string(), z.number()]) }) })),
    (err: unknown) => err instanceof StructuralSchemaError && /\.a\.b: a structural schema needs one type/.test(err.message),
  );
});

test("the operator's own parse fills defaults and names bad fields", () => {
  const ok = parseSignalingCluster({
    apiVersion: "switchboard.dev/v1alpha1",
    kind: "SignalingCluster",
    metadata: { name: "a", namespace: "b", uid: "c" },
    spec: { image: "i", nats: { url: "nats://n" }, redis: { url: "redis://r" }, auth: {} },
  });
  assert.ok(ok.ok);
  assert.equal(ok.cluster.spec.replicas, 3);
  assert.equal(ok.cluster.spec.autoscaling.targetConnectionsPerPod, 5000);
  assert.equal(ok.cluster.spec.auth.mode, "jwt");
  const bad = parseSignalingCluster({ apiVersion: "switchboard.dev/v1alpha1", kind: "SignalingCluster", metadata: { name: "a", namespace: "b", uid: "c" }, spec: { replicas: -1 } });
  assert.equal(bad.ok, false);
  assert.ok(!bad.ok && bad.issues.some((i) => i.startsWith("spec.image:")) && bad.issues.some((i) => i.startsWith("spec.replicas:")));
});
