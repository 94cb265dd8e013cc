/**
 * Tests of the local cluster's network plumbing (e2e/cluster/lib.sh, down.sh) without a control
 * plane: that down.sh removes the network namespaces, veths, routes and processes that crashed
 * runs left, leaves a running cluster's alone, and that a cluster number in use is refused.
 * Needs root (network namespaces); fails (never skips) without it.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { processStartTime } from './container-process.ts';
import { CLUSTER_SCRIPTS_DIR } from './paths.ts';

const LIB = join(CLUSTER_SCRIPTS_DIR, 'lib.sh');

/** Runs a bash snippet with lib.sh sourced for cluster `subnet` with state directory `dir`. */
function lib(subnet: number, dir: string, script: string, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -euo pipefail; source "${LIB}"; ${script}`], {
    env: { ...process.env, SWITCHBOARD_CLUSTER_DIR: dir, SWITCHBOARD_CLUSTER_SUBNET: String(subnet), ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function mustLib(subnet: number, dir: string, script: string, env: Record<string, string> = {}): string {
  const r = lib(subnet, dir, script, env);
  assert.equal(r.status, 0, `${script}: ${r.stderr}`);
  return r.stdout;
}

/** Starts `sleep` in cluster `subnet`'s namespace, detached; returns its pid and start time. */
function sleeperIn(subnet: number, dir: string): { pid: number; start: string } {
  const pid = Number(mustLib(subnet, dir, `setsid nsenter --net="$netns_path" -- sleep 600 < /dev/null > /dev/null 2>&1 9>&- & echo $!`).trim());
  const start = processStartTime(pid);
  assert.ok(start !== undefined, `sleep ${pid} runs`);
  return { pid, start };
}

function hostRoutes(): string {
  return execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' });
}

/** Whether anything of cluster `n` is left on the host: namespace, veth, routes, owner file. */
function leftovers(n: number): string[] {
  const routes = hostRoutes();
  return [
    existsSync(`/run/netns/sbk8s-${n}`) ? `namespace sbk8s-${n}` : '',
    existsSync(`/sys/class/net/sbk8s-${n}`) ? `veth sbk8s-${n}` : '',
    routes.includes(`10.244.${n}.0/24`) ? `route 10.244.${n}.0/24` : '',
    routes.includes(`10.96.${n}.0/24`) ? `route 10.96.${n}.0/24` : '',
    existsSync(`/run/switchboard-cluster/sbk8s-${n}.dir`) ? `owner file of sbk8s-${n}` : '',
  ].filter((s) => s !== '');
}

/** Cluster numbers nobody uses, from the top (random test clusters use 100-249, make cluster-up 1). */
function freeNumbers(count: number): number[] {
  const free: number[] = [];
  for (let n = 254; n > 1 && free.length < count; n--) if (n < 100 || n > 249) if (leftovers(n).length === 0) free.push(n);
  assert.equal(free.length, count, 'free cluster numbers');
  return free;
}

test('down.sh removes what crashed runs left and leaves a running cluster alone', { timeout: 60_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'the local cluster\'s network needs root');
  const [gone, crashed, live, routeOnly, other, orphaned] = freeNumbers(6) as [number, number, number, number, number, number];
  const root = mkdtempSync(join(tmpdir(), 'sbk-net-'));
  const dir = (name: string) => join(root, name);
  t.after(() => {
    for (const n of [gone, crashed, live, routeOnly, other, orphaned]) lib(n, dir('cleanup'), 'net_lock; net_remove "$subnet"');
    rmSync(root, { recursive: true, force: true });
  });

  // A run whose state directory was deleted while a process still ran in its namespace.
  mkdirSync(dir('gone'));
  mustLib(gone, dir('gone'), 'net_lock; net_create');
  const orphan = sleeperIn(gone, dir('gone'));
  rmSync(dir('gone'), { recursive: true });
  // A run that crashed: its state is there, none of its daemons runs, nothing is in its namespace.
  mkdirSync(dir('crashed/pids'), { recursive: true });
  mustLib(crashed, dir('crashed'), 'net_lock; net_create');
  // A running cluster: its etcd (a sleep here) runs in its namespace.
  mkdirSync(dir('live/pids'), { recursive: true });
  mustLib(live, dir('live'), 'net_lock; net_create');
  const etcd = sleeperIn(live, dir('live'));
  writeFileSync(dir('live/pids/etcd.pid'), `${etcd.pid} ${etcd.start}\n`);
  // A test's cluster, running, but the test process it belongs to was killed.
  const testRun = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.after(() => testRun.kill('SIGKILL'));
  mkdirSync(dir('orphaned/pids'), { recursive: true });
  mustLib(orphaned, dir('orphaned'), 'net_lock; net_create', { SWITCHBOARD_CLUSTER_OWNER_PID: String(testRun.pid) });
  const orphanedEtcd = sleeperIn(orphaned, dir('orphaned'));
  writeFileSync(dir('orphaned/pids/etcd.pid'), `${orphanedEtcd.pid} ${orphanedEtcd.start}\n`);
  // Only the host's unreachable route of a run is left (its namespace went with a reboot).
  execFileSync('ip', ['-4', 'route', 'add', 'unreachable', `10.96.${routeOnly}.0/24`, 'proto', '233']);

  for (const n of [gone, crashed, live, orphaned]) {
    assert.deepEqual(leftovers(n).sort(), [`namespace sbk8s-${n}`, `owner file of sbk8s-${n}`, `route 10.244.${n}.0/24`, `route 10.96.${n}.0/24`, `veth sbk8s-${n}`]);
  }
  // The pod range is routed into the namespace, where every address is local.
  assert.match(execFileSync('ip', ['-4', 'route', 'get', `10.244.${live}.10`], { encoding: 'utf8' }), new RegExp(`via 10\\.200\\.${live}\\.2 dev sbk8s-${live}`));
  assert.match(execFileSync('ip', ['-n', `sbk8s-${live}`, '-4', 'route', 'get', `10.244.${live}.10`], { encoding: 'utf8' }), /^local 10\.244\./);

  // Another cluster cannot take the live one's number: up.sh exits with 3, naming the owner.
  const taken = lib(live, dir('intruder'), 'net_lock; net_create');
  assert.equal(taken.status, 3, taken.stderr);
  assert.match(taken.stderr, new RegExp(`sbk8s-${live} is in use by the cluster in ${dir('live')}`));

  // While its test runs, the test's cluster is not stale.
  mustLib(other, dir('other'), 'net_lock; net_sweep_stale');
  assert.equal(leftovers(orphaned).length, 5);
  testRun.kill('SIGKILL');
  await new Promise((resolve) => testRun.once('exit', resolve));

  // Any cluster's down.sh (here one that never ran) sweeps what is stale.
  const down = spawnSync('bash', [join(CLUSTER_SCRIPTS_DIR, 'down.sh')], {
    env: { ...process.env, SWITCHBOARD_CLUSTER_DIR: dir('other'), SWITCHBOARD_CLUSTER_SUBNET: String(other) },
    encoding: 'utf8',
  });
  assert.equal(down.status, 0, down.stderr);
  for (const n of [gone, crashed, routeOnly, orphaned]) assert.deepEqual(leftovers(n), [], `cluster ${n} is cleaned up:\n${down.stdout}`);
  assert.equal(processStartTime(orphan.pid), undefined, 'the process left in a stale namespace is killed');
  assert.equal(processStartTime(orphanedEtcd.pid), undefined, 'the daemons of a cluster whose test died are killed');
  assert.equal(leftovers(live).length, 5, 'the running cluster keeps its namespace, veth, routes and owner file');
  assert.equal(processStartTime(etcd.pid), etcd.start, 'and its processes');

  // Its own down.sh stops it and removes its network; a second run finds nothing to do.
  for (let i = 0; i < 2; i++) {
    const own = spawnSync('bash', [join(CLUSTER_SCRIPTS_DIR, 'down.sh')], {
      env: { ...process.env, SWITCHBOARD_CLUSTER_DIR: dir('live'), SWITCHBOARD_CLUSTER_SUBNET: String(live) },
      encoding: 'utf8',
    });
    assert.equal(own.status, 0, own.stderr);
  }
  assert.deepEqual(leftovers(live), []);
  assert.equal(processStartTime(etcd.pid), undefined);
});
