import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { isApiStatus } from './errors.ts';
import type { KubeHttp } from './kube-http.ts';

/** The node's identity and what it reports. */
export interface NodeInfo {
  readonly name: string;
  /** The node's InternalIP (the cluster network namespace's veth address, where the API server listens). */
  readonly address: string;
  /** Reported capacity and allocatable (`cpu`, `memory`, `pods`, `ephemeral-storage`). */
  readonly allocatable: Readonly<Record<string, string>>;
  readonly kubeletVersion: string;
}

/** @default seconds a node lease lasts without renewal */
export const DEFAULT_LEASE_DURATION_SECONDS = 40;
/** @default how often the lease is renewed, in ms (the kubelet's 10 s) */
export const DEFAULT_LEASE_RENEW_MS = 10_000;
/** @default how often the node status is written without changes, in ms */
export const DEFAULT_NODE_STATUS_MS = 60_000;

const BOOT_ID = randomUUID();

/** A Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function time(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The default allocatable of the node: generous CPU, the machine's memory, 110 pods. */
export function defaultAllocatable(): Record<string, string> {
  // A stand-in node runs only local processes; 16 CPUs lets a chart's requests schedule on a
  // 2-core machine, as they would on a real node of a real cluster.
  return { cpu: '16', memory: `${Math.floor(os.totalmem() / 2 ** 20)}Mi`, pods: '110', 'ephemeral-storage': '100Gi' };
}

/** Creates the Node object if it does not exist (as the kubelet registers itself). */
export async function registerNode(api: KubeHttp, node: NodeInfo): Promise<void> {
  try {
    await api.request('POST', '/api/v1/nodes', {
      body: {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: node.name,
          labels: {
            'kubernetes.io/hostname': node.name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
            'node.kubernetes.io/instance-type': 'switchboard-local',
          },
        },
        spec: {},
      },
    });
  } catch (err) {
    if (!isApiStatus(err, 409)) throw err;
  }
}

/** Writes the node's status: Ready (since `since`), addresses, capacity, node info. */
export async function writeNodeStatus(api: KubeHttp, node: NodeInfo, since: Date, now = new Date()): Promise<void> {
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type, status, reason, message, lastHeartbeatTime: time(now), lastTransitionTime: time(since),
  });
  await api.request('PATCH', `/api/v1/nodes/${node.name}/status`, {
    contentType: 'application/strategic-merge-patch+json',
    body: {
      status: {
        conditions: [
          condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'node agent has sufficient memory available'),
          condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'node agent has no disk pressure'),
          condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'node agent has sufficient PID available'),
          condition('Ready', 'True', 'KubeletReady', 'switchboard node agent is posting ready status'),
        ],
        addresses: [
          { type: 'InternalIP', address: node.address },
          { type: 'Hostname', address: node.name },
        ],
        capacity: node.allocatable,
        allocatable: node.allocatable,
        daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
        nodeInfo: {
          machineID: BOOT_ID.replaceAll('-', ''),
          systemUUID: BOOT_ID,
          bootID: BOOT_ID,
          kernelVersion: os.release(),
          osImage: 'switchboard node agent (local processes)',
          containerRuntimeVersion: 'switchboard-node-agent://0.1.0',
          kubeletVersion: node.kubeletVersion,
          kubeProxyVersion: '',
          operatingSystem: 'linux',
          architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        },
      },
    },
  });
}

/** Creates or renews the node's Lease in kube-node-lease (the heartbeat the node controller reads). */
export async function renewLease(api: KubeHttp, node: NodeInfo, nodeUid: string, now = new Date()): Promise<void> {
  const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${node.name}`;
  const spec = { holderIdentity: node.name, leaseDurationSeconds: DEFAULT_LEASE_DURATION_SECONDS, renewTime: microTime(now) };
  try {
    await api.request('PATCH', path, { contentType: 'application/merge-patch+json', body: { spec } });
  } catch (err) {
    if (!isApiStatus(err, 404)) throw err;
    await api.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
      body: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name: node.name,
          namespace: 'kube-node-lease',
          ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node.name, uid: nodeUid }],
        },
        spec,
      },
    });
  }
}
