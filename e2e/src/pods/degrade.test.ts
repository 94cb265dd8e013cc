/**
 * Issue 4, fault test "NATS, then Redis, stopped for 10 s: degrade and recover" (DESIGN §5
 * Degrade): two pod processes on their own nats-server and redis-server (services.ts), which the
 * test stops for 10 s and starts again on the same port and store.
 *
 * While a dependency is down, a room whose members are all on one pod (and owned by it) keeps
 * relaying; operations that need the missing dependency answer `SIG_ERR_UNAVAILABLE`, retryable,
 * at once rather than after a timeout; `/readyz` stays 200 and reports which breaker is open.
 * After the dependency is back every breaker closes by itself (no client traffic needed) and
 * the cross-pod operations work again. The fail-fast latency and the recovery time are printed
 * (lines starting with `#`), not asserted: every request only has to be answered well within the
 * breaker's call timeout.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ServerMessage, ServerMessageOf } from "@switchboard/protocol";
import { HashRing, parseRingDocument } from "@switchboard/ring";
import { RawClient } from "@switchboard/server/testing";
import { startPodCluster, type PodCluster, type PodProcess } from "./pod-processes.ts";
import { startTestServices, type ServiceProcess } from "./services.ts";

/** How long each dependency stays away. */
const OUTAGE_MS = 10_000;
/** Bound of a request's answer while a dependency is down (below the breaker's 2 s call timeout). */
const FAIL_FAST_BOUND_MS = 1000;
/** Bound of recovery after the dependency serves again. */
const RECOVERY_BOUND_MS = 20_000;

interface Readiness {
  status: string;
  cluster?: { bus: string; directory?: string; degraded: boolean };
}

