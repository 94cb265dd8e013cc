/**
 * The pod's metrics of its cluster dependencies (JetStream publishes and consumer backlogs, Redis
 * calls by store, breaker states), on real NATS and Redis, with the pods wired as main.ts wires
 * them (`connectCluster` reporting into the pod's `PodMetrics`). Outages go through a TCP proxy
 * that the test cuts, so the shared NATS and Redis keep running.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { serializeRingDocument } from "@switchboard/ring";
import { createSignalingServer } from "../app.ts";
import { parseConfig } from "../config.ts";
import { createLogger } from "../logger.ts";
import { PodMetrics } from "../observability/metrics.ts";
import { TcpProxy } from "../testing/tcp-proxy.ts";
import { TestPod, eventually, metricValue, startPod } from "../testing/pod.ts";
import type { BusMetrics } from "./cluster-metrics.ts";
import { connectCluster } from "./connect.ts";
import { NatsBus } from "./nats-bus.ts";
import { RedisDirectory } from "./redis-directory.ts";

const NATS_URL = process.env["SWITCHBOARD_TEST_NATS"] ?? "nats://127.0.0.1:4222";
const REDIS_URL = process.env["SWITCHBOARD_TEST_REDIS"] ?? "redis://127.0.0.1:6379";
const CONSUMERS = ["commands", "events", "control"];
const CLUSTER_METRIC = /^switchboard_(jetstream|redis|dependency)_/m;

/** A new cluster (own stream and key prefix) with a ring file of `pods`, all ACTIVE; removed when the test ends. */
async function newCluster(t: TestContext, pods: readonly string[]): Promise<{ name: string; ringFile: string }> {
  const name = `m${randomBytes(5).toString("hex")}`;
  const dir = await mkdtemp(join(tmpdir(), "cluster-metrics-"));
  const ringFile = join(dir, "ring.json");
  await writeFile(ringFile, serializeRingDocument({ version: 1, members: pods.map((pod) => ({ name: pod, address: "127.0.0.1:8080", state: "ACTIVE" as const })) }));
  // Registered first, so it runs after the pods' own hooks.
  t.after(async () => {
    const bus = await NatsBus.connect({ servers: NATS_URL, stream: `SB_${name}`, subjects: [`sb.${name}.>`], maxAgeMs: 60_000, storage: "memory" });
    await bus.deleteStream();
    await bus.close();
    const directory = new RedisDirectory({ url: REDIS_URL, cluster: name });
    await directory.ready();
    await directory.deleteAll();
    await directory.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { name, ringFile };
}

/** A cluster-mode pod wired as main.ts does; it, its cluster connection and its metrics are closed when the test ends. */
async function startClusterPod(
  t: TestContext,
  cluster: { name: string; ringFile: string },
  podName: string,
  urls: { natsUrl?: string; redisUrl?: string } = {},
): Promise<TestPod> {
  const config = parseConfig({
    port: 0,
    podName,
    logLevel: "silent",
    auth: { mode: "insecure-dev" },
    cluster: { name: cluster.name, natsUrl: urls.natsUrl ?? NATS_URL, redisUrl: urls.redisUrl ?? REDIS_URL, ringFile: cluster.ringFile, storage: "memory" },
  });
  const log = createLogger("silent");
  const metrics = new PodMetrics(podName, { defaultMetrics: false });
  const connection = await connectCluster(config, log, { metrics: () => metrics.cluster() });
  assert.ok(connection, "cluster mode");
  const pod = new TestPod(createSignalingServer({ config, log, metrics, cluster: connection.makeNode }));
  t.after(async () => {
    await pod.close();
    await connection.close();
    metrics.close();
  });
  await pod.server.listen();
  return pod;
}

/** A room owned by `pod` (by its ring). */
function roomOwnedBy(pod: TestPod, prefix: string): string {
  for (let i = 0; ; i++) if (pod.server.cluster?.ownsRoom(`${prefix}-${i}`)) return `${prefix}-${i}`;
}

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

describe("cluster dependency metrics", () => {
  test("a single-node pod exports none of them", async (t) => {
    const pod = await startPod(t);
    await pod.member("alice", "r");
    assert.doesNotMatch(await pod.metrics(), CLUSTER_METRIC);
  });

  test("PodMetrics registers them once, on the first call of cluster()", async () => {
    const metrics = new PodMetrics("pod-r", { defaultMetrics: false });
    assert.doesNotMatch((await metrics.render()).body, CLUSTER_METRIC);
    const cluster = metrics.cluster();
    assert.equal(metrics.cluster(), cluster, "the same reporter");
    cluster.breakerState("redis", "open");
    cluster.breakerState("nats", "half-open");
    const text = (await metrics.render()).body;
    assert.equal(metricValue(text, "switchboard_dependency_breaker_state", { dependency: "redis" }), 2);
    assert.equal(metricValue(text, "switchboard_dependency_breaker_state", { dependency: "nats" }), 1);
    metrics.close();
  });

  test("two pods relaying across NATS: publish latencies, every consumer's backlog, Redis calls by store, both breakers closed", async (t) => {
    const cluster = await newCluster(t, ["pod-a", "pod-b"]);
    const a = await startClusterPod(t, cluster, "pod-a");
    const b = await startClusterPod(t, cluster, "pod-b");
    // Owned by pod-b: alice's messages go edge → owner, bob's owner → edge.
    const room = roomOwnedBy(b, "metrics");
    const alice = await a.member("alice", room);
    const bob = await b.member("bob", room);
    for (let i = 0; i < 5; i++) {
      assert.equal((await alice.client.request({ type: "offer", room, to: bob.peerId, sdp: `v=0\r\ns=${i}` })).type, "ok");
      await bob.client.next((m) => m.type === "offer" && m.sdp === `v=0\r\ns=${i}`);
      assert.equal((await bob.client.request({ type: "answer", room, to: alice.peerId, sdp: `v=0\r\na=${i}` })).type, "ok");
      await alice.client.next((m) => m.type === "answer" && m.sdp === `v=0\r\na=${i}`);
    }

    for (const [pod, name] of [
      [a, "pod-a"],
      [b, "pod-b"],
    ] as const) {
      const res = await pod.http("/metrics");
      assert.equal(res.status, 200);
      const text = res.text;
      assert.ok(metricValue(text, "switchboard_jetstream_publish_duration_seconds_count", { pod: name }) > 0, `${name} publishes timed`);
      assert.equal(
        metricValue(text, "switchboard_jetstream_publish_duration_seconds_bucket", { le: "+Inf" }),
        metricValue(text, "switchboard_jetstream_publish_duration_seconds_count"),
      );
      assert.equal(metricValue(text, "switchboard_jetstream_publish_failures_total"), 0);
      assert.match(text, /^switchboard_jetstream_publish_duration_seconds_bucket\{le="0\.0001",pod="pod-[ab]"\} \d+$/m);
      for (const consumer of CONSUMERS) {
        assert.match(text, new RegExp(`^switchboard_jetstream_consumer_pending\\{consumer="${consumer}",pod="${name}"\\} \\d+$`, "m"), `${name}: ${consumer} backlog`);
      }
      // Every pod reports its ring version and registers its sessions and devices; the owner saves the room.
      for (const store of name === "pod-b" ? ["directory", "sessions", "rooms"] : ["directory", "sessions"]) {
        assert.ok(metricValue(text, "switchboard_redis_command_duration_seconds_count", { store }) > 0, `${name}: ${store} calls timed`);
      }
      for (const store of ["directory", "sessions", "rooms"]) {
        assert.match(text, new RegExp(`^switchboard_redis_command_failures_total\\{store="${store}",pod="${name}"\\} 0$`, "m"), `${name}: ${store} failures at 0`);
      }
      for (const dependency of ["nats", "redis"]) {
        assert.match(text, new RegExp(`^switchboard_dependency_breaker_state\\{dependency="${dependency}",pod="${name}"\\} 0$`, "m"), `${name}: ${dependency} breaker closed`);
      }
    }
  });

  test("the bus counts a refused publish, reads each named consumer's backlog in the background, and stops when closed", async (t) => {
    const name = `m${randomBytes(5).toString("hex")}`;
    const acked: number[] = [];
    let failed = 0;
    let read: () => ReadonlyMap<string, number> = () => new Map();
    const metrics: BusMetrics = {
      publishAcked: (seconds) => {
        acked.push(seconds);
      },
      publishFailed: () => {
        failed += 1;
      },
      consumersPending: (r) => {
        read = r;
      },
    };
    const bus = await NatsBus.connect({ servers: NATS_URL, stream: `SB_${name}`, subjects: [`sb.${name}.>`], maxAgeMs: 60_000, storage: "memory", metrics, pendingRefreshMs: 20 });
    t.after(async () => {
      await bus.deleteStream();
      await bus.close();
    });
    await assert.rejects(bus.publish(`elsewhere.${name}`, new Uint8Array([1])), /no JetStream stream answers/);
    assert.deepEqual([acked.length, failed], [0, 1]);

    // Handlers held: three messages delivered and not acknowledged, then none.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const consumer = await bus.consume("held", `sb.${name}.held.>`, () => held, { keyOf: (m) => m.subject, metricsName: "held" });
    await bus.consume("unnamed", `sb.${name}.other.>`, () => undefined);
    assert.equal(read().get("held"), 0, "known from the consumer's creation");
    for (const key of ["k1", "k2", "k3"]) await bus.publish(`sb.${name}.held.${key}`, new Uint8Array([1]));
    assert.deepEqual([acked.length, failed], [3, 1]);
    for (const seconds of acked) assert.ok(seconds > 0 && seconds < 2, `publish to ack in ${seconds} s`);
    await eventually(() => read().get("held") === 3, "backlog of 3 read in the background");
    assert.deepEqual([...read().keys()], ["held"], "consumers without a metrics name are not reported");
    release();
    await eventually(() => read().get("held") === 0, "backlog back to 0");
    await consumer.close();
    assert.equal(read().has("held"), false, "a stopped consumer is forgotten");
  });

  test("a breaker's gauge reads 2 while it is open and 0 once its dependency is back: Redis, then NATS, cut off", async (t) => {
    const redis = await TcpProxy.start(hostPort(REDIS_URL));
    const nats = await TcpProxy.start(hostPort(NATS_URL));
    t.after(() => Promise.all([redis.close(), nats.close()]));
    const cluster = await newCluster(t, ["pod-o"]);
    const pod = await startClusterPod(t, cluster, "pod-o", { redisUrl: `redis://127.0.0.1:${redis.port}`, natsUrl: `nats://127.0.0.1:${nats.port}` });
    const state = async (dependency: string) => metricValue(await pod.metrics(), "switchboard_dependency_breaker_state", { dependency });
    const readiness = async () => ((await pod.http("/readyz")).body as { cluster: { bus: string; directory: string } }).cluster;
    assert.deepEqual([await state("nats"), await state("redis")], [0, 0]);
    await pod.open("before");

    redis.cut();
    // A session opened before the breaker opens tries Redis and fails there (the session still works here).
    await eventually(
      async () => {
        await pod.open(`during-${randomBytes(3).toString("hex")}`);
        return metricValue(await pod.metrics(), "switchboard_redis_command_failures_total", { store: "sessions" }) > 0;
      },
      "a failed Redis call counted",
      5000,
    );
    await eventually(async () => (await state("redis")) === 2, "redis breaker open", 10_000);
    assert.equal((await readiness()).directory, "open");
    assert.equal(await state("nats"), 0, "NATS is not affected");
    redis.restore();
    await eventually(async () => (await state("redis")) === 0, "redis breaker closed again", 10_000);
    assert.equal((await readiness()).directory, "closed");

    nats.cut();
    await eventually(async () => (await state("nats")) === 2, "nats breaker open", 10_000);
    assert.equal((await readiness()).bus, "open");
    assert.equal(await state("redis"), 0, "Redis is not affected");
    nats.restore();
    await eventually(async () => (await state("nats")) === 0, "nats breaker closed again", 10_000);
    assert.equal((await readiness()).bus, "closed");
  });
});
