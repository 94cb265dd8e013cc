import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processStartTime } from './container-process.ts';
import { sleep } from './container-runner.ts';
import { ClusterError, isApiStatus } from './errors.ts';
import { podTarget, writeTargets, type TargetGroup } from './file-sd.ts';
import { commandForImage, DEFAULT_IMAGE_MAP, type ImageMapEntry } from './images.ts';
import { IpPool } from './ip-pool.ts';
import type { KubeHttp, WatchEvent } from './kube-http.ts';
import {
  DEFAULT_LEASE_RENEW_MS, DEFAULT_NODE_STATUS_MS, registerNode, renewLease, writeNodeStatus, type NodeInfo,
} from './node-registration.ts';
import { containerEnv, type EnvSources } from './pod-env.ts';
import { PodRunner } from './pod-runner.ts';
import { provideServiceAccount, wantsServiceAccountToken } from './service-account.ts';
import type { Container, List, Pod } from './wire-types.ts';

/** Settings of a node agent. */
export interface NodeAgentOptions {
  /** API client with the node's credentials (CN=system:node:NAME, O=system:nodes). */
  readonly api: KubeHttp;
  /** PEM of the cluster CA, handed to pods with their service-account token. */
  readonly caPem: string;
  readonly nodeName: string;
  /**
   * The node's address (InternalIP, pods' `hostIP`, a `hostNetwork` pod's IP): the cluster's
   * network namespace's end of its veth, `10.200.N.2` (e2e/cluster/lib.sh).
   */
  readonly nodeIP: string;
  /**
   * The pods' range, every address of which is local to the cluster's network namespace:
   * `10.244.N.0/24`, pods get `.10`-`.254` (see {@link IpPool}).
   */
  readonly podCIDR: string;
  /** Pods' logs, pidfiles and service-account files go to `<stateDir>/pods/<ns>_<name>_<uid>/`. */
  readonly stateDir: string;
  /** Prometheus file_sd target file to keep up to date. */
  readonly fileSdPath: string;
  readonly allocatable: Readonly<Record<string, string>>;
  readonly kubeletVersion: string;
  /** Extra image map entries, tried before {@link DEFAULT_IMAGE_MAP}. */
  readonly images?: readonly ImageMapEntry[];
  /** Crash-loop back-off: first delay and cap, in ms. @default 10000 and 300000, as the kubelet */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly log?: (message: string) => void;
}

interface PodEntry {
  readonly runner: PodRunner;
  readonly podDir: string;
  serviceAccountEnv: Promise<Record<string, string>> | undefined;
  dirty: boolean;
  writing: Promise<void> | undefined;
  finishing: Promise<void> | undefined;
  gone: boolean;
}

/** @default delay to coalesce status changes before one write, in ms */
export const DEFAULT_STATUS_COALESCE_MS = 50;
/** @default first delay before a failed watch or status write is retried, in ms */
export const DEFAULT_WATCH_BACKOFF_MS = 500;
/** @default longest delay before a failed watch or status write is retried, in ms */
export const DEFAULT_WATCH_BACKOFF_MAX_MS = 10_000;

/**
 * The node agent, in place of a kubelet: registers a Node and keeps its Lease, watches the pods
 * bound to it, runs each as local processes on its own IP of the pod range (see {@link PodRunner}),
 * writes their status, finishes their deletion, and keeps Prometheus' target file current.
 * Owns its watches, timers and pods; `close()` stops them all.
 */
export class NodeAgent {
  readonly #o: NodeAgentOptions;
  readonly #node: NodeInfo;
  readonly #pool: IpPool;
  readonly #pods = new Map<string, PodEntry>();
  readonly #abort = new AbortController();
  readonly #images: readonly ImageMapEntry[];
  readonly #envSources: EnvSources;
  readonly #log: (message: string) => void;
  #loops: Promise<void>[] = [];
  #closed: Promise<void> | undefined;
  #targetsTimer: NodeJS.Timeout | undefined;

