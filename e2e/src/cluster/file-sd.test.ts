import assert from 'node:assert/strict';
import { test } from 'node:test';
import { podTarget } from './file-sd.ts';
import type { Container, Pod } from './wire-types.ts';

const container: Container = { name: 'signaling', image: 'switchboard/signaling', ports: [{ name: 'ws', containerPort: 8080 }, { name: 'metrics', containerPort: 9100 }] };
const pod = (annotations: Record<string, string> = {}): Pod => ({
  metadata: { name: 'sig-1', namespace: 'ns', uid: 'u', labels: { 'app.kubernetes.io/name': 'switchboard' }, annotations, ownerReferences: [{ kind: 'ReplicaSet', name: 'sig', controller: true }] },
  spec: { containers: [container] },
});

test('targets the metrics port with kubernetes_sd meta labels', () => {
  const group = podTarget({ pod: pod(), podIP: '10.244.1.10', containers: [container] }, 'node-1');
  assert.deepEqual(group?.targets, ['10.244.1.10:9100']);
  assert.equal(group?.labels['__meta_kubernetes_pod_label_app_kubernetes_io_name'], 'switchboard');
  assert.equal(group?.labels['__meta_kubernetes_pod_controller_kind'], 'ReplicaSet');
  assert.equal(group?.labels['__meta_kubernetes_pod_node_name'], 'node-1');
});

test('the prometheus.io annotations choose the port or turn scraping off', () => {
  assert.deepEqual(podTarget({ pod: pod({ 'prometheus.io/port': '8080' }), podIP: '10.244.1.10', containers: [container] }, 'n')?.targets, ['10.244.1.10:8080']);
  assert.equal(podTarget({ pod: pod({ 'prometheus.io/scrape': 'false' }), podIP: '10.244.1.10', containers: [container] }, 'n'), undefined);
  assert.equal(podTarget({ pod: pod(), podIP: '10.244.1.10', containers: [{ name: 'x', image: 'y' }] }, 'n'), undefined);
});
