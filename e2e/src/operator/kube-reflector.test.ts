// The operator's reflector against a real kube-apiserver: list, add/modify/delete, and an API
// server killed and started again (changes made before the reflector got back show up after).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubeHttp, Reflector, type KubeObject, type ReflectorEventType, type RestartReason } from '@switchboard/operator/testing';
import { startLocalCluster } from '../cluster/local-cluster.ts';
import { waitFor } from '../cluster/wait.ts';
import { restartApiServer } from './api-server.ts';

interface ConfigMap extends KubeObject {
  readonly data?: Record<string, string>;
}

const LABELS = { app: 'reflector-test' };

test('reflector: list, add/modify/delete, and an API server that goes away and comes back', async (t) => {
  const cluster = await startLocalCluster();
  t.after(() => cluster.close());
  const ns = cluster.namespace;
  const client = await KubeHttp.fromKubeConfig(cluster.kubeConfig);
  t.after(() => client.close());
  const path = `/api/v1/namespaces/${ns}/configmaps`;
  const create = (name: string, data: Record<string, string>) => client.request<ConfigMap>('POST', path, { body: { metadata: { name, labels: LABELS }, data } });
  const update = async (name: string, data: Record<string, string>) => {
    const cm = await client.request<ConfigMap>('GET', `${path}/${name}`);
    return client.request<ConfigMap>('PUT', `${path}/${name}`, { body: { ...cm, data } });
  };
  const remove = (name: string) => client.request('DELETE', `${path}/${name}`);

  // Objects from before the reflector starts arrive with the first list.
  await create('before', { v: '0' });
  await client.request('POST', path, { body: { metadata: { name: 'unlabelled-is-ignored' } } });

  const events: [ReflectorEventType, string, string | undefined][] = [];
  const reasons: RestartReason[] = [];
  const reflector = new Reflector<ConfigMap>(client, {
    resource: { group: '', version: 'v1', plural: 'configmaps' },
    namespace: ns,
    labelSelector: 'app=reflector-test',
    onRestart: (reason) => reasons.push(reason),
  });
  t.after(() => reflector.stop());
  reflector.subscribe((type, obj) => events.push([type, obj.metadata.name ?? '', obj.data?.['v']]));
  reflector.start();
  await reflector.synced;
  assert.deepEqual(reflector.list().map((o) => o.metadata.name), ['before']);
  assert.deepEqual(events, [['ADDED', 'before', '0']]);

  const has = (type: ReflectorEventType, name: string, v?: string) => () => events.some(([a, b, c]) => a === type && b === name && (v === undefined || c === v)) || undefined;

  await t.test('sees ADDED, MODIFIED and DELETED', async () => {
    await create('a', { v: '1' });
    await waitFor('ADDED a', has('ADDED', 'a', '1'));
    await update('a', { v: '2' });
    await waitFor('MODIFIED a', has('MODIFIED', 'a', '2'));
    await remove('before');
    await waitFor('DELETED before', has('DELETED', 'before'));
    assert.deepEqual(reflector.list().map((o) => o.metadata.name), ['a']);
    assert.equal(reflector.get(ns, 'a')?.data?.['v'], '2');
  });

  await t.test('survives the API server being killed and catches up on what changed meanwhile', async () => {
    await create('stays', { v: '1' });
    await create('goes', { v: '1' });
    await waitFor('both', () => (reflector.size === 3 ? true : undefined));
    const restartsBefore = reflector.restarts;
    const rvBefore = reflector.resourceVersion;
    const downMs = await restartApiServer(cluster, { downMs: 8000 });
    // The reflector is still backing off (its last try was refused): change things before it is back.
    const watching = reasons.length;
    await update('stays', { v: '2' });
    await remove('goes');
    await create('new', { v: '1' });
    const changedAt = performance.now();
    await waitFor('the reflector to catch up', () => {
      const names = reflector.list().map((o) => o.metadata.name).sort();
      return names.join(',') === 'a,new,stays' && reflector.get(ns, 'stays')?.data?.['v'] === '2' ? true : undefined;
    }, { timeoutMs: 90_000, intervalMs: 50 });
    const caughtUpMs = performance.now() - changedAt;
    assert.ok(reflector.restarts > restartsBefore, `restarts ${reflector.restarts}`);
    assert.ok(has('DELETED', 'goes')());
    assert.ok(has('ADDED', 'new', '1')());
    assert.ok(has('MODIFIED', 'stays', '2')());
    assert.notEqual(reflector.resourceVersion, rvBefore);
    console.log(
      `API server down ${(downMs / 1000).toFixed(1)} s; reflector restarts ${restartsBefore} -> ${reflector.restarts} ` +
        `(reasons while down and after: ${reasons.slice(restartsBefore).join(', ')}; ${reasons.length - watching} after the changes); ` +
        `caught up ${(caughtUpMs / 1000).toFixed(1)} s after the changes`,
    );
    // And it keeps following.
    await update('new', { v: '2' });
    await waitFor('MODIFIED new', has('MODIFIED', 'new', '2'));
  });

  await reflector.stop();
  const after = events.length;
  await create('after-stop', { v: '1' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(events.length, after, 'no events after stop()');
});