  constructor(options: NodeAgentOptions) {
    this.#o = options;
    this.#node = { name: options.nodeName, address: options.nodeIP, allocatable: options.allocatable, kubeletVersion: options.kubeletVersion };
    this.#pool = new IpPool(options.podCIDR);
    this.#images = [...(options.images ?? []), ...DEFAULT_IMAGE_MAP];
    this.#log = options.log ?? ((m) => console.log(`${new Date().toISOString()} ${m}`));
    const get = async (path: string) => {
      try {
        return await options.api.request<{ data?: Record<string, string> }>('GET', path);
      } catch (err) {
        if (isApiStatus(err, 404)) return undefined;
        throw err;
      }
    };
    this.#envSources = {
      configMap: async (ns, name) => (await get(`/api/v1/namespaces/${ns}/configmaps/${name}`))?.data ?? undefined,
      secret: async (ns, name) => {
        const s = await get(`/api/v1/namespaces/${ns}/secrets/${name}`);
        if (s === undefined) return undefined;
        return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      },
    };
  }

  /**
   * Registers the node, kills pod processes a previous agent left, and starts the heartbeat and
   * pod watch. Resolves once the node is registered and Ready; rejects when the API refuses.
   */
  async start(): Promise<void> {
    mkdirSync(join(this.#o.stateDir, 'pods'), { recursive: true });
    this.#reapOrphans();
    writeTargets(this.#o.fileSdPath, []);
    await registerNode(this.#o.api, this.#node);
    const since = new Date();
    await writeNodeStatus(this.#o.api, this.#node, since);
    const nodeObj = await this.#o.api.request<{ metadata: { uid: string } }>('GET', `/api/v1/nodes/${this.#node.name}`);
    await renewLease(this.#o.api, this.#node, nodeObj.metadata.uid);
    this.#log(`node ${this.#node.name} registered at ${this.#node.address}`);
    this.#loops = [this.#heartbeat(nodeObj.metadata.uid, since), this.#watchPods()];
  }

  /**
   * Stops the watches and heartbeat, then every pod (each within its grace period). Resolves when
   * all processes are gone. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#abort.abort();
      await Promise.all(this.#loops);
      await Promise.all([...this.#pods.values()].map((e) => e.runner.terminate()));
      clearTimeout(this.#targetsTimer);
      writeTargets(this.#o.fileSdPath, []);
      this.#o.api.close();
      this.#log('node agent stopped');
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Kills process groups recorded in pidfiles by an agent that did not stop them, and old pod dirs. */
  #reapOrphans(): void {
    const podsDir = join(this.#o.stateDir, 'pods');
    for (const dir of readdirSync(podsDir)) {
      for (const file of readdirSync(join(podsDir, dir)).filter((f) => f.endsWith('.pid'))) {
        const [pid, start] = readFileSync(join(podsDir, dir, file), 'utf8').trim().split(' ');
        if (pid !== undefined && start !== undefined && processStartTime(Number(pid)) === start) {
          this.#log(`killing process group ${pid} left by a previous node agent (${dir}/${file})`);
          try {
            process.kill(-Number(pid), 'SIGKILL');
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
          }
        }
      }
      rmSync(join(podsDir, dir), { recursive: true, force: true });
    }
  }

  async #heartbeat(nodeUid: string, since: Date): Promise<void> {
    const signal = this.#abort.signal;
    let lastStatus = Date.now();
    while (!signal.aborted) {
      await sleep(DEFAULT_LEASE_RENEW_MS, signal);
      if (signal.aborted) return;
      try {
        await renewLease(this.#o.api, this.#node, nodeUid);
        if (Date.now() - lastStatus >= DEFAULT_NODE_STATUS_MS) {
          await writeNodeStatus(this.#o.api, this.#node, since);
          lastStatus = Date.now();
        }
      } catch (err) {
        this.#log(`heartbeat failed: ${(err as Error).message}`);
      }
    }
  }

  async #watchPods(): Promise<void> {
    const signal = this.#abort.signal;
    const selector = `fieldSelector=${encodeURIComponent(`spec.nodeName=${this.#node.name}`)}`;
    let rv: string | undefined;
    let backoff = DEFAULT_WATCH_BACKOFF_MS;
    while (!signal.aborted) {
      try {
        if (rv === undefined) {
          const list = await this.#o.api.request<List<Pod>>('GET', `/api/v1/pods?${selector}`, { signal });
          const seen = new Set(list.items.map((p) => p.metadata.uid));
          for (const [uid, entry] of this.#pods) if (!seen.has(uid)) this.#onDeleted(entry.runner.pod);
          for (const pod of list.items) this.#onPod(pod);
          rv = list.metadata.resourceVersion;
        }
        const from: string = rv;
        await this.#o.api.watch(
          `/api/v1/pods?${selector}&watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${from}`,
          (ev) => { rv = this.#onWatchEvent(ev) ?? rv; },
          signal,
        );
        backoff = DEFAULT_WATCH_BACKOFF_MS;
      } catch (err) {
        if (signal.aborted) return;
        if (isApiStatus(err, 410)) {
          this.#log('pod watch expired (410 Gone): relisting');
          rv = undefined;
          continue;
        }
        this.#log(`pod watch failed, retrying in ${backoff}ms: ${(err as Error).message}`);
        // Full jitter, capped exponential (several agents must not restart their watches in step).
        await sleep(Math.random() * backoff, signal);
        backoff = Math.min(backoff * 2, DEFAULT_WATCH_BACKOFF_MAX_MS);
      }
    }
  }

  /** Applies one watch event; returns the resourceVersion to resume from. */
  #onWatchEvent(ev: WatchEvent): string | undefined {
    if (ev.type === 'ERROR') {
      const status = ev.object as { code?: number; message?: string; reason?: string };
      throw new ClusterError('CLUSTER_ERR_API', `pod watch: ${status.message ?? 'error event'}`, {
        status: status.code ?? 500,
        ...(status.reason === undefined ? {} : { reason: status.reason }),
      });
    }
    const pod = ev.object as unknown as Pod;
    if (ev.type === 'DELETED') this.#onDeleted(pod);
    else if (ev.type !== 'BOOKMARK') this.#onPod(pod);
    return pod.metadata.resourceVersion;
  }

  #onPod(pod: Pod): void {
    if (pod.spec.nodeName !== this.#node.name) return;
    const entry = this.#pods.get(pod.metadata.uid);
    if (entry !== undefined) {
      entry.runner.update(pod);
      if (pod.metadata.deletionTimestamp !== undefined) this.#finish(entry);
      return;
    }
    const phase = pod.status?.phase;
    if (pod.metadata.deletionTimestamp !== undefined || phase === 'Succeeded' || phase === 'Failed') {
      // Nothing of it runs here: a deletion only needs finishing.
      if (pod.metadata.deletionTimestamp !== undefined) void this.#deletePod(pod);
      return;
    }
    this.#admit(pod);
  }

  #admit(pod: Pod): void {
    const { uid, name } = pod.metadata;
    const ns = pod.metadata.namespace ?? 'default';
    let podIP: string;
    try {
      podIP = pod.spec.hostNetwork === true ? this.#node.address : this.#pool.allocate(uid, pod.status?.podIP);
    } catch (err) {
      this.#log(`cannot admit ${ns}/${name}: ${(err as Error).message}`);
      this.#event(pod, 'Warning', 'FailedCreatePodSandBox', (err as Error).message);
      return;
    }
    const podDir = join(this.#o.stateDir, 'pods', `${ns}_${name}_${uid}`);
    mkdirSync(podDir, { recursive: true });
    const entry: PodEntry = {
      podDir,
      serviceAccountEnv: undefined,
      dirty: false,
      writing: undefined,
      finishing: undefined,
      gone: false,
      runner: new PodRunner(pod, {
        podIP,
        hostIP: this.#node.address,
        podDir,
        image: (image) => commandForImage(image, this.#images),
        env: (p, c) => this.#containerEnv(entry, p, c, podIP),
        backoffMs: (restarts) => Math.min((this.#o.backoffInitialMs ?? 10_000) * 2 ** restarts, this.#o.backoffMaxMs ?? 300_000),
        changed: () => {
          this.#scheduleStatus(entry);
          this.#scheduleTargets();
        },
        event: (p, type, reason, message, fieldPath) => this.#event(p, type, reason, message, fieldPath),
      }),
    };
    this.#pods.set(uid, entry);
    this.#log(`pod ${ns}/${name} admitted on ${podIP}`);
    entry.runner.start();
    this.#scheduleStatus(entry);
  }

  async #containerEnv(entry: PodEntry, pod: Pod, container: Container, podIP: string): Promise<Record<string, string>> {
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: process.env['HOME'] ?? '/root',
      HOSTNAME: pod.metadata.name,
    };
    const expiration = wantsServiceAccountToken(pod);
    if (expiration !== undefined) {
      entry.serviceAccountEnv ??= provideServiceAccount(this.#o.api, pod, entry.podDir, this.#o.caPem, expiration);
      try {
        Object.assign(env, await entry.serviceAccountEnv);
      } catch (err) {
        entry.serviceAccountEnv = undefined; // asked again on the next try
        throw err;
      }
    }
    const own = await containerEnv(pod, container, { podIP, hostIP: this.#node.address, nodeAllocatable: this.#o.allocatable }, this.#envSources);
    for (const [k, v] of own) env[k] = v;
    return env;
  }

  /** Stops a pod that is being deleted, writes its last status and finishes the deletion. */
  #finish(entry: PodEntry): void {
    entry.finishing ??= (async () => {
      const pod = entry.runner.pod;
      this.#log(`pod ${pod.metadata.namespace}/${pod.metadata.name} deleted: stopping`);
      await entry.runner.terminate();
      this.#scheduleStatus(entry);
      await entry.writing;
      await this.#deletePod(pod);
      this.#forget(entry);
    })();
  }

  #onDeleted(pod: Pod): void {
    const entry = this.#pods.get(pod.metadata.uid);
    if (entry === undefined) return;
    entry.gone = true;
    // Gone from the API (force-deleted, or our own final delete): nothing is left to wait for.
    void entry.runner.terminate(0).then(() => this.#forget(entry));
  }

  #forget(entry: PodEntry): void {
    const { uid } = entry.runner.pod.metadata;
    if (this.#pods.get(uid) !== entry) return;
    this.#pods.delete(uid);
    this.#pool.release(uid);
    this.#scheduleTargets();
  }

  async #deletePod(pod: Pod): Promise<void> {
    const { namespace = 'default', name, uid } = pod.metadata;
    try {
      await this.#o.api.request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid } },
      });
      this.#log(`pod ${namespace}/${name} removed`);
    } catch (err) {
      if (!isApiStatus(err, 404) && !isApiStatus(err, 409)) this.#log(`deleting pod ${namespace}/${name} failed: ${(err as Error).message}`);
    }
  }

  #scheduleStatus(entry: PodEntry): void {
    entry.dirty = true;
    entry.writing ??= this.#flushStatus(entry).finally(() => { entry.writing = undefined; });
  }

  async #flushStatus(entry: PodEntry): Promise<void> {
    let backoff = DEFAULT_WATCH_BACKOFF_MS;
    while (entry.dirty && !entry.gone && !this.#abort.signal.aborted) {
      await sleep(DEFAULT_STATUS_COALESCE_MS, this.#abort.signal);
      entry.dirty = false;
      const { namespace = 'default', name } = entry.runner.pod.metadata;
      try {
        const updated = await this.#o.api.request<Pod>('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, {
          contentType: 'application/strategic-merge-patch+json',
          body: { metadata: { uid: entry.runner.pod.metadata.uid }, status: entry.runner.status() },
        });
        if (updated.metadata.uid === entry.runner.pod.metadata.uid) entry.runner.update(updated);
        backoff = DEFAULT_WATCH_BACKOFF_MS;
      } catch (err) {
        if (isApiStatus(err, 404)) return;
        this.#log(`status of ${namespace}/${name} not written, retrying: ${(err as Error).message}`);
        entry.dirty = true;
        await sleep(Math.random() * backoff, this.#abort.signal);
        backoff = Math.min(backoff * 2, DEFAULT_WATCH_BACKOFF_MAX_MS);
      }
    }
  }

  #scheduleTargets(): void {
    if (this.#targetsTimer !== undefined || this.#abort.signal.aborted) return;
    this.#targetsTimer = setTimeout(() => {
      this.#targetsTimer = undefined;
      const groups: TargetGroup[] = [];
      for (const entry of this.#pods.values()) {
        const running = entry.runner.runningContainers();
        if (running.length === 0) continue;
        const podIP = entry.runner.status().podIP ?? '';
        const group = podTarget({ pod: entry.runner.pod, podIP, containers: running.map((r) => r.container) }, this.#node.name);
        if (group !== undefined) groups.push(group);
      }
      try {
        writeTargets(this.#o.fileSdPath, groups);
      } catch (err) {
        this.#log(`writing ${this.#o.fileSdPath} failed: ${(err as Error).message}`);
      }
    }, DEFAULT_STATUS_COALESCE_MS);
  }

  #event(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string): void {
    const ns = pod.metadata.namespace ?? 'default';
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    this.#o.api.request('POST', `/api/v1/namespaces/${ns}/events`, {
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${pod.metadata.name}.`, namespace: ns },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid, ...(fieldPath === undefined ? {} : { fieldPath }) },
        type,
        reason,
        message,
        source: { component: 'kubelet', host: this.#node.name },
        reportingComponent: 'kubelet',
        reportingInstance: this.#node.name,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    }).catch((err: unknown) => this.#log(`event ${reason} for ${ns}/${pod.metadata.name} not recorded: ${(err as Error).message}`));
  }
}
