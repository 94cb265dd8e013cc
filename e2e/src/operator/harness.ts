import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalCluster } from '../cluster/local-cluster.ts';
import { REPO_ROOT } from '../cluster/paths.ts';
import { waitFor } from '../cluster/wait.ts';

/**
 * The operator on a local control plane, as a user installs it (the committed CRD and
 * `operator/deploy/` applied with kubectl), and small readers of what it makes. Tests only.
 */

/** Namespace of the operator (operator/deploy/). */
export const OPERATOR_NAMESPACE = 'switchboard-system';

/** A SignalingCluster as `kubectl get -o json` gives it (the parts tests read). */
export interface SignalingClusterJson {
  metadata: { name: string; namespace: string; uid: string; generation: number };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    desiredReplicas?: number;
    clusterId?: string;
    ring?: { version: number; converged: boolean; members: { name: string; state: string; address: string; appliedVersion?: number }[] };
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

/** A pod as `kubectl get -o json` gives it (the parts tests read). */
export interface PodJson {
  metadata: { name: string; uid: string; deletionTimestamp?: string; labels?: Record<string, string> };
  status?: { podIP?: string; containerStatuses?: { restartCount: number }[]; conditions?: { type: string; status: string }[] };
}

/** Writes `text` to a temporary file and returns its path (kubectl reads manifests from files). */
export function tempManifest(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-manifest-'));
  const path = join(dir, 'manifest.yaml');
  writeFileSync(path, text);
  return path;
}

/** Installs the CRD and the operator (two replicas) and waits until one of them leads. */
export async function installOperator(cluster: LocalCluster): Promise<void> {
  await cluster.kubectl(['apply', '--server-side', '-f', join(REPO_ROOT, 'crds')]);
  await cluster.kubectl(['wait', '--for=condition=Established', 'crd/signalingclusters.switchboard.dev', '--timeout=60s']);
  await cluster.kubectl(['apply', '-f', join(REPO_ROOT, 'operator/deploy')]);
  await cluster.kubectl(['-n', OPERATOR_NAMESPACE, 'rollout', 'status', 'deployment/switchboard-operator', '--timeout=120s']);
  await waitFor('an operator leader', () => leaseHolder(cluster), { timeoutMs: 60_000 });
}

/** The pod of a Lease identity (`<pod>_<random>`: operator/src/main.ts). */
export function identityPod(identity: string): string {
  const cut = identity.lastIndexOf('_');
  return cut < 0 ? identity : identity.slice(0, cut);
}

/** The identity holding the operator's Lease, if any. */
export async function leaseHolder(cluster: LocalCluster): Promise<string | undefined> {
  try {
    const out = await cluster.kubectl(['-n', OPERATOR_NAMESPACE, 'get', 'lease', 'switchboard-operator', '-o', 'jsonpath={.spec.holderIdentity}']);
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * An example SignalingCluster (examples/signalingcluster.yaml unless `file` names another) pointed
 * at this cluster's NATS and Redis.
 */
export function exampleManifest(cluster: LocalCluster, options: { name: string; namespace: string; replicas?: number; extra?: string; file?: string }): string {
  let text = readFileSync(join(REPO_ROOT, options.file ?? 'examples/signalingcluster.yaml'), 'utf8');
  text = text
    .replace(/nats:\/\/10\.200\.1\.2:4222/, cluster.network.natsUrl)
    .replace(/redis:\/\/10\.200\.1\.2:6379/, cluster.network.redisUrl)
    .replace(/^ {2}name: demo$/m, `  name: ${options.name}`)
    .replace(/^ {2}namespace: default$/m, `  namespace: ${options.namespace}`);
  if (options.replicas !== undefined) text = text.replace(/^ {2}replicas: 3$/m, `  replicas: ${options.replicas}`);
  if (options.extra !== undefined) text += options.extra;
  return text;
}

/** Reads a SignalingCluster. */
export async function getSignalingCluster(cluster: LocalCluster, namespace: string, name: string): Promise<SignalingClusterJson> {
  return JSON.parse(await cluster.kubectl(['-n', namespace, 'get', 'signalingcluster', name, '-o', 'json'])) as SignalingClusterJson;
}

/** The pods of SignalingCluster `name`. */
export async function clusterPods(cluster: LocalCluster, namespace: string, name: string): Promise<PodJson[]> {
  const out = await cluster.kubectl(['-n', namespace, 'get', 'pods', '-l', `app.kubernetes.io/instance=${name},app.kubernetes.io/component=signaling`, '-o', 'json']);
  return (JSON.parse(out) as { items: PodJson[] }).items;
}

/** The condition `type` of a SignalingCluster's status. */
export function condition(sc: SignalingClusterJson, type: string): { status: string; reason: string; message: string } | undefined {
  return sc.status?.conditions?.find((c) => c.type === type);
}

/** The pid of a pod's container process, from the node agent's pid file. */
export function containerPid(cluster: LocalCluster, namespace: string, pod: string, container: string): number | undefined {
  const podsDir = join(cluster.stateDir, 'pods');
  const dir = readdirSync(podsDir).find((d) => d.startsWith(`${namespace}_${pod}_`) && readdirSync(join(podsDir, d)).includes(`${container}.pid`));
  if (dir === undefined) return undefined;
  const [pid] = readFileSync(join(podsDir, dir, `${container}.pid`), 'utf8').trim().split(/\s+/);
  return pid === undefined ? undefined : Number(pid);
}

/** The log of a pod's container (every pod directory of that name: a replaced pod has several). */
export function podLogs(cluster: LocalCluster, namespace: string, pod: string, container: string): string[] {
  const podsDir = join(cluster.stateDir, 'pods');
  return readdirSync(podsDir)
    .filter((d) => d.startsWith(`${namespace}_${pod}_`))
    .map((d) => {
      try {
        return readFileSync(join(podsDir, d, `${container}.log`), 'utf8');
      } catch {
        return '';
      }
    });
}
