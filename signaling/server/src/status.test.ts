/**
 * `GET /status`: the pod's report to the operator (`PodReport` of `@switchboard/ring`), in
 * single-node mode and as a member of a cluster (in-memory adapters, a ring file).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { POD_REPORT_PATH, PodReport, serializeRingDocument } from "@switchboard/ring";
import { createSignalingServer } from "./app.ts";
import type { ClusterHosts } from "./cluster/cluster-hosts.ts";
import { ClusterNode } from "./cluster/cluster-node.ts";
import { MemoryBus } from "./cluster/memory-bus.ts";
import { MemoryDirectory } from "./cluster/memory-directory.ts";
import { MemorySessionStore } from "./cluster/memory-session-store.ts";
import { FileRingSource } from "./cluster/ring-source.ts";
import { RingView } from "./cluster/ring-view.ts";
import { MemoryRoomStore } from "./cluster/room-store.ts";
import { createLogger } from "./logger.ts";
import { eventually, startPod } from "./testing/pod.ts";

async function report(httpUrl: string): Promise<PodReport> {
  const res = await fetch(`${httpUrl}${POD_REPORT_PATH}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const parsed = PodReport.safeParse(await res.json());
  assert.ok(parsed.success, parsed.error?.message);
  return parsed.data;
}

test("single node: ready, no ring, the counts the metrics see; draining shows", async (t) => {
  const pod = await startPod(t, { podName: "pod-s" });
  const { eventLoopLagP99Ms, ...idle } = await report(pod.server.httpUrl);
  assert.deepEqual(idle, { pod: "pod-s", ready: true, draining: false, ring: { version: -1, state: null }, connections: 0, sessions: 0, rooms: 0 });
  assert.ok(eventLoopLagP99Ms >= 0 && Number.isFinite(eventLoopLagP99Ms));
  await pod.member("alice", "r1");
  await pod.member("bob", "r1");
  await pod.open("carol");
  const busy = await report(pod.server.httpUrl);
  assert.deepEqual([busy.connections, busy.sessions, busy.rooms], [3, 3, 1]);
  assert.ok(busy.eventLoopLagP99Ms >= 0 && Number.isFinite(busy.eventLoopLagP99Ms));

  const draining = pod.server.drain();
  await eventually(async () => (await report(pod.server.httpUrl)).draining, "draining in the report");
  const during = await report(pod.server.httpUrl);
  assert.equal(during.ready, false);
  await draining;
});

test("the event-loop lag is the p99 since the previous report: a 60 ms stall shows once", async (t) => {
  const pod = await startPod(t);
  await report(pod.server.httpUrl);
  // Let the sampler record a few periods, then block the loop.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const until = performance.now() + 60;
  while (performance.now() < until) {
    // busy: the loop cannot run the sampler's timer
  }
  await new Promise((resolve) => setTimeout(resolve, 30));
  const stalled = await report(pod.server.httpUrl);
  assert.ok(stalled.eventLoopLagP99Ms >= 40, `p99 ${stalled.eventLoopLagP99Ms} ms after a 60 ms stall`);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const after = await report(pod.server.httpUrl);
  assert.ok(after.eventLoopLagP99Ms < stalled.eventLoopLagP99Ms, "a new window starts at each report");
});

test("cluster mode: the ring version applied and this pod's own state in it", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "status-"));
  const ringPath = join(dir, "ring.json");
  const ring = (version: number, state: "JOINING" | "ACTIVE") =>
    serializeRingDocument({ version, members: [{ name: "pod-a", address: "127.0.0.1:8080", state, uid: "8d4b2c1e-0f3a-4b5c-9d6e-7f8a9b0c1d2e" }] });
  await writeFile(ringPath, ring(3, "JOINING"));
  const bus = new MemoryBus({ retryDelayMs: 10 });
  const directory = new MemoryDirectory();
  const node = (hosts: ClusterHosts) =>
    new ClusterNode(
      {
        podName: "pod-a",
        cluster: "status",
        bus,
        directory,
        ring: new RingView({ podName: "pod-a", source: new FileRingSource(ringPath, { pollMs: 50 }), directory }),
        sessions: new MemorySessionStore(),
        sessionTtlMs: 60_000,
        rooms: new MemoryRoomStore(),
        resumeWindowMs: 30_000,
        log: createLogger("silent"),
      },
      hosts,
    );
  const server = createSignalingServer({ config: { port: 0, podName: "pod-a", logLevel: "silent", auth: { mode: "insecure-dev" } }, defaultMetrics: false, cluster: node });
  t.after(async () => {
    await server.close();
    await bus.close();
    await rm(dir, { recursive: true, force: true });
  });
  await server.listen();
  assert.deepEqual((await report(server.httpUrl)).ring, { version: 3, state: "JOINING" });
  await writeFile(ringPath, ring(4, "ACTIVE"));
  await eventually(async () => (await report(server.httpUrl)).ring.version === 4, "version 4 applied");
  assert.deepEqual((await report(server.httpUrl)).ring, { version: 4, state: "ACTIVE" });
  await writeFile(ringPath, serializeRingDocument({ version: 5, members: [{ name: "pod-b", address: "127.0.0.1:8081", state: "ACTIVE" }] }));
  await eventually(async () => (await report(server.httpUrl)).ring.version === 5, "version 5 applied");
  assert.deepEqual((await report(server.httpUrl)).ring, { version: 5, state: null }, "not a member");
});
