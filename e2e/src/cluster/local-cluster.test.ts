/**
 * Tests of the local control plane itself: a real API server, controllers and scheduler, the node
 * agent running the signaling image as local processes, Prometheus scraping them, and teardown
 * that leaves no process behind. Needs `make cluster-build` first; fails (never skips) without it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { PROTOCOL_VERSION, WS_PATH_V1, WS_SUBPROTOCOL_V1 } from '@switchboard/protocol';
import WebSocket from 'ws';
import { processStartTime } from './container-process.ts';
import { assertClusterBinaries, recordedProcesses, startLocalCluster, type LocalCluster } from './local-cluster.ts';
import { CLUSTER_SCRIPTS_DIR } from './paths.ts';
import { waitFor } from './wait.ts';

const KUBERNETES_VERSION = /^KUBERNETES_VERSION=(\S+)$/m.exec(readFileSync(join(CLUSTER_SCRIPTS_DIR, 'VERSIONS'), 'utf8'))?.[1];

function signalingDeployment(namespace: string, replicas: number): V1Deployment {
  const labels = { 'app.kubernetes.io/name': 'switchboard-signaling' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'signaling', namespace },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 10,
          containers: [{
            name: 'signaling',
            image: 'ghcr.io/switchboard/switchboard/signaling:dev',
            env: [
              { name: 'SWITCHBOARD_AUTH_INSECURE_DEV', value: '1' },
              { name: 'SWITCHBOARD_PORT', value: '8080' },
              { name: 'SWITCHBOARD_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            ],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1, failureThreshold: 1 },
          }],
        },
      },
    },
  };
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && pod.status.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
}

/** Opens a WebSocket to a pod, says hello and resolves with the type of the first answer. */
async function helloOverWebSocket(ip: string): Promise<string> {
  const ws = new WebSocket(`ws://${ip}:8080${WS_PATH_V1}`, [WS_SUBPROTOCOL_V1]);
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from ${ip} in 10s`)), 10_000);
      ws.once('error', reject);
      ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', v: PROTOCOL_VERSION, token: 'alice' })));
      ws.once('message', (data) => {
        clearTimeout(timer);
        resolve((JSON.parse(String(data)) as { type: string }).type);
      });
    });
  } finally {
    ws.close();
  }
}

async function promQuery(cluster: LocalCluster, query: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${cluster.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(body.status, 'success');
  return body.data.result;
}

test('local control plane', { timeout: 900_000 }, async (t) => {
  assertClusterBinaries();
  const cluster = await startLocalCluster();
  t.after(() => cluster.close());
  const { namespace, core, apps } = cluster;
  const podIpPattern = new RegExp(`^${cluster.hostIP.replace(/\.1$/, '').replaceAll('.', '\\.')}\\.(\\d+)$`);

  await t.test('kubectl talks to the API server of the pinned version', async () => {
    const version = JSON.parse(await cluster.kubectl(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string } };
    assert.equal(version.serverVersion.gitVersion, KUBERNETES_VERSION);
    const nodes = await core.listNode();
    assert.equal(nodes.items.length, 1);
    assert.equal(nodes.items[0]?.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  });

  await t.test('a Deployment of the signaling image runs Ready pods that take WebSocket clients', async () => {
    await apps.createNamespacedDeployment({ namespace, body: signalingDeployment(namespace, 2) });
    const pods = await waitFor('2 signaling pods Running and Ready', async () => {
      const list = await core.listNamespacedPod({ namespace });
      return list.items.length === 2 && list.items.every(isReady) ? list.items : undefined;
    }, { timeoutMs: 120_000 });
    const ips = pods.map((p) => p.status?.podIP ?? '');
    for (const ip of ips) assert.match(ip, podIpPattern);
    assert.notEqual(ips[0], ips[1]);
    for (const pod of pods) {
      assert.equal(pod.spec?.nodeName, 'switchboard-node', 'bound by the real scheduler');
      assert.equal(pod.status?.containerStatuses?.[0]?.ready, true);
      assert.equal(pod.status?.containerStatuses?.[0]?.restartCount, 0);
    }
    for (const ip of ips) assert.equal(await helloOverWebSocket(ip), 'welcome');
  });

  await t.test('Prometheus scrapes the pods from the node agent\'s target file', async () => {
    const up = await waitFor('Prometheus to scrape both pods', async () => {
      const result = await promQuery(cluster, `up{namespace="${namespace}"} == 1`);
      return result.length === 2 ? result : undefined;
    }, { timeoutMs: 60_000 });
    for (const series of up) {
      assert.match(series.metric['pod'] ?? '', /^signaling-/);
      assert.equal(series.metric['app_kubernetes_io_name'], 'switchboard-signaling');
    }
  });

  await t.test('deleting the Deployment stops the pod processes', async () => {
    const before = recordedProcesses(cluster.stateDir).filter((p) => p.file.includes(`/pods/${namespace}_`));
    assert.equal(before.length, 2, 'one process group per pod');
    for (const p of before) assert.equal(processStartTime(p.pid), p.start, `pod process ${p.pid} runs`);
    await apps.deleteNamespacedDeployment({ name: 'signaling', namespace, body: { propagationPolicy: 'Foreground' } });
    await waitFor('pods to be gone from the API', async () => ((await core.listNamespacedPod({ namespace })).items.length === 0 ? true : undefined), { timeoutMs: 60_000 });
    for (const p of before) assert.equal(processStartTime(p.pid), undefined, `pod process ${p.pid} is gone`);
  });

  await t.test('helm installs a chart', async () => {
    const chart = mkdtempSync(join(tmpdir(), 'chart-'));
    t.after(() => rmSync(chart, { recursive: true, force: true }));
    mkdirSync(join(chart, 'templates'));
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: probe\nversion: 0.1.0\n');
    writeFileSync(join(chart, 'templates/configmap.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  greeting: {{ .Values.greeting | quote }}\n');
    writeFileSync(join(chart, 'values.yaml'), 'greeting: hello\n');
    await cluster.helm(['install', 'probe', chart, '--namespace', namespace, '--wait', '--timeout', '60s']);
    const cm = await core.readNamespacedConfigMap({ name: 'probe-config', namespace });
    assert.equal(cm.data?.['greeting'], 'hello');
    await cluster.helm(['uninstall', 'probe', '--namespace', namespace, '--wait']);
  });

  await t.test('teardown leaves no process behind', async () => {
    const all = recordedProcesses(cluster.stateDir);
    assert.ok(all.length >= 6, `control plane processes recorded: ${all.map((p) => p.file).join(', ')}`);
    await cluster.close();
    for (const p of all) assert.equal(processStartTime(p.pid), undefined, `${p.file} (pid ${p.pid}) is gone`);
  });
});
