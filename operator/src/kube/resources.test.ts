import assert from "node:assert/strict";
import { test } from "node:test";
import { hasCode } from "../errors.ts";
import { MANAGED_KINDS, collectionPath, objectPath, resourceType } from "./resources.ts";

test("objectPath maps every managed kind to its REST path", () => {
  const cases: [string, string, string][] = [
    ["v1", "ConfigMap", "/api/v1/namespaces/ns/configmaps/x"],
    ["v1", "Service", "/api/v1/namespaces/ns/services/x"],
    ["v1", "ServiceAccount", "/api/v1/namespaces/ns/serviceaccounts/x"],
    ["v1", "Pod", "/api/v1/namespaces/ns/pods/x"],
    ["v1", "Event", "/api/v1/namespaces/ns/events/x"],
    ["apps/v1", "StatefulSet", "/apis/apps/v1/namespaces/ns/statefulsets/x"],
    ["policy/v1", "PodDisruptionBudget", "/apis/policy/v1/namespaces/ns/poddisruptionbudgets/x"],
    ["rbac.authorization.k8s.io/v1", "Role", "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles/x"],
    ["rbac.authorization.k8s.io/v1", "RoleBinding", "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/rolebindings/x"],
    ["coordination.k8s.io/v1", "Lease", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/x"],
    ["switchboard.dev/v1alpha1", "SignalingCluster", "/apis/switchboard.dev/v1alpha1/namespaces/ns/signalingclusters/x"],
  ];
  assert.equal(cases.length, Object.keys(MANAGED_KINDS).length);
  for (const [apiVersion, kind, path] of cases) assert.equal(objectPath({ apiVersion, kind, namespace: "ns", name: "x" }), path);
  assert.equal(objectPath({ apiVersion: "switchboard.dev/v1alpha1", kind: "SignalingCluster", namespace: "ns", name: "x" }, "status"), "/apis/switchboard.dev/v1alpha1/namespaces/ns/signalingclusters/x/status");
});

test("collectionPath: namespaced and all-namespaces; names are escaped", () => {
  const sts = resourceType("apps/v1", "StatefulSet");
  assert.equal(collectionPath(sts, "ns"), "/apis/apps/v1/namespaces/ns/statefulsets");
  assert.equal(collectionPath(sts), "/apis/apps/v1/statefulsets");
  assert.equal(collectionPath({ group: "", version: "v1", plural: "nodes", namespaced: false }, "ignored"), "/api/v1/nodes");
  assert.equal(objectPath({ apiVersion: "v1", kind: "ConfigMap", namespace: "ns", name: "a/b" }), "/api/v1/namespaces/ns/configmaps/a%2Fb");
});

test("unknown kinds, missing names and missing namespaces are refused with stable codes", () => {
  assert.throws(() => resourceType("v1", "Secret"), (err) => hasCode(err, "OP_ERR_UNKNOWN_KIND"));
  assert.throws(() => resourceType("apps/v1beta1", "StatefulSet"), (err) => hasCode(err, "OP_ERR_UNKNOWN_KIND"));
  assert.throws(() => objectPath({ apiVersion: "v1", kind: "Pod", name: "x" }), (err) => hasCode(err, "OP_ERR_INVALID_OBJECT"));
  assert.throws(() => objectPath({ apiVersion: "v1", kind: "Pod", namespace: "ns", name: "" }), (err) => hasCode(err, "OP_ERR_INVALID_OBJECT"));
});
