/**
 * The Helm chart (charts/switchboard) on a real control plane, as users meet it: `helm lint
 * --strict`, bad values refused by values.schema.json, the rendered manifests through a
 * server-side dry run, the RBAC held equal to operator/deploy's, then `helm install` with the
 * chart's SignalingCluster (operator Ready, cluster Ready), `helm upgrade` with a new value (the
 * operator rolls) and `helm uninstall` (what it removes, and the CRD it leaves).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { startLocalCluster, type LocalCluster } from '../cluster/local-cluster.ts';
import { REPO_ROOT } from '../cluster/paths.ts';
import { waitFor } from '../cluster/wait.ts';
import { tempManifest } from './harness.ts';

const CHART = join(REPO_ROOT, 'charts/switchboard');
const NS = 'sb-helm';
const RELEASE = 'switchboard';
const log = (line: string) => process.stdout.write(`# ${line}\n`);

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  rules?: unknown[];
  [key: string]: unknown;
}

const manifests = (text: string): Manifest[] => parseAllDocuments(text).map((d) => d.toJS() as Manifest | null).filter((m): m is Manifest => m !== null);

describe('the Helm chart on a local control plane', () => {
  let cluster: LocalCluster;
  /** Values that make the chart's SignalingCluster run here (local NATS and Redis, no tokens). */
  let clusterValues: string;

  before(async () => {
    cluster = await startLocalCluster({ keepState: process.env['SWITCHBOARD_E2E_KEEP_STATE'] === '1' });
    clusterValues = tempManifest(
      [
        'signalingCluster:',
        '  enabled: true',
        '  name: chat',
        '  spec:',
        '    image: ghcr.io/switchboard/switchboard/signaling:0.1.0',
        '    replicas: 2',
        `    nats: {url: "${cluster.network.natsUrl}"}`,
        `    redis: {url: "${cluster.network.redisUrl}"}`,
        '    auth: {mode: insecure-dev}',
        '    drainTimeoutSeconds: 10',
        '',
      ].join('\n'),
    );
    await cluster.kubectl(['create', 'namespace', NS]);
  });
  after(async () => {
    await cluster?.close();
  });

  const template = (...args: string[]) => cluster.helm(['template', RELEASE, CHART, '-n', NS, '--kube-version', '1.36.0', ...args]);

  test('helm lint --strict passes, with the defaults and with a SignalingCluster', async () => {
    await cluster.helm(['lint', '--strict', CHART]);
    await cluster.helm(['lint', '--strict', CHART, '-f', clusterValues]);
  });

  test('bad values are refused by the schema, each with the field it is about', async () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['replicas below 1', ['--set', 'operator.replicas=0'], /\/operator\/replicas/],
      ['an unknown key (a typo)', ['--set', 'operator.replica=2'], /additional properties 'replica' not allowed/],
      ['a log level that does not exist', ['--set', 'operator.logLevel=verbose'], /\/operator\/logLevel/],
      ['a namespace that is not a name', ['--set', 'operator.watchNamespace=Not_A_Name'], /\/operator\/watchNamespace/],
      ['a pull policy that does not exist', ['--set', 'operator.image.pullPolicy=Sometimes'], /\/operator\/image\/pullPolicy/],
      ['a scrape interval that is not a duration', ['--set', 'metrics.podMonitor.interval=often'], /\/metrics\/podMonitor\/interval/],
      ['a SignalingCluster spec without NATS, Redis or auth', ['--set', 'signalingCluster.enabled=true', '--set', 'signalingCluster.spec.image=x'], /missing properties 'nats', 'redis', 'auth'/],
      ['a SignalingCluster with negative replicas', ['-f', clusterValues, '--set', 'signalingCluster.spec.replicas=-1'], /\/signalingCluster\/spec\/replicas/],
      ['a SignalingCluster enabled without a spec', ['--set', 'signalingCluster.enabled=true'], /signalingCluster.spec is required/],
      ['leader election timings that cannot work', ['--set', 'operator.leaderElection.renewDeadlineMs=20000'], /leaseDurationMs > renewDeadlineMs/],
    ];
    for (const [what, args, message] of cases) {
      await assert.rejects(template(...args), (err: Error) => {
        assert.match(err.message, message, what);
        return true;
      }, what);
    }
  });

  test('the rendered manifests pass a server-side dry run; the RBAC is operator/deploy/\'s', async () => {
    // The chart's crds/ first, as helm install does (a dry run cannot create a SignalingCluster of an unknown kind).
    await cluster.kubectl(['apply', '--server-side', '-f', join(CHART, 'crds')]);
    await cluster.kubectl(['wait', '--for=condition=Established', 'crd/signalingclusters.switchboard.dev', '--timeout=60s']);
    const rendered = await template('-f', clusterValues);
    const out = await cluster.kubectl(['apply', '--dry-run=server', '-f', tempManifest(rendered)]);
    log(`dry run: ${out.trim().split('\n').join('; ')}`);
    const kinds = manifests(rendered).map((m) => m.kind).sort();
    assert.deepEqual(kinds, ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'ConfigMap', 'ConfigMap', 'Deployment', 'Role', 'RoleBinding', 'Service', 'ServiceAccount', 'SignalingCluster']);

    const deploy = manifests(readFileSync(join(REPO_ROOT, 'operator/deploy/10-rbac.yaml'), 'utf8'));
    const chart = manifests(rendered);
    for (const kind of ['ClusterRole', 'Role']) {
      assert.deepEqual(chart.find((m) => m.kind === kind)?.rules, deploy.find((m) => m.kind === kind)?.rules, `${kind} rules as in operator/deploy/10-rbac.yaml`);
    }
    // The kustomize example (docs/helm.md, GitOps) renders to a SignalingCluster the API server accepts.
    await cluster.kubectl(['create', 'namespace', 'staging']);
    const kustomized = await cluster.kubectl(['kustomize', join(REPO_ROOT, 'examples/kustomize/overlays/staging')]);
    assert.match(await cluster.kubectl(['apply', '--dry-run=server', '-f', tempManifest(kustomized)]), /signalingcluster.switchboard.dev\/signaling created \(server dry run\)/);
    // With the Prometheus Operator's monitors on: both render, for the operator and the pods.
    const monitors = manifests(await template('--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.podMonitor.enabled=true')).filter((m) => m.apiVersion === 'monitoring.coreos.com/v1');
    assert.deepEqual(monitors.map((m) => m.kind).sort(), ['PodMonitor', 'ServiceMonitor']);
    // Watching one namespace binds the ClusterRole there only.
    const scoped = manifests(await template('--set', 'operator.watchNamespace=team-a'));
    assert.equal(scoped.find((m) => m.kind === 'ClusterRoleBinding'), undefined);
    assert.equal(scoped.find((m) => m.kind === 'RoleBinding' && m.metadata.namespace === 'team-a')?.metadata.name, 'switchboard-operator');
  });

  test('helm install: the operator Ready and the chart\'s SignalingCluster Ready; upgrade rolls the operator; uninstall removes what it made and leaves the CRD', async () => {
    const started = performance.now();
    const notes = await cluster.helm(['install', RELEASE, CHART, '-n', NS, '-f', clusterValues, '--wait', '--timeout', '3m']);
    assert.match(notes, /kubectl -n sb-helm wait --for=condition=Ready signalingcluster\/chat/, 'NOTES say what to do next');
    await cluster.kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'signalingcluster/chat', '--timeout=180s']);
    log(`helm install → operator Ready and SignalingCluster chat Ready: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const dashboards = await cluster.kubectl(['-n', NS, 'get', 'configmaps', '-l', 'grafana_dashboard=1', '-o', 'name']);
    assert.equal(dashboards.trim().split('\n').length, 3, `three dashboards for the Grafana sidecar: ${dashboards}`);

    const operatorPods = async () =>
      (await cluster.core.listNamespacedPod({ namespace: NS, labelSelector: 'app.kubernetes.io/component=operator' })).items.filter((p) => p.metadata?.deletionTimestamp === undefined).map((p) => p.metadata?.uid ?? '');
    const before = new Set(await operatorPods());
    assert.equal(before.size, 2);
    const upgradeStarted = performance.now();
    await cluster.helm(['upgrade', RELEASE, CHART, '-n', NS, '-f', clusterValues, '--set', 'operator.logLevel=debug', '--wait', '--timeout', '3m']);
    await waitFor('the operator rolled', async () => {
      const now = await operatorPods();
      return now.length === 2 && now.every((uid) => !before.has(uid)) ? now : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    const env = await cluster.kubectl(['-n', NS, 'get', 'deployment', 'switchboard-operator', '-o', 'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="SWITCHBOARD_OPERATOR_LOG_LEVEL")].value}']);
    assert.equal(env, 'debug');
    await cluster.kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'signalingcluster/chat', '--timeout=120s']);
    log(`helm upgrade (operator.logLevel=debug) → both operator pods replaced, cluster still Ready: ${((performance.now() - upgradeStarted) / 1000).toFixed(1)} s`);

    await cluster.helm(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m']);
    await waitFor('what the release made is gone', async () => {
      const left = await cluster.kubectl(['-n', NS, 'get', 'deployments,serviceaccounts,roles,rolebindings,services,configmaps,signalingclusters,statefulsets,pods', '-l', `app.kubernetes.io/instance in (${RELEASE},chat)`, '-o', 'name']);
      return left.trim() === '' ? true : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    const clusterScoped = await cluster.kubectl(['get', 'clusterroles,clusterrolebindings', '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name']);
    assert.equal(clusterScoped.trim(), '', 'the ClusterRole and its binding are gone');
    const crd = await cluster.kubectl(['get', 'crd', 'signalingclusters.switchboard.dev', '-o', 'name']);
    assert.equal(crd.trim(), 'customresourcedefinition.apiextensions.k8s.io/signalingclusters.switchboard.dev', 'helm leaves the CRD');
  });
});
