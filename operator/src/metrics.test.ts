import assert from "node:assert/strict";
import { test } from "node:test";
import { OperatorMetrics } from "./metrics.ts";

const STATUS = {
  desiredReplicas: 3,
  replicas: 4,
  readyReplicas: 4,
  connections: 25,
  capacity: 30,
  ring: {
    version: 7,
    converged: true,
    members: [
      { name: "sc-0", state: "ACTIVE" as const, address: "a:1" },
      { name: "sc-1", state: "ACTIVE" as const, address: "b:1" },
      { name: "sc-2", state: "ACTIVE" as const, address: "c:1" },
      { name: "sc-3", state: "LEAVING" as const, address: "d:1" },
    ],
  },
};

test("per-cluster gauges: replicas, capacity, ring members by state, draining pods, scale events; gone with the cluster", async () => {
  const m = new OperatorMetrics();
  m.observeCluster("ns", "sc", STATUS, 1);
  m.scaled("ns", "sc", "down");
  const text = await m.registry.metrics();
  const value = (name: string, labels: string) => text.match(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, "m"))?.[1];
  const l = 'signalingcluster_namespace="ns",signalingcluster="sc"';
  assert.equal(value("switchboard_operator_desired_replicas", l), "3");
  assert.equal(value("switchboard_operator_replicas", l), "4");
  assert.equal(value("switchboard_operator_connections", l), "25");
  assert.equal(value("switchboard_operator_capacity_connections", l), "30");
  assert.equal(value("switchboard_operator_draining_pods", l), "1");
  assert.equal(value("switchboard_operator_ring_members", `${l},state="ACTIVE"`), "3");
  assert.equal(value("switchboard_operator_ring_members", `${l},state="LEAVING"`), "1");
  assert.equal(value("switchboard_operator_ring_members", `${l},state="JOINING"`), "0");
  assert.equal(value("switchboard_operator_scale_events_total", `${l},direction="down"`), "1");
  assert.equal(value("switchboard_operator_scale_events_total", `${l},direction="up"`), "0", "exported from 0");

  // Autoscaling turned off: no capacity any more.
  m.observeCluster("ns", "sc", { ...STATUS, capacity: undefined }, 0);
  assert.equal((await m.registry.metrics()).includes("switchboard_operator_capacity_connections{"), false);

  m.forgetCluster("ns", "sc");
  assert.equal((await m.registry.metrics()).includes('signalingcluster="sc"'), false, "every series of the cluster removed");
});

test("a replica that stops leading exports no cluster's series any more", async () => {
  const m = new OperatorMetrics();
  m.observeCluster("ns", "a", STATUS, 0);
  m.observeCluster("ns", "b", STATUS, 0);
  m.scaled("ns", "a", "up");
  m.forgetAllClusters();
  const text = await m.registry.metrics();
  assert.equal(/signalingcluster="[ab]"/.test(text), false);
  assert.match(text, /switchboard_operator_reconciles_total/, "its own series stay");
});
