import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import { Breaker } from "./breaker.ts";
import type { ClusterHosts } from "./cluster-hosts.ts";
import { ClusterNode } from "./cluster-node.ts";
import { timedDirectory, timedRoomStore, timedSessionStore, type ClusterMetrics } from "./cluster-metrics.ts";
import type { Directory } from "./directory.ts";
import { NatsBus } from "./nats-bus.ts";
import { RedisDirectory } from "./redis-directory.ts";
import { RedisSessionStore } from "./redis-session-store.ts";
import { RedisRoomStore } from "./redis-room-store.ts";
import { FileRingSource, RedisRingSource, type RingSource } from "./ring-source.ts";
import { RingView } from "./ring-view.ts";

/** A connected cluster node and the connections it runs on (closed by `close`). */
export interface ClusterConnection {
  /** Makes this pod's node for the server's rooms and sessions (`createSignalingServer({ cluster })`). */
  readonly makeNode: (hosts: ClusterHosts) => ClusterNode;
  close(): Promise<void>;
}

/** Options of {@link connectCluster}. */
export interface ConnectClusterOptions {
  /**
   * Registers this pod's cluster metrics (`PodMetrics.cluster`) and returns where to report them:
   * JetStream publishes and consumer backlogs, Redis calls by store, breaker states. Called only in
   * cluster mode, so a single-node pod exports none of them. Nothing is measured without it.
   */
  readonly metrics?: () => ClusterMetrics;
}

/**
 * Connects NATS (stream created or updated idempotently) and Redis and builds this pod's cluster
 * node from `config.cluster`. Resolves null in single-node mode (no cluster name). Rejects, having
 * closed what it opened, when NATS or Redis cannot be reached at start.
 */
export async function connectCluster(config: Config, log: Logger, options: ConnectClusterOptions = {}): Promise<ClusterConnection | null> {
  const { cluster } = config;
  if (!cluster.name) return null;
  const name = cluster.name;
  const metrics = options.metrics?.();
  const directory = new RedisDirectory({ url: cluster.redisUrl, cluster: name });
  let bus: NatsBus | undefined;
  let source: RingSource;
  try {
    await directory.ready();
    bus = await NatsBus.connect({
      servers: cluster.natsUrl,
      stream: `SB_${name}`,
      subjects: [`sb.${name}.>`],
      // Kept long enough for any resume and any takeover read.
      maxAgeMs: Math.max(2 * config.resumeWindowMs, 60_000),
      storage: cluster.storage,
      name: config.podName,
      log,
      ...(metrics ? { metrics } : {}),
    });
    source = await ringSource(config, name, directory, log);
  } catch (err) {
    await bus?.close();
    await directory.close();
    throw err;
  }
  const openBus = bus;
  // Each dependency has its own breaker, probed every second, so an outage shows in readiness
  // without traffic and the breaker closes by itself when the dependency answers again.
  const busBreaker = new Breaker({
    ...BREAKER,
    probe: () => openBus.ping(),
    onStateChange: (state) => {
      log.warn({ state, dependency: "nats" }, "cluster breaker");
      metrics?.breakerState("nats", state);
    },
  });
  // Made by the server (makeNode); the store breaker re-registers its devices when Redis is back.
  let node: ClusterNode | undefined;
  const storeBreaker = new Breaker({
    ...BREAKER,
    probe: () => directory.ping(),
    onStateChange: (state) => {
      log.warn({ state, dependency: "redis" }, "cluster breaker");
      metrics?.breakerState("redis", state);
      // A restarted Redis may have lost every key: this pod's devices are registered anew.
      if (state === "closed") node?.registerDevices();
    },
  });
  metrics?.breakerState("nats", busBreaker.state);
  metrics?.breakerState("redis", storeBreaker.state);
  // Every Redis call of the node is timed through these wrappers. The breakers' probes are not: they
  // check the dependency rather than do the pod's work, and their outcome is the breaker state.
  const sessions = new RedisSessionStore(directory.redis, name);
  const rooms = new RedisRoomStore(directory.redis, name, Math.max(2 * config.resumeWindowMs, 120_000));
  const nodeDirectory: Directory = metrics ? timedDirectory(directory, metrics.store("directory")) : directory;
  const makeNode = (hosts: ClusterHosts): ClusterNode => {
    if (node) throw new Error("connectCluster: makeNode is called once, by the one server of this connection");
    node = new ClusterNode(
      {
    podName: config.podName,
    cluster: name,
    bus,
    directory: nodeDirectory,
    ring: new RingView({ podName: config.podName, source, directory: nodeDirectory, onError: (err) => log.warn({ err }, "ring source error") }),
    sessions: metrics ? timedSessionStore(sessions, metrics.store("sessions")) : sessions,
    sessionTtlMs: Math.max(2 * config.resumeWindowMs, 60_000),
    rooms: metrics ? timedRoomStore(rooms, metrics.store("rooms")) : rooms,
    resumeWindowMs: config.resumeWindowMs,
    log,
    busBreaker,
    storeBreaker,
      },
      hosts,
    );
    return node;
  };
  return {
    makeNode,
    close: async () => {
      await Promise.all([busBreaker.close(), storeBreaker.close()]);
      await openBus.close();
      await directory.close();
    },
  };
}

/**
 * Where this pod reads the ring: the ConfigMap through the Kubernetes API, else the file, else the
 * Redis key `sb:<cluster>:ring`.
 */
async function ringSource(config: Config, name: string, directory: RedisDirectory, log: Logger): Promise<RingSource> {
  const { cluster } = config;
  if (cluster.ringConfigMap) {
    // Loaded only here: single-node pods and clusters without Kubernetes never load the client.
    const { KubernetesRingSource } = await import("./ring-source-kubernetes.ts");
    const source = new KubernetesRingSource({ name: cluster.ringConfigMap, ...(cluster.namespace ? { namespace: cluster.namespace } : {}) });
    log.info({ configMap: cluster.ringConfigMap, namespace: cluster.namespace }, "ring: watching the ConfigMap");
    return source;
  }
  if (cluster.ringFile) return new FileRingSource(cluster.ringFile);
  return new RedisRingSource(directory.redis, name);
}

/** Both breakers: a few fast failures open them; a probe a second after, and every second while closed. */
const BREAKER = { failureThreshold: 3, openMs: 1000, timeoutMs: 2000, probeEveryMs: 1000 } as const;
