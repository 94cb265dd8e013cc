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
  /** Third octet of the cluster's loopback /24. @default a random one in 100-249 */
  readonly subnet?: number;
  /** State directory. @default a new directory under ~/.cache/switchboard/cluster/tests */
  readonly dir?: string;
  /** Keep the state directory after `close()` (for debugging). @default false */
  readonly keepState?: boolean;
}

/** A control plane (or a namespace on one) for a test: kubeconfig, clients and teardown. */
export interface LocalCluster extends AsyncDisposable {
  /** Admin kubeconfig file (system:masters). */
  readonly kubeconfigPath: string;
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  /** A fresh namespace for the test, created by the helper. */
  readonly namespace: string;
  /** The cluster's loopback address (API server on :6443, Prometheus on :9090). */
  readonly hostIP: string;
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

/**
 * Starts a new control plane for one test on its own loopback /24 (e2e/cluster/up.sh), and hands
 * out an admin kubeconfig, clients and a fresh namespace. Rejects with
 * `CLUSTER_ERR_MISSING_BINARY` when the binaries were not built, `CLUSTER_ERR_LIFECYCLE` when the
 * start failed (with the script's output).
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  assertClusterBinaries();
  const subnet = options.subnet ?? 100 + Math.floor(Math.random() * 150);
  const stateDir = options.dir ?? mkdtempSync(join(ensureDir(join(cacheDir(), 'cluster/tests')), 'c-'));
  const env = { ...process.env, SWITCHBOARD_CLUSTER_DIR: stateDir, SWITCHBOARD_CLUSTER_SUBNET: String(subnet) };
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
  };
  try {
    await run('bash', [join(CLUSTER_SCRIPTS_DIR, 'up.sh')], { env, timeout: DEFAULT_CLUSTER_START_TIMEOUT_MS });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    await down().catch(() => undefined); // the start error is the one to report
    throw new ClusterError('CLUSTER_ERR_LIFECYCLE', `cluster-up failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
  return openCluster(join(stateDir, 'admin.kubeconfig'), `127.0.${subnet}.1`, stateDir, down);
}

/**
 * A fresh namespace on a cluster that is already up (`make cluster-up`), for tests that do not
 * need a control plane of their own. `close()` deletes the namespace and waits until it is gone.
 */
export async function useSharedCluster(kubeconfigPath = join(cacheDir(), 'cluster/run/admin.kubeconfig')): Promise<LocalCluster> {
  if (!existsSync(kubeconfigPath)) {
    throw new ClusterError('CLUSTER_ERR_LIFECYCLE', `no kubeconfig at ${kubeconfigPath}: run 'make cluster-up' first`);
  }
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const host = new URL(kc.getCurrentCluster()?.server ?? 'https://127.0.1.1:6443').hostname;
  return openCluster(kubeconfigPath, host, join(kubeconfigPath, '..'), undefined);
}

async function openCluster(kubeconfigPath: string, hostIP: string, stateDir: string, down: (() => Promise<void>) | undefined): Promise<LocalCluster> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const namespace = `test-${randomBytes(4).toString('hex')}`;
  const tool = (name: string) => async (args: readonly string[]) => {
    const { stdout } = await run(join(clusterBinDir(), name), [...args], {
      env: { ...process.env, KUBECONFIG: kubeconfigPath },
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
    hostIP,
    prometheusUrl: `http://${hostIP}:9090`,
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
