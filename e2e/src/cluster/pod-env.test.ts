import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containerEnv, expandVars, type EnvSources } from './pod-env.ts';
import type { Container, Pod } from './wire-types.ts';

const container: Container = {
  name: 'app',
  image: 'switchboard/signaling',
  resources: { limits: { memory: '256Mi' }, requests: { cpu: '250m' } },
  envFrom: [{ configMapRef: { name: 'cfg' }, prefix: 'CFG_' }],
  env: [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
    { name: 'URL', value: 'http://$(POD_IP):8080/$(UNDEFINED)/$$(POD_IP)' },
    { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
    { name: 'CPU_M', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
    { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
    { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'sec', key: 'password' } } },
    { name: 'MAYBE', valueFrom: { secretKeyRef: { name: 'sec', key: 'absent', optional: true } } },
  ],
};

const pod: Pod = {
  metadata: { name: 'sig-1', namespace: 'ns', uid: 'u1', labels: { app: 'signaling' } },
  spec: { nodeName: 'n', containers: [container] },
};

const sources: EnvSources = {
  configMap: async (ns, name) => (ns === 'ns' && name === 'cfg' ? { A: '1' } : undefined),
  secret: async (ns, name) => (ns === 'ns' && name === 'sec' ? { password: 'hunter2' } : undefined),
};

const placement = { podIP: '10.244.1.10', hostIP: '10.200.1.2', nodeAllocatable: { cpu: '16', memory: '8Gi' } };

test('resolves env, downward API and secrets as the kubelet does', async () => {
  const env = Object.fromEntries(await containerEnv(pod, container, placement, sources));
  assert.deepEqual(env, {
    CFG_A: '1',
    POD_NAME: 'sig-1',
    POD_IP: '10.244.1.10',
    APP: 'signaling',
    URL: 'http://10.244.1.10:8080/$(UNDEFINED)/$(POD_IP)',
    MEM_MI: '256',
    CPU_M: '250',
    CPU_LIMIT: '16',
    PASSWORD: 'hunter2',
  });
});

test('a missing non-optional source is a CreateContainerConfigError', async () => {
  const bad: Container = { name: 'x', image: 'y', env: [{ name: 'V', valueFrom: { configMapKeyRef: { name: 'nope', key: 'k' } } }] };
  await assert.rejects(containerEnv(pod, bad, placement, sources), { code: 'CLUSTER_ERR_POD_SPEC', message: /configmap "nope" not found/ });
});

test('expandVars leaves unknown references and unescapes $$', () => {
  const vars = new Map([['A', 'x']]);
  assert.equal(expandVars('$(A)-$(B)-$$(A)-$$', vars), 'x-$(B)-$(A)-$');
});
