import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { percentile, startTraffic, type Traffic } from "./failover-traffic.ts";
import { startPodCluster, type PodCluster } from "./pod-processes.ts";

// Fault tests of cluster mode (issue 4): pods are child processes on real NATS JetStream and Redis;
// clients use the SDK (exact resume, fallback URLs). Figures are printed, never asserted on time.

const CONFIG = join(tmpdir(), `switchboard-failover-${process.pid}.json`);

async function cluster(count: number): Promise<PodCluster> {
  // Senders here go faster than a person: lift the per-session rate limit.
  await writeFile(CONFIG, JSON.stringify({ limits: { ratePerSecond: 1000, rateBurst: 1000 } }));
  return startPodCluster(count, { SWITCHBOARD_CONFIG_FILE: CONFIG, SWITCHBOARD_RESUME_WINDOW_MS: "30000", SWITCHBOARD_LOG_LEVEL: "info" });
}

const active = (names: readonly string[]) => names.map((name) => ({ name, state: "ACTIVE" as const }));

function report(t: { diagnostic(m: string): void }, label: string, traffic: Traffic): ReturnType<Traffic["check"]> {
  const r = traffic.check();
  const refused = new Map<string, number>();
  for (const c of traffic.clients) for (const [code, n] of c.refused) refused.set(code, (refused.get(code) ?? 0) + n);
  const line = `${label}: ${r.acknowledged} acknowledged over ${r.pairs} sender→receiver pairs, ${r.delivered} delivered, lost ${r.lost}, duplicated ${r.duplicated}, reordered ${r.reordered}; refused and retried: ${JSON.stringify(Object.fromEntries(refused))}`;
  t.diagnostic(line);
  console.log(`# ${line}`);
  for (const e of r.examples) console.log(`#   ${e}`);
  return r;
}

test("kill -9 of a pod under traffic: its clients resume on other pods, no acknowledged message is lost", { timeout: 180_000 }, async (t) => {
  const pods = await cluster(3);
  t.after(() => pods.close());
  const traffic = await startTraffic(pods.pods, { clients: 36, roomSize: 4, prefix: "kill" });
  t.after(() => traffic.close());
  traffic.start(150);
  await sleep(3000);

  const victim = pods.pods[2];
  assert.ok(victim);
  const killedAt = performance.now();
  await victim.stop("SIGKILL");
  // The operator sees the pod gone and rewrites the ring (here after a second).
  await sleep(1000);
  await pods.writeRing(2, active(["pod-0", "pod-1"]));
  await sleep(6000);
  await traffic.stop();
  await traffic.settle(20_000);

  const moved = traffic.clients.filter((c) => c.pod === 2);
  const resumeMs = moved.map((c) => (c.resumes.find((r) => r.atMs > killedAt)?.atMs ?? Number.NaN) - killedAt);
  const line = `kill -9: ${moved.length} clients of the killed pod resumed on ${[...new Set(moved.flatMap((c) => c.resumes.map((r) => r.pod)))].join(", ")}; resume time after the kill p50 ${percentile(resumeMs, 50).toFixed(0)} ms, p99 ${percentile(resumeMs, 99).toFixed(0)} ms, max ${Math.max(...resumeMs).toFixed(0)} ms`;
  t.diagnostic(line);
  console.log(`# ${line}`);
  const r = report(t, "kill -9", traffic);
  assert.equal(r.lost, 0, "no acknowledged message lost");
  assert.equal(r.reordered, 0, "no message overtook an earlier one of the same sender");
  for (const c of moved) {
    assert.equal(c.sessionLost, 0, `${c.name} resumed its session (not a new one)`);
    assert.ok(c.resumes.some((x) => x.atMs > killedAt && x.pod !== "pod-2"), `${c.name} resumed on a live pod`);
  }
  assert.ok(r.acknowledged > 1000, "traffic flowed");
});

test("a fourth pod joins the ring under traffic: rooms move to it with nothing lost, duplicated or reordered", { timeout: 180_000 }, async (t) => {
  const pods = await cluster(3);
  t.after(() => pods.close());
  const traffic = await startTraffic(pods.pods, { clients: 36, roomSize: 4, prefix: "join" });
  t.after(() => traffic.close());
  traffic.start(150);
  await sleep(2000);
  const added = await pods.addPod("pod-3");
  // As the operator does it: JOINING first (owns nothing, follows the ring), then ACTIVE.
  await pods.writeRing(2, [...active(["pod-0", "pod-1", "pod-2"]), { name: "pod-3", state: "JOINING" }]);
  await sleep(1500);
  await pods.writeRing(3, active(["pod-0", "pod-1", "pod-2", "pod-3"]));
  await sleep(5000);
  await traffic.stop();
  await traffic.settle(20_000);
  const r = report(t, "fourth pod joins", traffic);
  assert.equal(r.lost, 0);
  assert.equal(r.duplicated, 0);
  assert.equal(r.reordered, 0);
  const handedOff = /"msg":"ring: handoff done"[^\n]*"version":3|"version":3[^\n]*"msg":"ring: handoff done"/.test(pods.pods.slice(0, 3).map((p) => p.output()).join("\n"));
  assert.ok(handedOff, "the old owners handed off at version 3");
  assert.match(added.output(), /"msg":"listening"/);
});

test("SIGTERM drain of a pod: it leaves the ring, its clients move to other pods, nothing lost", { timeout: 180_000 }, async (t) => {
  const pods = await cluster(3);
  t.after(() => pods.close());
  const traffic = await startTraffic(pods.pods, { clients: 36, roomSize: 4, prefix: "drain" });
  t.after(() => traffic.close());
  traffic.start(150);
  await sleep(2000);
  const leaving = pods.pods[1];
  assert.ok(leaving);
  // As the operator drains a pod: LEAVING (its rooms move), then SIGTERM (its clients move), then gone.
  await pods.writeRing(2, [...active(["pod-0", "pod-2"]), { name: "pod-1", state: "LEAVING" }]);
  await sleep(1500);
  const drainStarted = performance.now();
  const code = await leaving.stop("SIGTERM");
  const drainedMs = performance.now() - drainStarted;
  await pods.writeRing(3, active(["pod-0", "pod-2"]));
  await sleep(3000);
  await traffic.stop();
  await traffic.settle(20_000);
  const moved = traffic.clients.filter((c) => c.pod === 1);
  const line = `drain: pod-1 exited with ${code} after ${drainedMs.toFixed(0)} ms; ${moved.length} clients moved to ${[...new Set(moved.flatMap((c) => c.resumes.map((x) => x.pod)))].join(", ")}`;
  t.diagnostic(line);
  console.log(`# ${line}`);
  const r = report(t, "drain", traffic);
  assert.equal(code, 0, "the pod exited cleanly");
  assert.equal(r.lost, 0);
  assert.equal(r.duplicated, 0);
  assert.equal(r.reordered, 0);
  for (const c of moved) {
    assert.equal(c.sessionLost, 0, `${c.name} resumed its session`);
    assert.ok(c.resumes.some((x) => x.pod !== "pod-1"), `${c.name} moved to another pod`);
  }
});
