/**
 * The operator end to end on a real control plane (etcd, kube-apiserver, controller-manager,
 * scheduler; pods run by the node agent), installed as a user installs it: the committed CRD and
 * operator/deploy/ with kubectl, two operator replicas with leader election, SignalingClusters with
 * real signaling pods in cluster mode over the control plane's NATS JetStream and Redis, and SDK
 * clients on real sockets. Times are printed, not asserted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { SwitchboardClient, type WebSocketFactory } from '@switchboard/client';
import { parseRingDocument, type RingDocument } from '@switchboard/ring';
import { startLocalCluster, type LocalCluster } from '../cluster/local-cluster.ts';
import { REPO_ROOT } from '../cluster/paths.ts';
import { startServiceProxy } from '../cluster/service-proxy.ts';
import { waitFor } from '../cluster/wait.ts';
import { startTraffic } from '../pods/failover-traffic.ts';
import { restartApiServer } from './api-server.ts';
import {
  OPERATOR_NAMESPACE,
  clusterPods,
  condition,
  containerPid,
  exampleManifest,
  getSignalingCluster,
  identityPod,
  installOperator,
  leaseHolder,
  podLogs,
  tempManifest,
} from './harness.ts';

const NS = 'default';
const NAME = 'demo';
const log = (line: string) => process.stdout.write(`# ${line}\n`);

/** Ring document of the cluster's ConfigMap. */
async function ringOf(cluster: LocalCluster): Promise<RingDocument> {
  const cm = await cluster.core.readNamespacedConfigMap({ namespace: NS, name: `${NAME}-ring` });
  return parseRingDocument(cm.data?.['ring.json'] ?? '');
}

