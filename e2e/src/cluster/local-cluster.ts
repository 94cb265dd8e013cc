import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { processStartTime } from './container-process.ts';
import { ClusterError } from './errors.ts';
import { CLUSTER_SCRIPTS_DIR, cacheDir, clusterBinDir, missingClusterBinaries } from './paths.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);

/** Options of {@link startLocalCluster}. */
export interface LocalClusterOptions {
  /**
   * The cluster's number N (e2e/cluster/lib.sh): network namespace `sbk8s-N`, API server on
   * `10.200.N.2`, pods in `10.244.N.0/24`, Services in `10.96.N.0/24`.
   * @default a random one in 100-249 that no other cluster uses
   */
  readonly subnet?: number;
  /** State directory. @default a new directory under ~/.cache/switchboard/cluster/tests */
  readonly dir?: string;
  /** Keep the state directory after `close()` (for debugging). @default false */
  readonly keepState?: boolean;
}

/**
 * Where a cluster's parts are (written by e2e/cluster/up.sh to `cluster.json`). Every process of
 * the cluster runs in the network namespace `netns`; the host reaches the node address and the
 * pod range through the veth pair, and pods reach the host at `vethHostIP`. Pods and the host
 * reach the cluster's NATS and Redis at the same URLs.
 */
export interface ClusterNetwork {
  /** The network namespace (`ip netns exec NAME …`). */
  readonly netns: string;
  /** The host's end of the veth pair (the namespace's end is its `eth0`). */
  readonly veth: string;
  /** API server URL, `https://10.200.N.2:6443`. */
  readonly apiServer: string;
  /** The node's address: API server, Prometheus, pods' `hostIP`. */
  readonly nodeIP: string;
  /** The host's address on the veth: what a pod connects to for a service run on the host. */
  readonly vethHostIP: string;
  /** Pod IPs (`.10`-`.254`), routed from the host into the namespace. */
  readonly podCIDR: string;
  /** Service cluster IPs: allocated by the API server but not routed (no kube-proxy). */
  readonly serviceCIDR: string;
  readonly prometheusUrl: string;
  /** The cluster's NATS server with JetStream, `nats://10.200.N.2:4222` (store under the state dir). */
  readonly natsUrl: string;
  /** That server's monitoring endpoint (`/healthz`, `/varz`, `/jsz`), `http://10.200.N.2:8222`. */
  readonly natsMonitorUrl: string;
  /** The cluster's Redis, `redis://10.200.N.2:6379`; keeps nothing across restarts. */
  readonly redisUrl: string;
}

/** The fields of {@link ClusterNetwork}, all strings, that `cluster.json` must have. */
const NETWORK_FIELDS = ['netns', 'veth', 'apiServer', 'nodeIP', 'vethHostIP', 'podCIDR', 'serviceCIDR', 'prometheusUrl', 'natsUrl', 'natsMonitorUrl', 'redisUrl'] as const satisfies readonly (keyof ClusterNetwork)[];

/** A control plane (or a namespace on one) for a test: kubeconfig, clients and teardown. */
export interface LocalCluster extends AsyncDisposable {
  /** Admin kubeconfig file (system:masters). */
  readonly kubeconfigPath: string;
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  /** A fresh namespace for the test, created by the helper. */
  readonly namespace: string;
  /** The node's address, reachable from the host (API server on :6443, Prometheus on :9090). */
  readonly hostIP: string;
  /** The cluster's network namespace and addresses. */
  readonly network: ClusterNetwork;
  /** Prometheus base URL. */
  readonly prometheusUrl: string;
  /** State directory: logs/, pods/<ns>_<name>_<uid>/<container>.log, pids/. */
  readonly stateDir: string;
  /** Whether this handle started the control plane (and `close()` stops it). */
  readonly owned: boolean;
  /** Runs the cluster's kubectl with this kubeconfig; rejects on a non-zero exit. */
  kubectl(args: readonly string[]): Promise<string>;
  /** Runs the cluster's helm with this kubeconfig; rejects on a non-zero exit. */
  helm(args: readonly string[]): Promise<string>;
  /**
   * Tears down what this handle made: its namespace (waiting until its pods are gone), and, if it
   * started the control plane, every process of it. Rejects when a process outlived the teardown.
   * Idempotent.
   */
  close(): Promise<void>;
}

/** @default how long cluster start may take, in ms */
export const DEFAULT_CLUSTER_START_TIMEOUT_MS = 180_000;

/** Fails with a clear message when `make cluster-build` has not been run. */
export function assertClusterBinaries(): void {
  const missing = missingClusterBinaries();
  if (missing.length > 0) {
    throw new ClusterError('CLUSTER_ERR_MISSING_BINARY', `local control plane binaries missing (${missing.join(', ')}): run 'make cluster-build' first`);
  }
}

