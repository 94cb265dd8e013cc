/**
 * Names and labels of everything the operator makes for a SignalingCluster `<name>`, in one place.
 *
 * | object | name |
 * |---|---|
 * | StatefulSet (pods `<name>-0`, `<name>-1`, …) | `<name>` |
 * | client Service | `<name>` |
 * | headless Service (the StatefulSet's) | `<name>-pods` |
 * | ring ConfigMap (`ring.json`) | `<name>-ring` |
 * | PodDisruptionBudget | `<name>` |
 * | ServiceAccount, Role, RoleBinding of the pods | `<name>-signaling` |
 *
 * @module
 */

/** Port the signaling container listens on (HTTP, WebSocket and metrics). */
export const SIGNALING_PORT = 8080;
/** Name of the signaling container. */
export const SIGNALING_CONTAINER = "signaling";
/** The field manager of the operator's server-side applies. */
export const FIELD_MANAGER = "switchboard-operator";

/** The names of one cluster's objects. */
export interface ClusterNames {
  readonly statefulSet: string;
  readonly service: string;
  readonly headlessService: string;
  readonly ringConfigMap: string;
  readonly pdb: string;
  readonly serviceAccount: string;
}

/** The names of the objects of SignalingCluster `name`. */
export function clusterNames(name: string): ClusterNames {
  return {
    statefulSet: name,
    service: name,
    headlessService: `${name}-pods`,
    ringConfigMap: `${name}-ring`,
    pdb: name,
    serviceAccount: `${name}-signaling`,
  };
}

/** Labels that select the pods of SignalingCluster `name` (and mark every object it owns). */
export function selectorLabels(name: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "switchboard",
    "app.kubernetes.io/instance": name,
    "app.kubernetes.io/component": "signaling",
  };
}

/** {@link selectorLabels} as a label selector string. */
export function selectorString(name: string): string {
  return Object.entries(selectorLabels(name))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** Labels of every object the operator makes (selector labels plus the manager). */
export function ownedLabels(name: string): Record<string, string> {
  return { ...selectorLabels(name), "app.kubernetes.io/managed-by": "switchboard-operator" };
}

/**
 * The pods' cluster name (`SWITCHBOARD_CLUSTER_NAME`): the prefix of the cluster's Redis keys
 * (`sb:<id>:…`) and its JetStream stream (`SB_<id>`). It includes part of the object's UID, so a
 * SignalingCluster deleted and created again with the same name (or one of the same name in another
 * namespace, sharing NATS and Redis) never reads the keys and streams of another.
 */
export function clusterId(name: string, uid: string): string {
  const safe = name.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 55);
  return `${safe}-${uid.replace(/-/g, "").slice(0, 8)}`;
}

/** The ordinal of a StatefulSet pod `<sts>-<n>`, or undefined for another name. */
export function podOrdinal(statefulSet: string, podName: string): number | undefined {
  if (!podName.startsWith(`${statefulSet}-`)) return undefined;
  const rest = podName.slice(statefulSet.length + 1);
  return /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : undefined;
}
