import { ClusterError } from './errors.ts';
import { parseQuantity } from './quantity.ts';
import type { Container, EnvVar, Pod } from './wire-types.ts';

/** Reads the ConfigMaps and Secrets a pod's env refers to. Resolves `undefined` when absent. */
export interface EnvSources {
  configMap(namespace: string, name: string): Promise<Readonly<Record<string, string>> | undefined>;
  /** Values already base64-decoded. */
  secret(namespace: string, name: string): Promise<Readonly<Record<string, string>> | undefined>;
}

/** What the agent knows about the pod's place: its IP, the node's IP and capacity. */
export interface PodPlacement {
  readonly podIP: string;
  readonly hostIP: string;
  /** Node allocatable, used for `resourceFieldRef` when the container sets no limit. */
  readonly nodeAllocatable: Readonly<Record<string, string>>;
}

/**
 * Computes a container's environment as the kubelet does: `envFrom` sources in order, then `env`
 * entries (later ones win), each value with `$(VAR)` expanded against the variables before it;
 * `valueFrom` resolves the downward API (`fieldRef`, `resourceFieldRef`) and ConfigMap/Secret keys.
 * Rejects with `CLUSTER_ERR_POD_SPEC` when a non-optional source or key is missing
 * (the kubelet's `CreateContainerConfigError`).
 */
export async function containerEnv(pod: Pod, container: Container, placement: PodPlacement, sources: EnvSources): Promise<Map<string, string>> {
  const ns = pod.metadata.namespace ?? 'default';
  const env = new Map<string, string>();
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    const ref = from.configMapRef ?? from.secretRef;
    if (ref === undefined) continue;
    const kind = from.configMapRef !== undefined ? 'configmap' : 'secret';
    const data = kind === 'configmap' ? await sources.configMap(ns, ref.name) : await sources.secret(ns, ref.name);
    if (data === undefined) {
      if (ref.optional === true) continue;
      throw new ClusterError('CLUSTER_ERR_POD_SPEC', `${kind} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(data)) env.set(prefix + k, v);
  }
  for (const ev of container.env ?? []) {
    const value = await envValue(pod, container, ev, placement, sources, env);
    if (value !== undefined) env.set(ev.name, value);
  }
  return env;
}

async function envValue(
  pod: Pod,
  container: Container,
  ev: EnvVar,
  placement: PodPlacement,
  sources: EnvSources,
  defined: ReadonlyMap<string, string>,
): Promise<string | undefined> {
  const from = ev.valueFrom;
  if (from === undefined) return expandVars(ev.value ?? '', defined);
  const ns = pod.metadata.namespace ?? 'default';
  if (from.fieldRef !== undefined) return fieldValue(pod, from.fieldRef.fieldPath, placement);
  if (from.resourceFieldRef !== undefined) {
    const ref = from.resourceFieldRef;
    const target = ref.containerName === undefined || ref.containerName === ''
      ? container
      : pod.spec.containers.find((c) => c.name === ref.containerName);
    if (target === undefined) throw new ClusterError('CLUSTER_ERR_POD_SPEC', `resourceFieldRef: no container "${ref.containerName}"`);
    return resourceValue(target, ref.resource, ref.divisor, placement.nodeAllocatable);
  }
  const keyRef = from.configMapKeyRef ?? from.secretKeyRef;
  if (keyRef === undefined) return undefined;
  const kind = from.configMapKeyRef !== undefined ? 'configmap' : 'secret';
  const data = kind === 'configmap' ? await sources.configMap(ns, keyRef.name) : await sources.secret(ns, keyRef.name);
  const value = data?.[keyRef.key];
  if (value === undefined && keyRef.optional !== true) {
    throw new ClusterError('CLUSTER_ERR_POD_SPEC', data === undefined
      ? `${kind} "${keyRef.name}" not found`
      : `couldn't find key ${keyRef.key} in ${kind} ${ns}/${keyRef.name}`);
  }
  return value;
}

/** Resolves a downward-API `fieldRef` path for env. */
export function fieldValue(pod: Pod, fieldPath: string, placement: PodPlacement): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m !== null) {
    const map = m[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations;
    return map?.[m[2] ?? ''] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name': return pod.metadata.name;
    case 'metadata.namespace': return pod.metadata.namespace ?? 'default';
    case 'metadata.uid': return pod.metadata.uid;
    case 'spec.nodeName': return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec.serviceAccountName ?? '';
    case 'status.podIP':
    case 'status.podIPs': return placement.podIP;
    case 'status.hostIP':
    case 'status.hostIPs': return placement.hostIP;
    default: throw new ClusterError('CLUSTER_ERR_POD_SPEC', `unsupported fieldRef path "${fieldPath}"`);
  }
}

/**
 * Resolves a `resourceFieldRef`: the container's limit (or, for limits without one, the node's
 * allocatable; for requests without one, 0) divided by `divisor` and rounded up, as the kubelet does.
 */
export function resourceValue(container: Container, resource: string, divisor: string | undefined, allocatable: Readonly<Record<string, string>>): string {
  const [kind, name] = resource.split('.', 2);
  if ((kind !== 'limits' && kind !== 'requests') || name === undefined) {
    throw new ClusterError('CLUSTER_ERR_POD_SPEC', `unsupported resourceFieldRef resource "${resource}"`);
  }
  const own = kind === 'limits' ? container.resources?.limits?.[name] : container.resources?.requests?.[name] ?? container.resources?.limits?.[name];
  const raw = own ?? (kind === 'limits' ? allocatable[name] : undefined) ?? '0';
  const div = parseQuantity(divisor === undefined || divisor === '' ? '1' : divisor);
  return String(Math.ceil(parseQuantity(raw) / div - 1e-9));
}

/**
 * Expands `$(VAR)` references against `vars` as Kubernetes does: `$$` is an escaped `$`, and a
 * reference to an undefined variable stays as written.
 */
export function expandVars(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([^)]*)\)/g, (whole, name: string | undefined) => {
    if (whole === '$$') return '$';
    return name !== undefined && vars.has(name) ? (vars.get(name) ?? '') : whole;
  });
}