/** The exit code of up.sh when the cluster number is taken by another cluster. */
const EXIT_SUBNET_TAKEN = 3;

/** Whether the network namespace of cluster number `n` exists (some cluster runs there). */
function subnetTaken(n: number): boolean {
  return existsSync(`/run/netns/sbk8s-${n}`);
}

/** A random cluster number in 100-249 that no running cluster uses. */
function freeSubnet(): number {
  for (let i = 0; i < 50; i++) {
    const n = 100 + Math.floor(Math.random() * 150);
    if (!subnetTaken(n)) return n;
  }
  throw new ClusterError('CLUSTER_ERR_LIFECYCLE', 'no free cluster number in 100-249 (/run/netns/sbk8s-*): stop some clusters');
}

/**
 * Starts a new control plane for one test in its own network namespace (e2e/cluster/up.sh), and
 * hands out an admin kubeconfig, clients and a fresh namespace. Needs root. Rejects with
 * `CLUSTER_ERR_MISSING_BINARY` when the binaries were not built, `CLUSTER_ERR_LIFECYCLE` when the
 * start failed (with the script's output).
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  assertClusterBinaries();
  if (process.getuid?.() !== 0) {
    throw new ClusterError('CLUSTER_ERR_LIFECYCLE', 'the local cluster runs in its own network namespace, which needs root');
  }
  const stateDir = options.dir ?? mkdtempSync(join(ensureDir(join(cacheDir(), 'cluster/tests')), 'c-'));
  // Another cluster may take a random number between the check and up.sh: then up.sh exits with
  // EXIT_SUBNET_TAKEN having started nothing, and another number is tried.
  for (let attempt = 1; ; attempt++) {
    const subnet = options.subnet ?? freeSubnet();
    try {
      return await startOn(subnet, stateDir, options);
    } catch (err) {
      const taken = err instanceof ClusterError && (err.cause as { code?: unknown } | undefined)?.code === EXIT_SUBNET_TAKEN;
      if (!taken || options.subnet !== undefined || attempt >= 5) throw err;
    }
  }
}

async function startOn(subnet: number, stateDir: string, options: LocalClusterOptions): Promise<LocalCluster> {
  // The cluster belongs to this process: should it die without close(), the next up.sh or down.sh
  // of any cluster removes this one (e2e/cluster/lib.sh, net_is_stale).
  const env = { ...process.env, SWITCHBOARD_CLUSTER_DIR: stateDir, SWITCHBOARD_CLUSTER_SUBNET: String(subnet), SWITCHBOARD_CLUSTER_OWNER_PID: String(process.pid) };
  let network: ClusterNetwork | undefined;
  const down = async () => {
    const before = recordedProcesses(stateDir);
    let failure: unknown;
    try {
      await run('bash', [join(CLUSTER_SCRIPTS_DIR, 'down.sh'), ...(options.keepState === true ? [] : ['--purge'])], { env, timeout: 120_000 });
    } catch (err) {
      failure = err;
    }
    // Whatever down.sh did or failed to do, no process of this cluster may outlive the call.
    const left = before.filter((p) => processStartTime(p.pid) === p.start);
    for (const p of left) killGroup(p.pid);
    if (left.length > 0) {
      throw new ClusterError('CLUSTER_ERR_LIFECYCLE', `processes outlived cluster-down and were killed: ${left.map((p) => `${p.pid} (${p.file})`).join(', ')}`, { cause: failure });
    }
    if (failure !== undefined) throw new ClusterError('CLUSTER_ERR_LIFECYCLE', 'cluster-down failed', { cause: failure });
    // Nor may its network: the namespace (and with it the processes in it) and the host's veth.
    const leftover = [`/run/netns/sbk8s-${subnet}`, `/sys/class/net/${network?.veth ?? `sbk8s-${subnet}`}`].filter((f) => existsSync(f));
    if (leftover.length > 0) throw new ClusterError('CLUSTER_ERR_LIFECYCLE', `cluster-down left ${leftover.join(', ')}`);
  };
  try {
    await run('bash', [join(CLUSTER_SCRIPTS_DIR, 'up.sh')], { env, timeout: DEFAULT_CLUSTER_START_TIMEOUT_MS });
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string; message: string };
    // Taken by another cluster: up.sh started nothing and the namespace is not ours to remove.
    if (e.code !== EXIT_SUBNET_TAKEN) await down().catch(() => undefined); // the start error is the one to report
    throw new ClusterError('CLUSTER_ERR_LIFECYCLE', `cluster-up failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
  try {
    network = readNetwork(stateDir);
  } catch (err) {
    await down().catch(() => undefined);
    throw err;
  }
  return openCluster(join(stateDir, 'admin.kubeconfig'), network, stateDir, down);
}

/**
 * Reads the cluster's addresses that up.sh wrote to `<stateDir>/cluster.json`. Throws
 * `CLUSTER_ERR_LIFECYCLE` when the file is unreadable or lacks a field (a cluster started by an
 * older up.sh: `make cluster-up` restarts it with the current one).
 */
