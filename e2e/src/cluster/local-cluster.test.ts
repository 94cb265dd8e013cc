/**
 * Tests of the local control plane itself: a real API server, controllers and scheduler in the
 * cluster's own network namespace, the node agent running the signaling image as local processes
 * on pod IPs the host routes to, EndpointSlices from the real controller-manager, Prometheus
 * scraping the pods, NATS (JetStream) and Redis on the node address, and teardown that leaves no
 * process, namespace, link or route behind.
 * Needs `make cluster-build` first and root; fails (never skips) without them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DiscoveryV1Api, type V1Deployment, type V1EndpointSlice, type V1Pod } from '@kubernetes/client-node';
import { PROTOCOL_VERSION, WS_PATH_V1, WS_SUBPROTOCOL_V1 } from '@switchboard/protocol';
import WebSocket from 'ws';
import { processStartTime } from './container-process.ts';
import { IpPool, ipv4ToNumber, parseIpv4Cidr } from './ip-pool.ts';
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

/** Whether `ip` is inside `cidr`. */
function inCidr(ip: string, cidr: string): boolean {
  const { network, size } = parseIpv4Cidr(cidr);
  const n = ipv4ToNumber(ip);
  return n !== undefined && n >= network && n < network + size;
}

/** Connects to ip:port from the host; resolves with the socket error's code and how long it took. */
async function tcpConnectError(ip: string, port: number): Promise<{ code: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port, timeout: 5_000 });
    socket.once('connect', () => {
      socket.destroy();
      reject(new Error(`connected to ${ip}:${port}`));
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve({ code: 'ETIMEDOUT', ms: Date.now() - started });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve({ code: err.code ?? String(err), ms: Date.now() - started }));
  });
}

/** A slice's endpoints: the API sends `null` for none, whatever the client's type says. */
function endpointsOf(slice: V1EndpointSlice): V1EndpointSlice['endpoints'] {
  return (slice.endpoints as V1EndpointSlice['endpoints'] | null) ?? [];
}

/** The endpoints of a Service's EndpointSlices that are ready, as "ip pod-name" sorted. */
function readyEndpoints(slices: readonly V1EndpointSlice[]): string[] {
  return slices.flatMap((s) => endpointsOf(s).filter((e) => e.conditions?.ready === true)
    .flatMap((e) => e.addresses.map((a) => `${a} ${e.targetRef?.name ?? '?'}`))).sort();
}

/**
 * Connects to `url` and calls `send` at once and after each chunk that leaves the answer incomplete;
 * resolves with everything received once `done` says it is complete. Rejects on a socket error,
 * when the peer closes first, or after 5 s.
 */
async function exchange(url: URL, send: (socket: Socket, received: string) => void, done: (received: string) => boolean): Promise<string> {
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  try {
    return await new Promise<string>((resolve, reject) => {
      let received = '';
      const timer = setTimeout(() => reject(new Error(`no complete answer from ${url.host} in 5s; got ${JSON.stringify(received)}`)), 5_000);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('close', () => {
        clearTimeout(timer);
        reject(new Error(`${url.host} closed the connection; got ${JSON.stringify(received)}`));
      });
      socket.on('data', (chunk) => {
        received += chunk.toString('utf8');
        if (done(received)) {
          clearTimeout(timer);
          resolve(received);
        } else {
          send(socket, received);
        }
      });
      send(socket, received);
    });
  } finally {
    socket.destroy();
  }
}

/** Sends Redis a PING over a raw socket; resolves with its answer line. */
async function redisPing(redisUrl: string): Promise<string> {
  const answer = await exchange(new URL(redisUrl), (socket, r) => {
    if (r === '') socket.write('PING\r\n');
  }, (r) => r.endsWith('\r\n'));
  return answer.trim();
}

/**
 * Speaks the NATS client protocol over a raw socket: reads the server's INFO line, then asks
 * JetStream for the account's info (`$JS.API.INFO`, answered only when JetStream runs).
 * Resolves with the INFO object and the JetStream answer's type.
 */