async function waitReady(cluster: LocalCluster, replicas: number, timeoutMs = 180_000): Promise<void> {
  await waitFor(
    `SignalingCluster ${NAME} Ready with ${replicas} pods`,
    async () => {
      const sc = await getSignalingCluster(cluster, NS, NAME);
      const ok =
        condition(sc, 'Ready')?.status === 'True' &&
        sc.status?.observedGeneration === sc.metadata.generation &&
        sc.status.readyReplicas === replicas &&
        sc.status.ring?.members.length === replicas;
      return ok ? sc : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

describe('the operator on a local control plane', () => {
  let cluster: LocalCluster;

  before(async () => {
    // SWITCHBOARD_E2E_KEEP_STATE=1 keeps the cluster's state directory (logs of every pod) after the test.
    cluster = await startLocalCluster({ keepState: process.env['SWITCHBOARD_E2E_KEEP_STATE'] === '1' });
    log(`cluster state: ${cluster.stateDir}`);
    await installOperator(cluster);
  });
  after(async () => {
    await cluster?.close();
  });

  test('invalid specs are refused by the API server, each with a message a person understands', async () => {
    const base = (spec: string) =>
      `apiVersion: switchboard.dev/v1alpha1\nkind: SignalingCluster\nmetadata: {name: bad, namespace: ${NS}}\nspec:\n${spec}`;
    const ok = `  image: ghcr.io/x/switchboard/signaling:1\n  nats: {url: "nats://n:4222"}\n  redis: {url: "redis://r:6379"}\n  auth: {mode: insecure-dev}\n`;
    const cases: Array<[string, string, RegExp]> = [
      ['min > max', `${ok}  minReplicas: 5\n  maxReplicas: 2\n`, /minReplicas must not be greater than maxReplicas/],
      ['negative replicas', `${ok}  replicas: -1\n`, /spec\.replicas: Invalid value: -1: spec\.replicas in body should be greater than or equal to 1/],
      ['replicas outside min/max', `${ok}  replicas: 20\n  maxReplicas: 10\n`, /replicas must be between minReplicas and maxReplicas/],
      ['a NATS URL of the wrong scheme', ok.replace('nats://n:4222', 'http://n:4222'), /url must be a URL with a host and one of the schemes nats, tls/],
      ['a NATS URL that is no URL', ok.replace('nats://n:4222', 'not a url'), /url must be a URL with a host/],
      ['a Redis URL and a Secret both', ok.replace('{url: "redis://r:6379"}', '{url: "redis://r:6379", urlSecretRef: {name: s, key: k}}'), /set exactly one of url and urlSecretRef/],
      ['a buffer larger than max', `${ok}  maxReplicas: 3\n  autoscaling: {enabled: true, buffer: 5}\n`, /autoscaling\.buffer must be smaller than maxReplicas/],
      ['a buffer of 150%', `${ok}  autoscaling: {buffer: "150%"}\n`, /buffer must be a count >= 0 or a percentage from 0% to 99%/],
      ['jwt without audience', ok.replace('{mode: insecure-dev}', '{mode: jwt, hs256SecretRef: {name: s, key: k}}'), /auth\.mode jwt needs audience and issuer/],
      ['jwt without a key', ok.replace('{mode: insecure-dev}', '{mode: jwt, audience: a, issuer: i}'), /auth\.mode jwt needs a key/],
      ['a JWKS URL over http', ok.replace('{mode: insecure-dev}', '{mode: jwt, audience: a, issuer: i, jwksUrl: "http://keys/jwks"}'), /jwksUrl must be an https URL/],
      ['no image', ok.replace('  image: ghcr.io/x/switchboard/signaling:1\n', ''), /spec\.image: Required value/],
      ['an unknown auth mode', ok.replace('{mode: insecure-dev}', '{mode: open}'), /spec\.auth\.mode: Unsupported value: "open"/],
    ];
    for (const [what, spec, message] of cases) {
      const err = await cluster.kubectl(['apply', '--dry-run=server', '-f', tempManifest(base(spec))]).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.ok(err, `${what}: accepted`);
      assert.match(err.message, message, `${what}: ${err.message}`);
    }
    // …and the examples pass.
    await cluster.kubectl(['apply', '--dry-run=server', '-f', tempManifest(base(ok))]);
    await cluster.kubectl(['apply', '--dry-run=server', '-f', `${REPO_ROOT}/examples/signalingcluster-production.yaml`]);
  });

  test('kubectl apply of the example: every pod Ready and ACTIVE on one ring version; SDK clients on different pods share a room', async () => {
    const started = performance.now();
    await cluster.kubectl(['apply', '-f', tempManifest(exampleManifest(cluster, { name: NAME, namespace: NS }))]);
    await cluster.kubectl(['-n', NS, 'wait', '--for=condition=Ready', `signalingcluster/${NAME}`, '--timeout=180s']);
    log(`apply → Ready (kubectl wait): ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const sc = await getSignalingCluster(cluster, NS, NAME);
    assert.equal(sc.status?.readyReplicas, 3);
    const ring = await ringOf(cluster);
    assert.deepEqual(ring.members.map((m) => m.state), ['ACTIVE', 'ACTIVE', 'ACTIVE']);
    assert.equal(sc.status?.ring?.version, ring.version);
    assert.deepEqual(sc.status?.ring?.members.map((m) => m.appliedVersion), [ring.version, ring.version, ring.version], 'every pod reports the version');
    assert.equal(condition(sc, 'RingConverged')?.status, 'True');
    assert.equal(condition(sc, 'Degraded')?.status, 'False');
    const printed = await cluster.kubectl(['-n', NS, 'get', 'signalingclusters']);
    log(`kubectl get signalingclusters:\n${printed.trimEnd().replace(/^/gm, '#   ')}`);
    assert.match(printed, /NAME\s+DESIRED\s+READY\s+RING\s+CONVERGED\s+STATUS\s+AGE/);

    // Each pod reads the ring from the API and says so.
    for (const m of ring.members) {
      const report = (await (await fetch(`http://${m.address}/status`)).json()) as { pod: string; ring: { version: number; state: string } };
      assert.deepEqual([report.pod, report.ring.version, report.ring.state], [m.name, ring.version, 'ACTIVE']);
    }
    // Two clients on two different pods: one room, a relayed message each way.
    const [a, b] = ring.members;
    assert.ok(a && b);
    const sdk = (addr: string, user: string) => new SwitchboardClient({ url: `ws://${addr}/v1/ws`, token: user, WebSocket: WebSocket as unknown as WebSocketFactory });
    const alice = sdk(a.address, 'alice');
    const bob = sdk(b.address, 'bob');
    try {
      const wa = await alice.connect();
      const wb = await bob.connect();
      assert.notEqual(wa.pod, wb.pod);
      await alice.join('lobby');
      const seen = new Promise<unknown>((resolve) => bob.on('message', (m) => resolve(m.data)));
      const { peers } = await bob.join('lobby');
      assert.deepEqual(peers.map((p) => p.peerId), [wa.peerId]);
      await alice.message('lobby', wb.peerId, { hello: 'bob' });
      assert.deepEqual(await seen, { hello: 'bob' });
      const back = new Promise<unknown>((resolve) => alice.on('message', (m) => resolve(m.data)));
      await bob.message('lobby', wa.peerId, { hello: 'alice' });
      assert.deepEqual(await back, { hello: 'alice' });
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });

  test('an env change under traffic replaces the pods one at a time, each LEAVING and drained first; every message delivered once and in order', async () => {
    const proxy = await startServiceProxy({ kubeConfig: cluster.kubeConfig, namespace: NS, service: NAME, portName: 'http' });
    const traffic = await startTraffic([{ wsUrl: `ws://${proxy.address}/v1/ws` }], { clients: 12, roomSize: 3, prefix: 'rollout' });
    const before = new Map((await clusterPods(cluster, NS, NAME)).map((p) => [p.metadata.name, p.metadata.uid]));
    // Watch the rollout: when each pod turned LEAVING, started terminating, and came back ACTIVE.
    const leavingAt = new Map<string, number>();
    const terminatingAt = new Map<string, number>();
    const activeAgainAt = new Map<string, number>();
    let maxInFlight = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        try {
          const [ring, pods] = await Promise.all([ringOf(cluster), cluster.core.listNamespacedPod({ namespace: NS, labelSelector: `app.kubernetes.io/instance=${NAME}` })]);
          const now = performance.now();
          const inFlight = new Set<string>();
          for (const m of ring.members) {
            if (m.state === 'LEAVING') {
              inFlight.add(m.name);
              if (!leavingAt.has(m.name)) leavingAt.set(m.name, now);
            }
            if (m.state === 'ACTIVE' && m.uid !== before.get(m.name) && !activeAgainAt.has(m.name)) activeAgainAt.set(m.name, now);
          }
          for (const p of pods.items) {
            const name = p.metadata?.name ?? '';
            if (p.metadata?.deletionTimestamp !== undefined && p.metadata.uid === before.get(name)) {
              inFlight.add(name);
              if (!terminatingAt.has(name)) terminatingAt.set(name, now);
            }
          }
          maxInFlight = Math.max(maxInFlight, inFlight.size);
        } catch {
          // a read between two writes; the next one sees it
        }
        await sleep(200);
      }
    })();
    try {
      traffic.start(100);
      await sleep(2000);
      const started = performance.now();
      await cluster.kubectl(['-n', NS, 'patch', 'signalingcluster', NAME, '--type=merge', '-p', '{"spec":{"env":[{"name":"SWITCHBOARD_LOG_LEVEL","value":"debug"}]}}']);
      await waitFor(
        'every pod replaced',
        async () => {
          const pods = await clusterPods(cluster, NS, NAME);
          return pods.length === 3 && pods.every((p) => before.get(p.metadata.name) !== p.metadata.uid) ? pods : undefined;
        },
        { timeoutMs: 300_000, intervalMs: 500 },
      );
      await waitReady(cluster, 3);
      const total = (performance.now() - started) / 1000;
      await sleep(1000);
      await traffic.stop();
      await traffic.settle(15_000);
      const report = traffic.check();
      log(`rollout of 3 pods: ${total.toFixed(1)} s; order ${[...leavingAt.keys()].join(' → ')}`);
      for (const [name, at] of leavingAt) {
        log(`  ${name}: LEAVING → terminating ${(((terminatingAt.get(name) ?? NaN) - at) / 1000).toFixed(1)} s, → new pod ACTIVE ${(((activeAgainAt.get(name) ?? NaN) - at) / 1000).toFixed(1)} s`);
      }
      log(`traffic: ${JSON.stringify(report)}; resumes ${traffic.clients.reduce((n, c) => n + c.resumes.length, 0)}, sessions lost ${traffic.clients.reduce((n, c) => n + c.sessionLost, 0)}`);
      assert.deepEqual([...leavingAt.keys()].sort(), [...before.keys()].sort(), 'every pod was LEAVING before it went');
      for (const [name, at] of terminatingAt) assert.ok((leavingAt.get(name) ?? Infinity) <= at, `${name} LEAVING before its drain started`);
      assert.equal(maxInFlight, 1, 'one pod at a time');
      assert.deepEqual([...leavingAt.keys()], [`${NAME}-2`, `${NAME}-1`, `${NAME}-0`], 'highest ordinal first');
      assert.ok(report.acknowledged > 100, `traffic flowed: ${report.acknowledged}`);
      assert.equal(report.lost, 0, `lost: ${report.examples.join('; ')}`);
      assert.equal(report.duplicated, 0, `duplicated: ${report.examples.join('; ')}`);
      assert.equal(report.reordered, 0, `reordered: ${report.examples.join('; ')}`);
      assert.equal(traffic.clients.reduce((n, c) => n + c.sessionLost, 0), 0, 'every session resumed');
      const drained = podLogs(cluster, NS, `${NAME}-2`, 'signaling').some((text) => text.includes('"msg":"draining"'));
      assert.ok(drained, 'the replaced pod drained (its log says so)');
    } finally {
      watching = false;
      await watcher;
      await traffic.close();
      await proxy.close();
    }
  });

  test('the leader killed with SIGKILL mid-reconcile: a new term takes the Lease once it expired and finishes the scale-up', async () => {
    const leader = await leaseHolder(cluster);
    assert.ok(leader);
    const leaderPod = identityPod(leader);
    const pid = containerPid(cluster, OPERATOR_NAMESPACE, leaderPod, 'operator');
    assert.ok(pid, `pid of ${leaderPod}`);
    await cluster.kubectl(['-n', NS, 'scale', 'signalingcluster', NAME, '--replicas=4']);
    await sleep(300);
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    const next = await waitFor('another leader', async () => {
      const h = await leaseHolder(cluster);
      return h !== undefined && h !== leader ? h : undefined;
    }, { timeoutMs: 60_000, intervalMs: 100 });
    const takeover = (performance.now() - killedAt) / 1000;
    await waitReady(cluster, 4);
    const by = identityPod(next) === leaderPod ? 'the killed pod, restarted' : 'the standby replica';
    log(`lease takeover after SIGKILL of ${leader}: ${takeover.toFixed(1)} s (by ${next}, ${by}); scaled to 4 and Ready ${((performance.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
    // No new term before the old one expired: 15 s from when a candidate last saw it renewed, which
    // was at most one retry period (2 s) before the kill; 1 s of slack for the requests.
    assert.ok(takeover >= 15 - 2 - 1, `taken over after ${takeover.toFixed(1)} s, before the Lease expired`);
    const ring = await ringOf(cluster);
    assert.deepEqual(ring.members.map((m) => m.state), ['ACTIVE', 'ACTIVE', 'ACTIVE', 'ACTIVE']);
  });

  test('the API server restarted (every watch cut): the operator carries on without a restart and scales down, drained', async () => {
    const restarts = async () =>
      (await cluster.core.listNamespacedPod({ namespace: OPERATOR_NAMESPACE })).items.map((p) => `${p.metadata?.name}:${p.status?.containerStatuses?.[0]?.restartCount}`).sort();
    const before = await restarts();
    const down = await restartApiServer(cluster, { downMs: 5000 });
    log(`API server down for ${(down / 1000).toFixed(1)} s`);
    await cluster.kubectl(['-n', NS, 'scale', 'signalingcluster', NAME, '--replicas=3']);
    await waitReady(cluster, 3);
    assert.deepEqual(await restarts(), before, 'no operator container restarted');
    const metrics = await Promise.all(
      (await cluster.core.listNamespacedPod({ namespace: OPERATOR_NAMESPACE })).items.map(async (p) => (await fetch(`http://${p.status?.podIP}:8081/metrics`)).text()),
    );
    const restartsCounted = metrics.join('\n').match(/^switchboard_operator_watch_restarts_total\{[^}]*\} (\d+)/gm) ?? [];
    assert.ok(restartsCounted.length > 0, 'watch restarts counted');
    const leaving = podLogs(cluster, NS, `${NAME}-3`, 'signaling').some((text) => text.includes('"msg":"draining"'));
    assert.ok(leaving, 'the removed pod drained');
  });

  test('SignalingCluster deleted: every object it owns is gone and its pods drained', async () => {
    const pods = (await clusterPods(cluster, NS, NAME)).map((p) => p.metadata.name);
    await cluster.kubectl(['-n', NS, 'delete', 'signalingcluster', NAME, '--wait=true', '--timeout=120s']);
    await waitFor(
      'every owned object gone',
      async () => {
        const out = await cluster.kubectl(['-n', NS, 'get', 'statefulsets,services,configmaps,poddisruptionbudgets,serviceaccounts,roles,rolebindings,pods', '-l', `app.kubernetes.io/instance=${NAME}`, '-o', 'name']);
        return out.trim() === '' ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    for (const pod of pods) assert.ok(podLogs(cluster, NS, pod, 'signaling').some((t) => t.includes('"msg":"drained"')), `${pod} drained`);
  });
});
