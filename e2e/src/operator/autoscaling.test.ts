/**
 * Autoscaling end to end on a real control plane: the operator installed as users install it, the
 * autoscaled example (examples/signalingcluster-autoscaling.yaml: 10 connections per pod, buffer 0,
 * 2 to 4 pods, scale-down window 20 s, one pod per step), SDK clients on real sockets through a
 * Service (the kube-proxy stand-in), relaying numbered messages for the whole run. Load steps up
 * (scale-up), oscillates inside the window (no flapping), and steps down while the operator's
 * leader is killed (the scale-down completes under the next leader, every pod drained). Every
 * message of the whole run is accounted for. Times are printed, not asserted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLocalCluster, type LocalCluster } from '../cluster/local-cluster.ts';
import { startServiceProxy, type ServiceProxy } from '../cluster/service-proxy.ts';
import { waitFor } from '../cluster/wait.ts';
import { ClusterTimeline, describeRing, settledAt, type ClusterSample } from '../load/cluster-timeline.ts';
import { SteppedLoad } from '../load/stepped-load.ts';
import { dashboards, expandVariables, panelQueries } from '@switchboard/dashboards';
import { queryRange, renderDashboard } from '../load/render-dashboard.ts';
import { join } from 'node:path';
import { REPO_ROOT } from '../cluster/paths.ts';
import { OPERATOR_NAMESPACE, containerPid, exampleManifest, identityPod, installOperator, leaseHolder, podLogs, tempManifest } from './harness.ts';

const NS = 'default';
const NAME = 'demo';
const GROUP = 12;
const log = (line: string) => process.stdout.write(`# ${line}\n`);

/** The pod's `drained` log line (app.ts): how long its drain took and what it closed at the deadline. */
function drainOf(cluster: LocalCluster, pod: string): { durationMs: number; hinted: number; closedAtDeadline: number } | undefined {
  for (const text of podLogs(cluster, NS, pod, 'signaling')) {
    for (const line of text.split('\n')) {
      if (!line.includes('"msg":"drained"')) continue;
      return JSON.parse(line) as { durationMs: number; hinted: number; closedAtDeadline: number };
    }
  }
  return undefined;
}