async function natsJetStreamProbe(natsUrl: string): Promise<{ info: { jetstream?: boolean; host?: string; version?: string }; jsType: string }> {
  const inbox = '_INBOX.probe';
  /** The payload of the reply (`MSG <subject> 1 <bytes>\r\n<payload>\r\n`) once it is all there. */
  const reply = (r: string): string | undefined => {
    const header = /^MSG \S+ 1 (\d+)\r\n/m.exec(r);
    if (header === null) return undefined;
    const start = header.index + header[0].length;
    const end = start + Number(header[1]);
    return r.length >= end + 2 ? r.slice(start, end) : undefined;
  };
  let sent = false;
  const answer = await exchange(new URL(natsUrl), (socket, r) => {
    if (!sent && r.includes('\r\n')) {
      sent = true;
      socket.write(`CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nSUB ${inbox} 1\r\nPUB $JS.API.INFO ${inbox} 0\r\n\r\n`);
    }
  }, (r) => reply(r) !== undefined);
  const infoLine = answer.slice(0, answer.indexOf('\r\n'));
  return {
    info: JSON.parse(infoLine.replace(/^INFO /, '')) as { jetstream?: boolean; host?: string; version?: string },
    jsType: (JSON.parse(reply(answer) ?? '{}') as { type?: string }).type ?? '',
  };
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
  const { namespace, core, apps, network } = cluster;
  const discovery = cluster.kubeConfig.makeApiClient(DiscoveryV1Api);
  const podRange = new IpPool(network.podCIDR);
  let pods: V1Pod[] = [];

  await t.test('the cluster runs in its own network namespace that the host routes to', () => {
    assert.match(network.netns, /^sbk8s-\d+$/);
    assert.ok(existsSync(`/run/netns/${network.netns}`), 'the namespace exists');
    assert.equal(new URL(network.apiServer).hostname, cluster.hostIP);
    assert.equal(new URL(cluster.kubeConfig.getCurrentCluster()?.server ?? '').hostname, cluster.hostIP, 'the kubeconfig points at the namespace');
    const route = execFileSync('ip', ['-4', 'route', 'get', podRange.allocate('probe')], { encoding: 'utf8' });
    assert.match(route, new RegExp(` via ${cluster.hostIP.replaceAll('.', '\\.')} dev ${network.veth} `), route);
    for (const p of recordedProcesses(cluster.stateDir)) {
      assert.equal(execFileSync('ip', ['netns', 'identify', String(p.pid)], { encoding: 'utf8' }).trim(), network.netns, `${p.file} runs in ${network.netns}`);
    }
  });

  await t.test('NATS with JetStream and Redis answer on the node address, from the host and the namespace', async () => {
    assert.equal(network.natsUrl, `nats://${cluster.hostIP}:4222`);
    assert.equal(network.redisUrl, `redis://${cluster.hostIP}:6379`);
    // From the host (this test process), through the veth.
    assert.equal(await redisPing(network.redisUrl), '+PONG');
    const nats = await natsJetStreamProbe(network.natsUrl);
    assert.equal(nats.info.jetstream, true, `JetStream enabled: ${JSON.stringify(nats.info)}`);
    assert.equal(nats.info.host, cluster.hostIP);
    assert.equal(nats.jsType, 'io.nats.jetstream.api.v1.account_info_response');
    assert.deepEqual(await (await fetch(`${network.natsMonitorUrl}/healthz`)).json(), { status: 'ok' });
    // From inside the namespace, where the pods are.
    const inNetns = (cmd: string[]) => execFileSync('nsenter', [`--net=/run/netns/${network.netns}`, '--', ...cmd], { encoding: 'utf8', timeout: 10_000 }).trim();
    assert.equal(inNetns(['redis-cli', '-h', cluster.hostIP, '-p', '6379', 'ping']), 'PONG');
    assert.match(inNetns(['bash', '-c', `exec 3<>/dev/tcp/${cluster.hostIP}/4222 && head -c 5 <&3`]), /^INFO/);
    for (const name of ['nats', 'redis']) {
      assert.ok(recordedProcesses(cluster.stateDir).some((p) => p.file === join(cluster.stateDir, 'pids', `${name}.pid`)), `${name} is a daemon of the cluster`);
    }
  });

  await t.test('kubectl talks to the API server of the pinned version', async () => {
    const version = JSON.parse(await cluster.kubectl(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string } };
    assert.equal(version.serverVersion.gitVersion, KUBERNETES_VERSION);
    const nodes = await core.listNode();
    assert.equal(nodes.items.length, 1);
    assert.equal(nodes.items[0]?.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    assert.deepEqual(nodes.items[0]?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address, cluster.hostIP);
    // The API server's own Service: a cluster IP of the service range, and its address published
    // by the API server's endpoint reconciler (which refused nothing of 127.0.0.0/8 any more).
    const kubernetes = await core.readNamespacedService({ name: 'kubernetes', namespace: 'default' });
    assert.ok(inCidr(kubernetes.spec?.clusterIP ?? '', network.serviceCIDR), `kubernetes.default ${kubernetes.spec?.clusterIP} in ${network.serviceCIDR}`);
    const apiSlices = await waitFor('the EndpointSlice of kubernetes.default', async () => {
      const list = await discovery.listNamespacedEndpointSlice({ namespace: 'default', labelSelector: 'kubernetes.io/service-name=kubernetes' });
      return list.items.some((s) => endpointsOf(s).length > 0) ? list.items : undefined;
    });
    assert.deepEqual(apiSlices.flatMap((s) => endpointsOf(s).flatMap((e) => e.addresses)), [cluster.hostIP]);
  });

  await t.test('a Deployment of the signaling image runs Ready pods that take WebSocket clients', async () => {
    await apps.createNamespacedDeployment({ namespace, body: signalingDeployment(namespace, 2) });
    pods = await waitFor('2 signaling pods Running and Ready', async () => {
      const list = await core.listNamespacedPod({ namespace });
      return list.items.length === 2 && list.items.every(isReady) ? list.items : undefined;
    }, { timeoutMs: 120_000 });
    const ips = pods.map((p) => p.status?.podIP ?? '');
    for (const ip of ips) assert.ok(podRange.contains(ip), `pod IP ${ip} in ${network.podCIDR}`);
    assert.notEqual(ips[0], ips[1]);
    for (const pod of pods) {
      assert.equal(pod.spec?.nodeName, 'switchboard-node', 'bound by the real scheduler');
      assert.equal(pod.status?.hostIP, cluster.hostIP);
      assert.equal(pod.status?.containerStatuses?.[0]?.ready, true);
      assert.equal(pod.status?.containerStatuses?.[0]?.restartCount, 0);
    }
    // From the host (this test process), through the veth into the namespace.
    for (const ip of ips) assert.equal(await helloOverWebSocket(ip), 'welcome');
  });

  await t.test('a Service of the Deployment gets an EndpointSlice from the controller-manager', async () => {
    const labels = { 'app.kubernetes.io/name': 'switchboard-signaling' };
    const service = await core.createNamespacedService({
      namespace,
      body: { metadata: { name: 'signaling' }, spec: { selector: labels, ports: [{ name: 'ws', port: 80, targetPort: 'http' }] } },
    });
    const expected = pods.map((p) => `${p.status?.podIP} ${p.metadata?.name}`).sort();
    const slices = await waitFor('an EndpointSlice of Service signaling listing both ready pods', async () => {
      const list = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: 'kubernetes.io/service-name=signaling' });
      return readyEndpoints(list.items).join() === expected.join() ? list.items : undefined;
    }, { timeoutMs: 60_000 });
    for (const slice of slices) {
      assert.equal(slice.metadata?.labels?.['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io', 'made by the real EndpointSlice controller');
      assert.equal(slice.metadata?.ownerReferences?.[0]?.kind, 'Service');
      assert.equal(slice.addressType, 'IPv4');
      assert.deepEqual(slice.ports?.map((p) => [p.name, p.port, p.protocol]), [['ws', 8080, 'TCP']]);
      for (const e of endpointsOf(slice)) assert.equal(e.nodeName, 'switchboard-node');
    }
    // What a client that finds the pods through the slice (as an ingress controller would)
    // reaches: each endpoint address on the slice's port, from the host.
    for (const address of slices.flatMap((s) => endpointsOf(s).flatMap((e) => e.addresses))) {
      assert.equal(await helloOverWebSocket(address), 'welcome', `endpoint ${address}`);
    }
    // No kube-proxy: the cluster IP is allocated but not routed. The host fails it at once
    // (an unreachable route) instead of sending it out of the machine's default route.
    const clusterIP = service.spec?.clusterIP ?? '';
    assert.ok(inCidr(clusterIP, network.serviceCIDR), `cluster IP ${clusterIP} in ${network.serviceCIDR}`);
    const attempt = await tcpConnectError(clusterIP, 80);
    assert.equal(attempt.code, 'EHOSTUNREACH', `connecting to the cluster IP ${clusterIP}`);
    assert.ok(attempt.ms < 2_000, `refused locally, in ${attempt.ms} ms`);
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
    await waitFor('the Service\'s EndpointSlice to list no pods', async () => {
      const list = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: 'kubernetes.io/service-name=signaling' });
      return list.items.every((s) => endpointsOf(s).length === 0) ? true : undefined;
    }, { timeoutMs: 30_000 });
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
    assert.ok(all.length >= 8, `control plane processes recorded: ${all.map((p) => p.file).join(', ')}`);
    await cluster.close();
    for (const p of all) assert.equal(processStartTime(p.pid), undefined, `${p.file} (pid ${p.pid}) is gone`);
    // NATS and Redis no longer answer: their address left with the namespace. (A connect alone
    // proves nothing: the host's default route may lead to a network that accepts any connection.)
    assert.notEqual(await redisPing(network.redisUrl).catch((err: Error) => err.message), '+PONG', `${network.redisUrl} answers after close()`);
    const nats = await natsJetStreamProbe(network.natsUrl).catch((err: Error) => err.message);
    assert.equal(typeof nats, 'string', `${network.natsUrl} answers after close(): ${JSON.stringify(nats)}`);
    assert.equal(existsSync(`/run/netns/${network.netns}`), false, `namespace ${network.netns} is gone`);
    assert.equal(existsSync(`/sys/class/net/${network.veth}`), false, `veth ${network.veth} is gone`);
    const routes = execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' });
    for (const cidr of [network.podCIDR, network.serviceCIDR]) assert.ok(!routes.includes(cidr), `no route to ${cidr} left:\n${routes}`);
  });
});
