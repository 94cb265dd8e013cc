import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeHttp } from './kube-http.ts';
import type { Pod } from './wire-types.ts';

/** @default token lifetime asked for, the kubelet's (the API server extends it for pods) */
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3607;

/** Whether the pod has the projected service-account token volume that admission adds. */
export function wantsServiceAccountToken(pod: Pod): number | undefined {
  for (const v of pod.spec.volumes ?? []) {
    for (const s of v.projected?.sources ?? []) {
      if (s.serviceAccountToken !== undefined) return s.serviceAccountToken.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS;
    }
  }
  return undefined;
}

/**
 * Gives a pod API access as its mounted service-account token would: asks the TokenRequest API
 * for a token bound to the pod, writes `serviceaccount/{token,ca.crt,namespace}` (the layout of
 * /var/run/secrets/kubernetes.io/serviceaccount) and a kubeconfig using it into `podDir`.
 * Resolves with the env that points the pod's clients at them: `KUBECONFIG` (which
 * `@kubernetes/client-node`'s `loadFromDefault()` and client-go read first) and
 * `KUBERNETES_SERVICE_HOST`/`_PORT`.
 */
export async function provideServiceAccount(
  api: KubeHttp,
  pod: Pod,
  podDir: string,
  caPem: string,
  expirationSeconds: number,
): Promise<Record<string, string>> {
  const ns = pod.metadata.namespace ?? 'default';
  const sa = pod.spec.serviceAccountName ?? 'default';
  const answer = await api.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        expirationSeconds,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
      },
    },
  });
  const dir = join(podDir, 'serviceaccount');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'token'), answer.status.token, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), caPem);
  writeFileSync(join(dir, 'namespace'), ns);
  const server = api.server;
  const kubeconfig = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: in-cluster',
    '  cluster:',
    `    server: ${server.origin}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'users:',
    `- name: ${sa}`,
    '  user:',
    `    token: ${answer.status.token}`,
    'contexts:',
    '- name: in-cluster',
    '  context:',
    '    cluster: in-cluster',
    `    namespace: ${ns}`,
    `    user: ${sa}`,
    'current-context: in-cluster',
    '',
  ].join('\n');
  const kubeconfigFile = join(podDir, 'kubeconfig');
  writeFileSync(kubeconfigFile, kubeconfig, { mode: 0o600 });
  return {
    KUBECONFIG: kubeconfigFile,
    KUBERNETES_SERVICE_HOST: server.hostname,
    KUBERNETES_SERVICE_PORT: server.port === '' ? '443' : server.port,
    KUBERNETES_SERVICE_PORT_HTTPS: server.port === '' ? '443' : server.port,
  };
}
