import assert from "node:assert/strict";
import { test } from "node:test";
import type { ServerMessageOf } from "@switchboard/protocol";
import { RawClient } from "@switchboard/server/testing";
import { startPodCluster } from "./pod-processes.ts";

test("three pod processes over real NATS JetStream and Redis: one room, clients on every pod, relay and broadcast; SIGTERM exits cleanly", async (t) => {
  const cluster = await startPodCluster(3);
  t.after(() => cluster.close());
  const clients = cluster.pods.map((p) => new RawClient(p.wsUrl));
  t.after(() => Promise.all(clients.map((c) => c.close())));
  const welcomes = await Promise.all(clients.map((c, i) => c.hello(`user${i}`)));
  for (const c of clients) assert.equal((await c.request({ type: "join", room: "lobby" })).type, "joined");
  const [c0, c1, c2] = clients as [RawClient, RawClient, RawClient];

  assert.equal((await c0.request({ type: "offer", room: "lobby", to: welcomes[2]?.peerId, sdp: "v=0\r\n" })).type, "ok");
  assert.equal((await c2.nextOf("offer")).from, welcomes[0]?.peerId);
  await c1.request({ type: "broadcast", room: "lobby", data: "hello" });
  assert.equal((await c0.nextOf("broadcast")).data, "hello");
  assert.equal((await c2.nextOf("broadcast")).data, "hello");

  const ready = (await (await fetch(`${cluster.pods[0]?.httpUrl}/readyz`)).json()) as { cluster?: { bus: string } };
  assert.equal(ready.cluster?.bus, "closed");

  // c1 leaves the cluster for good: the others hear it whichever pod owns the room.
  await c1.close();
  const left = (await c0.next((m) => m.type === "peer-left", 5000)) as ServerMessageOf<"peer-left">;
  assert.equal(left.peerId, welcomes[1]?.peerId);

  const code = await cluster.pods[2]?.stop("SIGTERM");
  assert.equal(code, 0, cluster.pods[2]?.output());
});