export function readNetwork(stateDir: string): ClusterNetwork {
  const file = join(stateDir, 'cluster.json');
  let parsed: Partial<Record<keyof ClusterNetwork, unknown>>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch (err) {
    throw new ClusterError('CLUSTER_ERR_LIFECYCLE', `cannot read ${file} (written by e2e/cluster/up.sh): ${(err as Error).message}`, { cause: err });
  }
  const missing = NETWORK_FIELDS.filter((f) => typeof parsed[f] !== 'string');
  if (missing.length > 0) {
    throw new ClusterError('CLUSTER_ERR_LIFECYCLE', `${file} lacks ${missing.join(', ')}: it was written by an older e2e/cluster/up.sh; run make cluster-up, which restarts the cluster`);
  }
  return parsed as ClusterNetwork;
}

/**
 * A fresh namespace on a cluster that is already up (`make cluster-up`), for tests that do not
 * need a control plane of their own. `close()` deletes the namespace and waits until it is gone.
 */
export async function useSharedCluster(kubeconfigPath = join(cacheDir(), 'cluster/run/admin.kubeconfig')): Promise<LocalCluster> {
  if (!existsSync(kubeconfigPath)) {
    throw new ClusterError('CLUSTER_ERR_LIFECYCLE', `no kubeconfig at ${kubeconfigPath}: run 'make cluster-up' first`);
  }
  const stateDir = join(kubeconfigPath, '..');
  return openCluster(kubeconfigPath, readNetwork(stateDir), stateDir, undefined);
}

async function openCluster(kubeconfigPath: string, network: ClusterNetwork, stateDir: string, down: (() => Promise<void>) | undefined): Promise<LocalCluster> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const namespace = `test-${randomBytes(4).toString('hex')}`;
  const tool = (name: string) => async (args: readonly string[]) => {
    // A proxy from the environment must not see the cluster's traffic (Go's clients honour it).
    const noProxy = [network.nodeIP, network.podCIDR, network.serviceCIDR, process.env['NO_PROXY'] ?? process.env['no_proxy']].filter(Boolean).join(',');
    const { stdout } = await run(join(clusterBinDir(), name), [...args], {
      env: { ...process.env, KUBECONFIG: kubeconfigPath, NO_PROXY: noProxy, no_proxy: noProxy },
      timeout: 120_000,
      maxBuffer: 16 * 2 ** 20,
    });
    return stdout;
  };
  try {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    // The namespace's default ServiceAccount comes from a controller; pods are refused before it.
    await waitFor(`ServiceAccount ${namespace}/default`, async () => {
      await core.readNamespacedServiceAccount({ name: 'default', namespace });
      return true;
    });
  } catch (err) {
    await down?.();
    throw err;
  }
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      if (down !== undefined) return down();
      await core.deleteNamespace({ name: namespace });
      await waitFor(`namespace ${namespace} to be deleted`, async () => {
        try {
          await core.readNamespace({ name: namespace });
          return undefined;
        } catch (err) {
          if ((err as { code?: number }).code === 404) return true;
          throw err;
        }
      }, { timeoutMs: 120_000 });
    })();
    return closed;
  };
  return {
    kubeconfigPath,
    kubeConfig,
    core,
    apps,
    namespace,
    hostIP: network.nodeIP,
    network,
    prometheusUrl: network.prometheusUrl,
    stateDir,
    owned: down !== undefined,
    kubectl: tool('kubectl'),
    helm: tool('helm'),
    close,
    [Symbol.asyncDispose]: close,
  };
}

interface RecordedProcess {
  readonly pid: number;
  readonly start: string;
  readonly file: string;
}

/** Every "pid start-time" pidfile of a cluster: its daemons and its pods' process groups. */
export function recordedProcesses(stateDir: string): RecordedProcess[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.pid')) files.push(join(dir, e.name));
    }
  };
  walk(join(stateDir, 'pids'));
  walk(join(stateDir, 'pods'));
  return files.flatMap((file) => {
    const [pid, start] = readFileSync(file, 'utf8').trim().split(' ');
    return pid !== undefined && start !== undefined && start !== '' ? [{ pid: Number(pid), start, file }] : [];
  });
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}
