import assert from "node:assert/strict";
import { test } from "node:test";
import { sendJson, sendStatus, startFakeApiServer } from "./fake-api-server.ts";
import { EventRecorder, type InvolvedObject } from "./events.ts";
import { KubeHttp } from "./http.ts";
import type { KubeLogger } from "./logger.ts";

const OBJ: InvolvedObject = { apiVersion: "switchboard.dev/v1alpha1", kind: "SignalingCluster", name: "demo", namespace: "ns", uid: "u-1" };

async function setup(t: { after: (fn: () => unknown) => void }) {
  const api = await startFakeApiServer();
  const client = await KubeHttp.fromKubeConfig(api.kubeConfig);
  let nowMs = Date.parse("2030-01-02T03:04:05.678Z");
  const warnings: Record<string, unknown>[] = [];
  const logger: KubeLogger = { debug: () => undefined, info: () => undefined, warn: (f) => warnings.push(f), error: (f) => warnings.push(f) };
  const recorder = new EventRecorder(client, { reportingInstance: "operator-0", logger, now: () => nowMs });
  api.handle((req, res) => (req.method === "POST" ? sendJson(res, 201, JSON.parse(req.body)) : sendJson(res, 200, {})));
  t.after(async () => {
    await recorder.close();
    client.close();
    await api.close();
  });
  return { api, recorder, warnings, advance: (ms: number) => (nowMs += ms) };
}

test("the first occurrence creates a core/v1 Event with the involved object, reporting component and instance", async (t) => {
  const { api, recorder } = await setup(t);
  recorder.record(OBJ, "Normal", "ScaledUp", "replicas 2 -> 3");
  await recorder.flush();
  const [req] = api.requests;
  assert.equal(req?.method, "POST");
  assert.equal(req?.url.pathname, "/api/v1/namespaces/ns/events");
  const ev = JSON.parse(req?.body ?? "{}");
  assert.match(ev.metadata.name, /^demo\.[0-9a-f]+$/);
  assert.equal(ev.metadata.namespace, "ns");
  assert.deepEqual(ev.involvedObject, OBJ);
  assert.equal(ev.type, "Normal");
  assert.equal(ev.reason, "ScaledUp");
  assert.equal(ev.message, "replicas 2 -> 3");
  assert.equal(ev.count, 1);
  assert.equal(ev.firstTimestamp, "2030-01-02T03:04:05Z");
  assert.equal(ev.lastTimestamp, "2030-01-02T03:04:05Z");
  assert.equal(ev.reportingComponent, "switchboard-operator");
  assert.deepEqual(ev.source, { component: "switchboard-operator" });
  assert.equal(ev.reportingInstance, "operator-0");
});

test("a repeat within 10 minutes bumps count and lastTimestamp; after the window, or with another message, a new Event", async (t) => {
  const { api, recorder, advance } = await setup(t);
  recorder.record(OBJ, "Warning", "DrainSlow", "pod-2 still has 4 rooms");
  advance(60_000);
  recorder.record(OBJ, "Warning", "DrainSlow", "pod-2 still has 4 rooms");
  advance(60_000);
  recorder.record(OBJ, "Warning", "DrainSlow", "pod-2 still has 4 rooms");
  recorder.record(OBJ, "Warning", "DrainSlow", "pod-2 still has 3 rooms");
  await recorder.flush();
  // Writes of one key run in order; another key's run beside them.
  const other = api.requests.find((r) => r.body.includes("3 rooms"));
  const [create, bump1, bump2] = api.requests.filter((r) => r !== other);
  const name = JSON.parse(create?.body ?? "{}").metadata.name as string;
  assert.equal(bump1?.method, "PATCH");
  assert.equal(bump1?.url.pathname, `/api/v1/namespaces/ns/events/${name}`);
  assert.equal(bump1?.headers["content-type"], "application/merge-patch+json");
  assert.deepEqual(JSON.parse(bump1?.body ?? "{}"), { count: 2, lastTimestamp: "2030-01-02T03:05:05Z" });
  assert.deepEqual(JSON.parse(bump2?.body ?? "{}"), { count: 3, lastTimestamp: "2030-01-02T03:06:05Z" });
  assert.equal(other?.method, "POST");
  advance(600_000);
  recorder.record(OBJ, "Warning", "DrainSlow", "pod-2 still has 4 rooms");
  await recorder.flush();
  const late = api.requests.at(-1);
  assert.equal(late?.method, "POST");
  assert.notEqual(JSON.parse(late?.body ?? "{}").metadata.name, name);
});

test("a bump of an Event that is gone creates a new one; failures are logged, never thrown", async (t) => {
  const { api, recorder, warnings } = await setup(t);
  recorder.record(OBJ, "Normal", "Reconciled", "ok");
  await recorder.flush();
  api.handle((req, res) => (req.method === "PATCH" ? sendStatus(res, 404, "NotFound", "events \"x\" not found") : sendJson(res, 201, {})));
  recorder.record(OBJ, "Normal", "Reconciled", "ok");
  await recorder.flush();
  assert.deepEqual(api.requests.map((r) => r.method), ["POST", "PATCH", "POST"]);

  api.handle((_req, res) => sendStatus(res, 403, "Forbidden", "events is forbidden"));
  recorder.record(OBJ, "Warning", "Failed", "nope");
  recorder.record({ ...OBJ, name: "other" }, "Normal", "not camel case", "x");
  await recorder.flush();
  assert.ok(warnings.some((w) => w["status"] === 403));
  assert.ok(warnings.some((w) => w["reason"] === "not camel case"));
  await recorder.close();
  recorder.record(OBJ, "Normal", "AfterClose", "dropped");
  await recorder.flush();
  assert.equal(api.requests.filter((r) => r.body.includes("AfterClose")).length, 0);
});