describe('autoscaling on a local control plane', () => {
  let cluster: LocalCluster;
  let proxy: ServiceProxy;
  let load: SteppedLoad;
  let timeline: ClusterTimeline;
  /** When the load began (Unix seconds), for the dashboards' queries. */
  let runStartS = 0;
  const settled = (replicas: number, timeoutMs: number) =>
    waitFor(`${replicas} pods Ready and ACTIVE`, async () => (timeline.last !== undefined && settledAt(timeline.last, replicas) ? timeline.last : undefined), { timeoutMs, intervalMs: 100 });

  before(async () => {
    cluster = await startLocalCluster({ keepState: process.env['SWITCHBOARD_E2E_KEEP_STATE'] === '1' });
    log(`cluster state: ${cluster.stateDir}`);
    await installOperator(cluster);
    await cluster.kubectl(['apply', '-f', tempManifest(exampleManifest(cluster, { name: NAME, namespace: NS, file: 'examples/signalingcluster-autoscaling.yaml' }))]);
    timeline = new ClusterTimeline(cluster, NS, NAME);
    timeline.start(250);
    await settled(2, 180_000);
    proxy = await startServiceProxy({ kubeConfig: cluster.kubeConfig, namespace: NS, service: NAME, portName: 'http', refreshMs: 250 });
    load = new SteppedLoad({ wsUrl: `ws://${proxy.address}/v1/ws`, prefix: 'as', groupSize: GROUP, roomSize: 3, intervalMs: 200 });
  });
  after(async () => {
    await load?.close().catch(() => undefined);
    await timeline?.stop();
    await proxy?.close();
    await cluster?.close();
  });

  test('load stepped past the target: scaled up at once, the new pods Ready and ACTIVE in the ring', async () => {
    runStartS = Date.now() / 1000;
    await load.setClients(GROUP);
    await sleep(4000);
    assert.equal(timeline.last?.desired, 2, '12 connections at 10 per pod: 2 pods');
    const step = performance.now();
    await load.setClients(3 * GROUP);
    const connected = performance.now();
    const up = await settled(4, 60_000);
    const firstUp = timeline.between(step).find((s) => (s.desired ?? 0) > 2);
    log(`step 12 → 36 clients: connected in ${((connected - step) / 1000).toFixed(1)} s; desired raised ${(((firstUp?.atMs ?? NaN) - step) / 1000).toFixed(1)} s after the step; 4 pods Ready and ACTIVE on ring version ${up.ring?.version} ${((up.atMs - step) / 1000).toFixed(1)} s after the step (${((up.atMs - connected) / 1000).toFixed(1)} s after the last client connected)`);
    log(`  reason: ${up.lastScaleReason}`);
    assert.match(up.lastScaleReason ?? '', /load: \d+ connections \/ 10 per pod/);
    const events = await cluster.kubectl(['-n', NS, 'get', 'events', '--field-selector', `involvedObject.name=${NAME},reason=ScalingUp`, '-o', 'jsonpath={.items[*].message}']);
    assert.match(events, /replicas 2 → [34]/, `a ScalingUp event: ${events}`);
  });

  test('load oscillating inside the scale-down window: the replicas do not flap', async () => {
    const from = performance.now();
    for (let i = 0; i < 2; i++) {
      await load.setClients(2 * GROUP); // 24 connections would want 3 pods…
      await sleep(6000);
      await load.setClients(3 * GROUP); // …and 36 want 4 again, before the 20 s window is over
      await sleep(6000);
    }
    const during = timeline.between(from);
    const desired = new Set(during.map((s) => s.desired));
    const leaving = during.filter((s) => s.ring?.members.some((m) => m.state === 'LEAVING'));
    log(`oscillation 36 ↔ 24 clients every 6 s for ${((performance.now() - from) / 1000).toFixed(0)} s: desired ${[...desired].join(', ')} over ${during.length} samples`);
    assert.deepEqual([...desired], [4], 'the wanted replicas never moved');
    assert.equal(leaving.length, 0, 'no pod left the ring');
  });

  test('load stepped down, the operator leader killed mid-scale-down: LEAVING, drained, removed, one pod at a time; every message delivered once and in order', async () => {
    // Keep the group that connected last (spread over the 4 pods); the older ones sit on pods 0 and 1.
    const uidsBefore = new Set([...(timeline.last?.pods.values() ?? [])].map((p) => p.uid));
    await load.setClients(GROUP, { retire: 'oldest' });
    const step = performance.now();
    const onRemoved = load.liveClients.filter((c) => c.pods.at(-1) === `${NAME}-2` || c.pods.at(-1) === `${NAME}-3`);
    log(`step 36 → 12 clients; ${onRemoved.length} of them on ${NAME}-2 and ${NAME}-3`);
    const firstLeaving = await waitFor(
      'a member LEAVING',
      async () => timeline.between(step).find((s) => s.ring?.members.some((m) => m.state === 'LEAVING')),
      { timeoutMs: 90_000, intervalMs: 100 },
    );
    log(`first LEAVING ${((firstLeaving.atMs - step) / 1000).toFixed(1)} s after the step: ${describeRing(firstLeaving.ring)} (${firstLeaving.lastScaleReason})`);
    const leader = await leaseHolder(cluster);
    assert.ok(leader);
    const pid = containerPid(cluster, OPERATOR_NAMESPACE, identityPod(leader), 'operator');
    assert.ok(pid, `pid of ${leader}`);
    process.kill(pid, 'SIGKILL');
    const killedAt = performance.now();
    const next = await waitFor('another leader', async () => {
      const h = await leaseHolder(cluster);
      return h !== undefined && h !== leader ? h : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    log(`leader ${leader} killed; ${next} leads ${((performance.now() - killedAt) / 1000).toFixed(1)} s later`);
    const down = await settled(2, 180_000);
    log(`2 pods Ready and ACTIVE on ring version ${down.ring?.version} ${((down.atMs - step) / 1000).toFixed(1)} s after the step`);

    // Each removed pod: LEAVING first, then terminating, then gone; one at a time; drained cleanly.
    const after = timeline.between(step);
    const firstAt = (pred: (s: ClusterSample) => boolean) => after.find(pred)?.atMs;
    for (const pod of [`${NAME}-3`, `${NAME}-2`]) {
      const leavingAt = firstAt((s) => s.ring?.members.some((m) => m.name === pod && m.state === 'LEAVING') ?? false);
      const terminatingAt = firstAt((s) => s.pods.get(pod)?.terminating ?? false);
      const goneAt = firstAt((s) => !s.pods.has(pod));
      const drain = drainOf(cluster, pod);
      log(`  ${pod}: LEAVING at +${(((leavingAt ?? NaN) - step) / 1000).toFixed(1)} s, terminating +${(((terminatingAt ?? NaN) - step) / 1000).toFixed(1)} s, gone +${(((goneAt ?? NaN) - step) / 1000).toFixed(1)} s; drain ${drain?.durationMs} ms, ${drain?.hinted} hinted, ${drain?.closedAtDeadline} closed at the deadline`);
      assert.ok(leavingAt !== undefined && terminatingAt !== undefined && leavingAt <= terminatingAt, `${pod} LEAVING before its drain`);
      assert.ok(drain, `${pod} drained (its log says so)`);
      assert.equal(drain.closedAtDeadline, 0, `${pod}: every client left before the deadline`);
    }
    // A scale-down removes pods; it never drains and replaces one (as a reverted decision would).
    const made = after.flatMap((s) => [...s.pods].filter(([, p]) => !uidsBefore.has(p.uid)).map(([name]) => name));
    assert.deepEqual([...new Set(made)], [], 'no pod made during the scale-down');
    const both = after.filter((s) => ['3', '2'].every((o) => s.pods.get(`${NAME}-${o}`)?.terminating));
    assert.equal(both.length, 0, 'one pod drained at a time');
    const stuck = (await timeline.sample()).ring?.members.filter((m) => m.state !== 'ACTIVE') ?? [];
    assert.deepEqual(stuck, [], 'none left LEAVING');

    // Every client of a removed pod resumed on a remaining one, its session intact.
    await sleep(2000);
    for (const c of onRemoved) {
      assert.ok([`${NAME}-0`, `${NAME}-1`].includes(c.pods.at(-1) ?? ''), `${c.name} on ${c.pods.join(' → ')}`);
      assert.ok(c.resumes.length > 0, `${c.name} resumed`);
      assert.equal(c.sessionLost, 0, `${c.name} kept its session`);
    }
    const totals = await load.close();
    log(`messages over the whole run: ${JSON.stringify({ ...totals, examples: undefined })}`);
    assert.ok(totals.acknowledged > 1000, `traffic flowed: ${totals.acknowledged}`);
    assert.equal(totals.lost, 0, `lost: ${totals.examples.join('; ')}`);
    assert.equal(totals.duplicated, 0, `duplicated: ${totals.examples.join('; ')}`);
    assert.equal(totals.reordered, 0, `reordered: ${totals.examples.join('; ')}`);
    assert.equal(totals.sessionsLost, 0, 'every session kept');
  });

  test('every query of every dashboard panel returns data from the cluster\'s Prometheus over the run; the Autoscaling dashboard drawn', async () => {
    // Let Prometheus scrape the end of the run (5 s interval), then ask for the whole of it.
    await sleep(11_000);
    const endS = Date.now() / 1000;
    const variables = { namespace: NS, cluster: NAME, rateInterval: '20s' };
    const empty: string[] = [];
    let count = 0;
    for (const d of dashboards().values()) {
      for (const q of panelQueries(d)) {
        const result = await queryRange(cluster.prometheusUrl, expandVariables(q.expr, variables), runStartS - 30, endS, 5);
        count += 1;
        const points = result.reduce((n, s) => n + s.values.length, 0);
        log(`  ${q.dashboard} / ${q.panel} [${q.refId}]: ${result.length} series, ${points} points`);
        if (result.length === 0) empty.push(`${q.dashboard} / ${q.panel} [${q.refId}]: ${q.expr}`);
      }
    }
    log(`${count} panel queries evaluated`);
    assert.deepEqual(empty, [], 'every panel query returns data');

    // The picture of it: docs/ when asked (SWITCHBOARD_WRITE_DOCS=1), else the cluster's state directory.
    const out = process.env['SWITCHBOARD_WRITE_DOCS'] === '1' ? join(REPO_ROOT, 'docs/autoscaling-dashboard.png') : join(cluster.stateDir, 'autoscaling-dashboard.png');
    const drawn = await renderDashboard({
      dashboard: dashboards().get('switchboard-autoscaling.json')!,
      prometheusUrl: cluster.prometheusUrl,
      variables,
      startS: runStartS - 10,
      endS,
      stepS: 2,
      out,
      caption: `e2e/src/operator/autoscaling.test.ts: 12 → 36 clients, 36 ↔ 24, 36 → 12 with the operator's leader killed; ${new Date().toISOString().slice(0, 10)}`,
    });
    log(`Autoscaling dashboard: ${drawn} panels drawn into ${out}`);
    assert.ok(drawn >= 6);
  });
});
