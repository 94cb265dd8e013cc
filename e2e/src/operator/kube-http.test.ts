// The operator's raw API client against a real kube-apiserver: the admin kubeconfig (client
// certificate), a service-account token kubeconfig (as the node agent hands pods), and the
// in-cluster layout (token and CA files, KUBERNETES_SERVICE_HOST/PORT).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { isOperatorError, KubeHttp, type KubeList, type KubeObject, type OperatorError } from '@switchboard/operator/testing';
import { startLocalCluster, type LocalCluster } from '../cluster/local-cluster.ts';

async function rejection(p: Promise<unknown>): Promise<OperatorError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isOperatorError(err), `not an OperatorError: ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

/** A token for ServiceAccount `sa` that may read and write ConfigMaps of the namespace, nothing else. */
async function serviceAccountToken(admin: KubeHttp, ns: string, sa: string): Promise<string> {
  await admin.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { body: { metadata: { name: sa } } });
  await admin.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    body: { metadata: { name: sa }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create'] }] },
  });
  await admin.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    body: {
      metadata: { name: sa },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    },
  });
  const answer = await admin.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  return answer.status.token;
}

function caPem(cluster: LocalCluster): string {
  const current = cluster.kubeConfig.getCurrentCluster();
  assert.ok(current?.caData !== undefined);
  return Buffer.from(current.caData, 'base64').toString('utf8');
}

/** What a client with these credentials can and cannot do in the test namespace. */
async function exercise(client: KubeHttp, ns: string, name: string): Promise<void> {
  const created = await client.request<KubeObject>('POST', `/api/v1/namespaces/${ns}/configmaps`, { body: { metadata: { name }, data: { k: 'v' } } });
  assert.equal(created.metadata.name, name);
  const list = await client.request<KubeList>('GET', `/api/v1/namespaces/${ns}/configmaps`, { query: { fieldSelector: `metadata.name=${name}` } });
  assert.deepEqual(list.items.map((i) => i.metadata.name), [name]);

  const ac = new AbortController();
  // Open a watch, then make a change it must deliver.
  const watching = (async () => {
    for await (const ev of client.watchStream<KubeObject>(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: list.metadata.resourceVersion, timeoutSeconds: 30 }, ac.signal)) {
      if (ev.type === 'ADDED' && ev.object.metadata.name === `${name}-2`) return ev.object;
    }
    return undefined;
  })();
  await client.request('POST', `/api/v1/namespaces/${ns}/configmaps`, { body: { metadata: { name: `${name}-2` } } });
  const added = await watching;
  ac.abort();
  assert.equal(added?.metadata.name, `${name}-2`);
}

test('raw API client: credentials of every kind, statuses with the server\'s reason and message, watches', async (t) => {
  const cluster = await startLocalCluster();
  t.after(() => cluster.close());
  const ns = cluster.namespace;
  const admin = await KubeHttp.fromKubeConfig(cluster.kubeConfig);
  t.after(() => admin.close());

  await t.test('admin kubeconfig (client certificate)', async () => {
    const version = await admin.request<{ gitVersion: string }>('GET', '/version');
    assert.match(version.gitVersion, /^v1\.\d+/);
    await exercise(admin, ns, 'admin-cm');
  });

  await t.test('404, 409 AlreadyExists, 409 Conflict, 422 Invalid carry the API server\'s reason and message', async () => {
    const missing = await rejection(admin.request('GET', `/api/v1/namespaces/${ns}/configmaps/nope`));
    assert.equal(missing.status, 404);
    assert.equal(missing.reason, 'NotFound');
    assert.equal(missing.apiMessage, 'configmaps "nope" not found');

    await admin.request('POST', `/api/v1/namespaces/${ns}/configmaps`, { body: { metadata: { name: 'twice' } } });
    const again = await rejection(admin.request('POST', `/api/v1/namespaces/${ns}/configmaps`, { body: { metadata: { name: 'twice' } } }));
    assert.equal(again.status, 409);
    assert.equal(again.reason, 'AlreadyExists');

    const current = await admin.request<KubeObject>('GET', `/api/v1/namespaces/${ns}/configmaps/twice`);
    await admin.request('PUT', `/api/v1/namespaces/${ns}/configmaps/twice`, { body: { ...current, data: { a: '1' } } });
    const stale = await rejection(admin.request('PUT', `/api/v1/namespaces/${ns}/configmaps/twice`, { body: { ...current, data: { a: '2' } } }));
    assert.equal(stale.status, 409);
    assert.equal(stale.reason, 'Conflict');
    assert.match(stale.apiMessage ?? '', /the object has been modified/);
    assert.equal(stale.retryable, true);

    const invalid = await rejection(admin.request('POST', `/api/v1/namespaces/${ns}/configmaps`, { body: { metadata: { name: 'Not_A_Name' } } }));
    assert.equal(invalid.status, 422);
    assert.equal(invalid.reason, 'Invalid');
    assert.match(invalid.apiMessage ?? '', /ConfigMap "Not_A_Name" is invalid: metadata.name/);
    assert.equal(invalid.retryable, false);
    console.log(`422 message: ${invalid.apiMessage}`);

  });

  await t.test('service-account token kubeconfig (bearer token), limited by RBAC', async () => {
    const token = await serviceAccountToken(admin, ns, 'op');
    const tokenKubeConfig = (bearer: string) => {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'local', server: cluster.network.apiServer, caData: Buffer.from(caPem(cluster)).toString('base64'), skipTLSVerify: false }],
        users: [{ name: 'op', token: bearer }],
        contexts: [{ name: 'op', cluster: 'local', user: 'op', namespace: ns }],
        currentContext: 'op',
      });
      return kc;
    };
    const kc = tokenKubeConfig(token);
    const client = await KubeHttp.fromKubeConfig(kc);
    t.after(() => client.close());
    await exercise(client, ns, 'sa-cm');
    const forbidden = await rejection(client.request('GET', `/api/v1/namespaces/${ns}/secrets`));
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.reason, 'Forbidden');
    assert.match(forbidden.apiMessage ?? '', new RegExp(`system:serviceaccount:${ns}:op`));

    const anonymous = await KubeHttp.fromKubeConfig(tokenKubeConfig('not-a-token'));
    t.after(() => anonymous.close());
    const unauthorized = await rejection(anonymous.request('GET', `/api/v1/namespaces/${ns}/configmaps`));
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.reason, 'Unauthorized');
  });

  await t.test('in-cluster layout: token and CA files, KUBERNETES_SERVICE_HOST/PORT (loadFromCluster)', async (tt) => {
    const token = await serviceAccountToken(admin, ns, 'incluster');
    const root = mkdtempSync(join(tmpdir(), 'sa-'));
    tt.after(() => rmSync(root, { recursive: true, force: true }));
    const dir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), token);
    writeFileSync(join(dir, 'ca.crt'), caPem(cluster));
    writeFileSync(join(dir, 'namespace'), ns);
    const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
    const url = new URL(cluster.network.apiServer);
    process.env['KUBERNETES_SERVICE_HOST'] = url.hostname;
    process.env['KUBERNETES_SERVICE_PORT'] = url.port;
    const kc = new KubeConfig();
    try {
      kc.loadFromCluster(root);
    } finally {
      for (const [k, v] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    assert.equal(readFileSync(join(dir, 'token'), 'utf8'), token);
    const client = await KubeHttp.fromKubeConfig(kc);
    tt.after(() => client.close());
    await exercise(client, ns, 'incluster-cm');
  });
});
