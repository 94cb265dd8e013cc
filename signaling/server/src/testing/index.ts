/**
 * `@switchboard/server/testing`: what tests and benchmarks outside the pod's package use of it — a
 * pod on port 0 with its clients torn down per test, a raw protocol client, a TCP proxy for
 * outages, JWT and JWKS helpers, and the few cluster parts the e2e tests and the benchmarks drive
 * directly. Not for production code; nothing here is part of the pod's public API.
 *
 * The cluster parts are loaded on first use, so a test that only needs a pod does not load the
 * NATS, Redis and Kubernetes clients.
 *
 * @module
 */
import type { KubernetesRingSource, KubernetesRingSourceOptions } from "../cluster/ring-source-kubernetes.ts";

export { JWT_AUTH, TEST_AUDIENCE, TEST_HS_SECRET, TEST_ISSUER, TestPod, closedWithin, eventually, jwt, metricValue, startPod, type Peer } from "./pod.ts";
export { RawClient } from "./raw-client.ts";
export { TcpProxy } from "./tcp-proxy.ts";
export { keyPair, startJwksServer, type JwksServer, type TestKeyPair } from "../auth/fixtures.ts";
export type { KubernetesRingSource, KubernetesRingSourceOptions };

/**
 * The pod's ring source on a ConfigMap through the Kubernetes API (e2e tests run it against a
 * real API server). Resolves with the source, not started.
 */
export async function kubernetesRingSource(options: KubernetesRingSourceOptions): Promise<KubernetesRingSource> {
  const { KubernetesRingSource: Source } = await import("../cluster/ring-source-kubernetes.ts");
  return new Source(options);
}

/** Where a cluster's state lives, for {@link removeClusterState}. */
export interface ClusterStateLocation {
  /** The cluster name (`config.cluster.name`). */
  readonly cluster: string;
  /** @default "nats://127.0.0.1:4222" */
  readonly natsUrl?: string;
  /** @default "redis://127.0.0.1:6379" */
  readonly redisUrl?: string;
}

/**
 * Deletes what pods of `cluster` leave behind: its JetStream stream (`SB_<cluster>`, with its
 * consumers) and every Redis key under `sb:<cluster>:`. Resolves once both are gone; rejects when
 * NATS or Redis cannot be reached.
 */
export async function removeClusterState(location: ClusterStateLocation): Promise<void> {
  const [{ NatsBus }, { RedisDirectory }] = await Promise.all([import("../cluster/nats-bus.ts"), import("../cluster/redis-directory.ts")]);
  const { cluster } = location;
  const bus = await NatsBus.connect({ servers: location.natsUrl ?? "nats://127.0.0.1:4222", stream: `SB_${cluster}`, subjects: [`sb.${cluster}.>`], maxAgeMs: 60_000 });
  try {
    await bus.deleteStream();
  } finally {
    await bus.close();
  }
  const directory = new RedisDirectory({ url: location.redisUrl ?? "redis://127.0.0.1:6379", cluster });
  try {
    await directory.ready();
    await directory.deleteAll();
  } finally {
    await directory.close();
  }
}