test("NATS, then Redis, stopped for 10 s: pod-local rooms keep working, cross-pod operations fail fast and retryable, readiness says so, everything recovers by itself", async (t) => {
  const services = await startTestServices();
  let cluster: PodCluster | null = null;
  // One hook, so the pods go before the services they depend on.
  t.after(async () => {
    await cluster?.close();
    await services.close();
  });
  cluster = await startPodCluster(2, { SWITCHBOARD_NATS_URL: services.nats.url, SWITCHBOARD_REDIS_URL: services.redis.url });
  const [pod0, pod1] = cluster.pods as [PodProcess, PodProcess];
  const ring = new HashRing(parseRingDocument(await readFile(cluster.ringFile, "utf8")));
  const roomOwnedBy = (pod: string, prefix: string) => {
    for (let i = 0; ; i++) if (ring.ownerOf(`room:${prefix}${i}`)?.name === pod) return `${prefix}${i}`;
  };
  // "local": owned by pod-0, every member on pod-0. "cross": owned by pod-1, members on both pods,
  // so a relay from pod-0 goes edge → owner and one from pod-1 goes owner → edge.
  const localRoom = roomOwnedBy("pod-0", "local-");
  const crossRoom = roomOwnedBy("pod-1", "cross-");

  const clients: RawClient[] = [];
  t.after(() => Promise.all(clients.map((c) => c.close())));
  const connect = async (pod: PodProcess, user: string) => {
    const c = new RawClient(pod.wsUrl);
    clients.push(c);
    const welcome = await c.hello(user);
    return { c, peerId: welcome.peerId, user };
  };
  const a = await connect(pod0, "alice");
  const b = await connect(pod0, "bert");
  const x = await connect(pod0, "xavier");
  const y = await connect(pod1, "yvonne");
  // Idle through both outages (no frame to or from it), then used: it must not have been lost.
  const idle = await connect(pod0, "ida");
  for (const p of [a, b]) assert.equal((await p.c.request({ type: "join", room: localRoom })).type, "joined");
  for (const p of [x, y]) assert.equal((await p.c.request({ type: "join", room: crossRoom }, 5000)).type, "joined");

  let n = 0;
  /** Relays an offer and checks it arrives; throws the error frame it got instead. */
  const relay = async (from: { c: RawClient }, to: { c: RawClient; peerId: string }, room: string, timeoutMs = 3000) => {
    const sdp = `v=0\r\ns=${++n}`;
    const reply = await from.c.request({ type: "offer", room, to: to.peerId, sdp }, timeoutMs);
    if (reply.type !== "ok") throw Object.assign(new Error(`relay refused: ${JSON.stringify(reply)}`), { reply });
    await to.c.next((m) => m.type === "offer" && m.sdp === sdp, timeoutMs);
  };
  let fresh = 0;
  /** A client that connects now, joins the pod-local room and gets a relay there, then leaves. */
  const newcomer = async () => {
    const c = await connect(pod0, `new${++fresh}`);
    assert.equal((await c.c.request({ type: "join", room: localRoom })).type, "joined");
    await relay(a, c, localRoom);
    await c.c.close();
  };
  const ready = async (pod: PodProcess) => {
    const res = await fetch(`${pod.httpUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
    return { http: res.status, body: (await res.json()) as Readiness };
  };

  // Before any fault: everything relays, nothing is degraded.
  await relay(a, b, localRoom);
  await relay(x, y, crossRoom);
  await relay(y, x, crossRoom);
  for (const pod of [pod0, pod1]) assert.deepEqual((await ready(pod)).body.cluster, { bus: "closed", directory: "closed", degraded: false });
  await waitForDevices(a.c, y.user);

  await t.test("NATS stopped for 10 s", async (t) => {
    await outage(t, services.nats, {
      name: "NATS",
      breaker: "bus",
      // Edge → owner (pod-0 forwards to pod-1) and owner → edge (pod-1 publishes to pod-0's session).
      failing: [
        { what: "relay edge → owner", run: () => x.c.request({ type: "offer", room: crossRoom, to: y.peerId, sdp: "v=0\r\n" }, FAIL_FAST_BOUND_MS) },
        { what: "relay owner → edge", run: () => y.c.request({ type: "offer", room: crossRoom, to: x.peerId, sdp: "v=0\r\n" }, FAIL_FAST_BOUND_MS) },
      ],
      working: [() => relay(a, b, localRoom), () => relay(b, a, localRoom), newcomer],
      recovered: async () => {
        await relay(x, y, crossRoom, 1000);
        await relay(y, x, crossRoom, 1000);
      },
      ready,
      pods: [pod0, pod1],
    });
  });

  await t.test("Redis stopped for 10 s (its keys are gone when it comes back)", async (t) => {
    await outage(t, services.redis, {
      name: "Redis",
      breaker: "directory",
      // Calls across pods need the callee's devices from the directory.
      failing: [{ what: "call-invite across pods", run: () => a.c.request({ type: "call-invite", to: y.user }, FAIL_FAST_BOUND_MS) }],
      // Relay needs no Redis: pod-local rooms, and cross-pod rooms over NATS, keep working.
      working: [() => relay(a, b, localRoom), newcomer, () => relay(x, y, crossRoom), () => relay(y, x, crossRoom)],
      // The restarted Redis lost every key: the pods register their devices again by themselves.
      recovered: async () => {
        const trying = await a.c.request({ type: "call-invite", to: y.user }, 1000);
        if (trying.type !== "call-trying" || trying.devices !== 1) throw new Error(`call not placed yet: ${JSON.stringify(trying)}`);
        await y.c.next((m) => m.type === "call-incoming" && m.callId === trying.callId, 3000);
        assert.equal((await a.c.request({ type: "call-cancel", callId: trying.callId })).type, "ok");
        await y.c.next((m) => m.type === "call-ended" && m.callId === trying.callId, 3000);
      },
      ready,
      pods: [pod0, pod1],
    });
  });

  await t.test(
    "a session idle through both outages still works",
    // The restarted Redis lost the session's record: the session goes on, unlogged (not mistaken
    // for a takeover by another pod).
    async () => {
      assert.equal((await idle.c.request({ type: "join", room: localRoom })).type, "joined");
      await a.c.next((m) => m.type === "peer-joined" && m.peer.peerId === idle.peerId);
      await relay(a, idle, localRoom);
    },
  );
  for (const pod of [pod0, pod1]) assert.ok(pod.child.exitCode === null, `${pod.name} still runs:\n${pod.output().slice(-3000)}`);
});

interface OutagePlan {
  readonly name: string;
  /** The readiness field of the breaker this dependency opens. */
  readonly breaker: "bus" | "directory";
  /** Requests that need the missing dependency: each must answer SIG_ERR_UNAVAILABLE, retryable. */
  readonly failing: ReadonlyArray<{ what: string; run: () => Promise<ServerMessage> }>;
  /** Operations that must keep working during the outage. */
  readonly working: ReadonlyArray<() => Promise<void>>;
  /** Resolves once the cross-pod operations work again; rejects while they do not. */
  readonly recovered: () => Promise<void>;
  readonly ready: (pod: PodProcess) => Promise<{ http: number; body: Readiness }>;
  readonly pods: readonly PodProcess[];
}

async function outage(t: TestContext, service: ServiceProcess, plan: OutagePlan): Promise<void> {
  await service.stop();
  // Whatever fails below, the next outage starts with this dependency back.
  t.after(() => service.start());
  const stoppedAt = performance.now();
  const latencies: number[] = [];
  let rounds = 0;
  let openSeen = false;
  // Operate throughout the outage: the first requests meet a breaker that is still closed (the
  // dependency's failure itself must be fast), later ones an open or half-open breaker.
  while (performance.now() - stoppedAt < OUTAGE_MS) {
    rounds += 1;
    for (const f of plan.failing) {
      const started = performance.now();
      const reply = await f.run();
      latencies.push(performance.now() - started);
      assert.equal(reply.type, "error", `${f.what} with ${plan.name} down: ${JSON.stringify(reply)}`);
      const err = reply as ServerMessageOf<"error">;
      assert.equal(err.code, "SIG_ERR_UNAVAILABLE", `${f.what}: ${JSON.stringify(err)}`);
      assert.equal(err.retryable, true);
    }
    for (const w of plan.working) await w();
    for (const pod of plan.pods) {
      const r = await plan.ready(pod);
      // Degraded, not unready: the pod still serves its local rooms.
      assert.equal(r.http, 200, JSON.stringify(r.body));
      if (r.body.cluster?.[plan.breaker] !== "closed") openSeen = true;
    }
    await sleep(rounds < 5 ? 100 : 1000);
  }
  assert.ok(openSeen, `readiness reported the ${plan.breaker} breaker open while ${plan.name} was down`);
  const sorted = [...latencies].sort((p, q) => p - q);
  t.diagnostic(
    `${plan.name} down: ${latencies.length} cross-pod requests answered SIG_ERR_UNAVAILABLE in ` +
      `first ${fmt(latencies[0])} ms, median ${fmt(sorted[Math.floor(sorted.length / 2)])} ms, max ${fmt(sorted.at(-1))} ms`,
  );

  await service.start();
  const backAt = performance.now();
  let breakerClosedMs: number | null = null;
  let lastError: unknown = null;
  for (;;) {
    const elapsed = performance.now() - backAt;
    assert.ok(elapsed < RECOVERY_BOUND_MS, `recovered within ${RECOVERY_BOUND_MS} ms after ${plan.name} came back; last error: ${String(lastError)}`);
    if (breakerClosedMs === null) {
      const states = await Promise.all(plan.pods.map(async (p) => (await plan.ready(p)).body.cluster));
      if (states.every((s) => s?.[plan.breaker] === "closed" && !s.degraded)) breakerClosedMs = elapsed;
    }
    if (breakerClosedMs !== null) {
      try {
        await plan.recovered();
        break;
      } catch (err) {
        lastError = err;
      }
    }
    await sleep(50);
  }
  const workingMs = performance.now() - backAt;
  t.diagnostic(`${plan.name} back: breakers closed on every pod after ${fmt(breakerClosedMs ?? NaN)} ms (no client traffic), cross-pod operations work after ${fmt(workingMs)} ms`);
  // The pod-local room kept working through it all, and still does.
  for (const w of plan.working) await w();
}

/** Waits until the pod of `client` can place a call to `user` (its devices are registered). */
async function waitForDevices(client: RawClient, user: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const trying = await client.request({ type: "call-invite", to: user });
    if (trying.type === "call-trying" && trying.devices > 0) {
      await client.request({ type: "call-cancel", callId: trying.callId });
      return;
    }
    assert.ok(Date.now() < deadline, `devices of ${user} registered: ${JSON.stringify(trying)}`);
    await sleep(100);
  }
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? "-" : ms.toFixed(1);
}
