/**
 * Runs the node agent as a process (started by e2e/cluster/up.sh):
 *   node e2e/src/cluster/node-agent-main.ts --kubeconfig FILE --node-name NAME --node-ip IP \
 *     --pod-cidr CIDR --state-dir DIR --file-sd FILE [--images FILE.json] [--kubelet-version vX.Y.Z]
 * It runs in the cluster's network namespace, as do the pods it starts (e2e/cluster/lib.sh).
 * `--images` adds image map entries: `[{"repository": "x/y", "command": {"entrypoint": [...], "cwd": "..."}}]`.
 * Stops its pods and exits on SIGTERM or SIGINT.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import type { ImageMapEntry } from './images.ts';
import { KubeHttp } from './kube-http.ts';
import { NodeAgent } from './node-agent.ts';
import { defaultAllocatable } from './node-registration.ts';

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    'node-name': { type: 'string' },
    'node-ip': { type: 'string' },
    'pod-cidr': { type: 'string' },
    'state-dir': { type: 'string' },
    'file-sd': { type: 'string' },
    images: { type: 'string' },
    'kubelet-version': { type: 'string' },
    'backoff-initial-ms': { type: 'string' },
  },
});

function required(name: keyof typeof values): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') {
    console.error(`node-agent: --${name} is required`);
    process.exit(2);
  }
  return v;
}

const kc = new KubeConfig();
kc.loadFromFile(required('kubeconfig'));
const caData = kc.getCurrentCluster()?.caData;
if (caData === undefined) {
  console.error('node-agent: the kubeconfig must embed certificate-authority-data');
  process.exit(2);
}
const kubeletVersion = values['kubelet-version'] ?? /^KUBERNETES_VERSION=(\S+)$/m.exec(
  readFileSync(new URL('../../cluster/VERSIONS', import.meta.url), 'utf8'),
)?.[1] ?? 'v0.0.0';

const agent = new NodeAgent({
  api: await KubeHttp.fromKubeConfig(kc),
  caPem: Buffer.from(caData, 'base64').toString('utf8'),
  nodeName: required('node-name'),
  nodeIP: required('node-ip'),
  podCIDR: required('pod-cidr'),
  stateDir: required('state-dir'),
  fileSdPath: required('file-sd'),
  allocatable: defaultAllocatable(),
  kubeletVersion,
  ...(values.images === undefined ? {} : { images: JSON.parse(readFileSync(values.images, 'utf8')) as ImageMapEntry[] }),
  ...(values['backoff-initial-ms'] === undefined ? {} : { backoffInitialMs: Number(values['backoff-initial-ms']) }),
});

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`${new Date().toISOString()} ${signal}: stopping pods`);
  agent.close().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error('node-agent: stopping failed', err);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

try {
  await agent.start();
} catch (err) {
  console.error('node-agent: start failed', err);
  await agent.close();
  process.exit(1);
}
