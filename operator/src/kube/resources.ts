/**
 * The kinds the operator manages and their REST paths: (apiVersion, kind, namespace, name) →
 * `/api/v1/namespaces/{ns}/{plural}/{name}` or `/apis/{group}/{version}/…`.
 *
 * @module
 */
import { OperatorError } from "../errors.ts";

/** A resource type: API group (`""` for core), version and plural, and whether it is namespaced. */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  /** @default true */
  readonly namespaced?: boolean;
}

/** What names one object: its apiVersion and kind, its namespace (for namespaced kinds) and name. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

/** `apiVersion` of the operator's own resource. */
export const SIGNALING_CLUSTER_API_VERSION = "switchboard.dev/v1alpha1";

/** Every kind the operator reads or writes, by `apiVersion/kind`. All of them are namespaced. */
export const MANAGED_KINDS = {
  "v1/ConfigMap": { group: "", version: "v1", plural: "configmaps" },
  "v1/Service": { group: "", version: "v1", plural: "services" },
  "v1/ServiceAccount": { group: "", version: "v1", plural: "serviceaccounts" },
  "v1/Pod": { group: "", version: "v1", plural: "pods" },
  "v1/Event": { group: "", version: "v1", plural: "events" },
  "apps/v1/StatefulSet": { group: "apps", version: "v1", plural: "statefulsets" },
  "policy/v1/PodDisruptionBudget": { group: "policy", version: "v1", plural: "poddisruptionbudgets" },
  "rbac.authorization.k8s.io/v1/Role": { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles" },
  "rbac.authorization.k8s.io/v1/RoleBinding": { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings" },
  "coordination.k8s.io/v1/Lease": { group: "coordination.k8s.io", version: "v1", plural: "leases" },
  [`${SIGNALING_CLUSTER_API_VERSION}/SignalingCluster`]: { group: "switchboard.dev", version: "v1alpha1", plural: "signalingclusters" },
} as const satisfies Record<string, ResourceType>;

/** The `apiVersion/kind` of a managed kind. */
export type ManagedKind = keyof typeof MANAGED_KINDS;

/**
 * The resource type of a managed kind. Throws `OP_ERR_UNKNOWN_KIND` for any other
 * apiVersion/kind (the operator's RBAC covers only these).
 */
export function resourceType(apiVersion: string, kind: string): ResourceType {
  const key = `${apiVersion}/${kind}`;
  const type: ResourceType | undefined = (MANAGED_KINDS as Record<string, ResourceType>)[key];
  if (type === undefined) throw new OperatorError("OP_ERR_UNKNOWN_KIND", `no REST path known for ${key}`);
  return type;
}

/**
 * The collection path of a resource type: `/api/v1[/namespaces/{ns}]/{plural}` for core,
 * `/apis/{group}/{version}[/namespaces/{ns}]/{plural}` otherwise. Without `namespace` a namespaced
 * type gives its all-namespaces path (for lists and watches).
 */
export function collectionPath(type: ResourceType, namespace?: string): string {
  const root = type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  const scope = namespace === undefined || type.namespaced === false ? "" : `/namespaces/${encodeURIComponent(namespace)}`;
  return `${root}${scope}/${type.plural}`;
}

/**
 * The REST path of one object of a managed kind, optionally of a subresource (`status`).
 * Throws `OP_ERR_UNKNOWN_KIND` for an unmanaged kind and `OP_ERR_INVALID_OBJECT` when the name
 * is empty or a namespaced kind has no namespace.
 */
export function objectPath(ref: ObjectRef, subresource?: "status"): string {
  const type = resourceType(ref.apiVersion, ref.kind);
  if (ref.name === "") throw new OperatorError("OP_ERR_INVALID_OBJECT", `${ref.apiVersion}/${ref.kind}: no name`);
  if (type.namespaced !== false && (ref.namespace === undefined || ref.namespace === "")) {
    throw new OperatorError("OP_ERR_INVALID_OBJECT", `${ref.apiVersion}/${ref.kind} ${ref.name}: a namespaced kind needs a namespace`);
  }
  const path = `${collectionPath(type, ref.namespace)}/${encodeURIComponent(ref.name)}`;
  return subresource === undefined ? path : `${path}/${subresource}`;
}
