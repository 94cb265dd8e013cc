/**
 * Stops and starts the kube-apiserver of a local cluster inside a test, so that clients can be
 * shown to survive an API server that is gone for a while.
 *
 * No change to up.sh is needed: up.sh starts the API server with `setsid nsenter --net=… --
 * kube-apiserver …`, and nsenter execs it, so the pidfile's pid is the API server's own and
 * `/proc/<pid>/cmdline` is its exact argv. It is started again the same way: in the cluster's
 * network namespace, in a session of its own, appending to the same log, with a new pidfile
 * ("pid start-time") so that down.sh and `cluster.close()` stop it as they would have stopped
 * the first one.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { processStartTime } from '../cluster/container-process.ts';
import { ClusterError } from '../cluster/errors.ts';
import type { LocalCluster } from '../cluster/local-cluster.ts';
import { waitFor } from '../cluster/wait.ts';

/** What {@link stopApiServer} saw of the process it stopped. */
export interface StoppedApiServer {
  /** Its exact argv, as up.sh started it. */
  readonly argv: readonly string[];
  /** When it was gone (`performance.now()`). */
  readonly stoppedAt: number;
}

function pidfile(cluster: LocalCluster): string {
  return join(cluster.stateDir, 'pids', 'kube-apiserver.pid');
}

/**
 * Kills the cluster's kube-apiserver (SIGKILL to its process group by default: a crash, every
 * connection cut at once) and resolves once it is gone, with its argv for
 * {@link startApiServer}. Rejects with `CLUSTER_ERR_LIFECYCLE` when it is not running.
 */
export async function stopApiServer(cluster: LocalCluster, signal: NodeJS.Signals = 'SIGKILL'): Promise<StoppedApiServer> {
  const [pidText, start] = readFileSync(pidfile(cluster), 'utf8').trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || start === undefined || processStartTime(pid) !== start) {
    throw new ClusterError('CLUSTER_ERR_LIFECYCLE', `kube-apiserver of ${cluster.stateDir} is not running`);
  }
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (argv.at(-1) === '') argv.pop();
  process.kill(-pid, signal);
  await waitFor('kube-apiserver to exit', () => (processStartTime(pid) === start ? undefined : true), { timeoutMs: 30_000, intervalMs: 50 });
  return { argv, stoppedAt: performance.now() };
}

/**
 * Starts the kube-apiserver again with `argv` (from {@link stopApiServer}) as up.sh does, records
 * its pidfile, and resolves once `/readyz` answers 200 from the host. Rejects with
 * `CLUSTER_ERR_TIMEOUT` when it is not ready within 120 s.
 */
export async function startApiServer(cluster: LocalCluster, argv: readonly string[]): Promise<void> {
  const log = openSync(join(cluster.stateDir, 'logs', 'kube-apiserver.log'), 'a');
  let pid: number | undefined;
  try {
    // detached: a session and process group of its own (setsid), as up.sh's start_daemon.
    const child = spawn('nsenter', [`--net=/run/netns/${cluster.network.netns}`, '--', ...argv], { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(log);
  }
  if (pid === undefined) throw new ClusterError('CLUSTER_ERR_LIFECYCLE', 'could not start kube-apiserver');
  const start = processStartTime(pid);
  if (start === undefined) throw new ClusterError('CLUSTER_ERR_LIFECYCLE', 'kube-apiserver exited at once (see logs/kube-apiserver.log)');
  writeFileSync(pidfile(cluster), `${pid} ${start}\n`);
  const ca = readFileSync(join(cluster.stateDir, 'pki', 'ca.crt'));
  const started = pid;
  await waitFor('kube-apiserver /readyz', async () => {
    if (processStartTime(started) !== start) throw new ClusterError('CLUSTER_ERR_LIFECYCLE', 'kube-apiserver exited (see logs/kube-apiserver.log)');
    return (await readyz(`${cluster.network.apiServer}/readyz`, ca)) ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 200 });
}

/**
 * Kills the API server, runs `whileDown` (if given: changes another client makes must wait, the
 * point is what clients see once it is back), waits until `downMs` have passed since it was gone,
 * and starts it again. Resolves with how long it was down, in ms.
 */
export async function restartApiServer(cluster: LocalCluster, options: { downMs?: number; whileDown?: () => Promise<void> } = {}): Promise<number> {
  const stopped = await stopApiServer(cluster);
  await options.whileDown?.();
  const left = (options.downMs ?? 0) - (performance.now() - stopped.stoppedAt);
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
  await startApiServer(cluster, stopped.argv);
  return performance.now() - stopped.stoppedAt;
}

function readyz(url: string, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}
