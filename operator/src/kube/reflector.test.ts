import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { hasCode } from "../errors.ts";
import { sendJson, sendStatus, startFakeApiServer, type FakeApiServer, type RecordedRequest } from "./fake-api-server.ts";
import { KubeHttp } from "./http.ts";
import type { KubeLogger } from "./logger.ts";
import { Reflector, backoffDelayMs, type ReflectorEventType, type ReflectorOptions, type RestartReason } from "./reflector.ts";
import type { KubeObject } from "./wire.ts";

type Handler = (req: RecordedRequest, res: ServerResponse) => void;

const CONFIGMAPS = { group: "", version: "v1", plural: "configmaps" };

function cm(name: string, uid: string, rv: string): KubeObject {
  return { metadata: { name, namespace: "ns", uid, resourceVersion: rv } };
}

function list(rv: string, items: KubeObject[]): Handler {
  return (_req, res) => sendJson(res, 200, { kind: "ConfigMapList", apiVersion: "v1", metadata: { resourceVersion: rv }, items });
}

function line(type: string, object: unknown): string {
  return `${JSON.stringify({ type, object })}\n`;
}

/** A watch answer that sends `lines` and then ends (or stays open with `hold`). */
function watch(lines: string[], options: { hold?: boolean } = {}): Handler {
  return (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.flushHeaders(); // as the API server does: a quiet watch still has its headers
    for (const l of lines) res.write(l);
    if (options.hold !== true) res.end();
  };
}

const hold: Handler = watch([], { hold: true });

/** Answers lists and watches from two scripts; past the end, the last list repeats and watches hang. */
function script(api: FakeApiServer, lists: Handler[], watches: Handler[]): { lists: RecordedRequest[]; watches: RecordedRequest[] } {
  const seen = { lists: [] as RecordedRequest[], watches: [] as RecordedRequest[] };
  api.handle((req, res) => {
    if (req.url.searchParams.get("watch") === "true") {
      seen.watches.push(req);
      (watches[seen.watches.length - 1] ?? hold)(req, res);
    } else {
      seen.lists.push(req);
      (lists[seen.lists.length - 1] ?? lists[lists.length - 1] ?? hold)(req, res);
    }
  });
  return seen;
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function setup(t: { after: (fn: () => unknown) => void }, options: Partial<ReflectorOptions> = {}) {
  const api = await startFakeApiServer();
  const client = await KubeHttp.fromKubeConfig(api.kubeConfig);
  const events: [ReflectorEventType, string, string | undefined][] = [];
  const reasons: RestartReason[] = [];
  const reflector = new Reflector(client, {
    resource: CONFIGMAPS,
    namespace: "ns",
    random: () => 0,
    initialBackoffMs: 20,
    onRestart: (reason) => reasons.push(reason),
    ...options,
  });
  reflector.subscribe((type, obj) => events.push([type, obj.metadata.name ?? "", obj.metadata.resourceVersion]));
  t.after(async () => {
    await reflector.stop();
    client.close();
    await api.close();
  });
  return { api, client, reflector, events, reasons };
}

test("an ERROR event with code 410 relists and synthesises DELETED, MODIFIED and ADDED from the difference", async (t) => {
  const { api, reflector, events, reasons } = await setup(t, { labelSelector: "app=x" });
  const seen = script(
    api,
    [
      list("10", [cm("a", "ua", "1"), cm("b", "ub", "2"), cm("c", "uc", "3"), cm("e", "ue1", "4")]),
      list("20", [cm("a", "ua", "11"), cm("b", "ub", "12"), cm("d", "ud", "13"), cm("e", "ue2", "14")]),
    ],
    [watch([line("MODIFIED", cm("a", "ua", "11")), line("ERROR", { kind: "Status", code: 410, reason: "Expired", message: "too old resource version: 10 (15)" })], { hold: true })],
  );
  reflector.start();
  await reflector.synced;
  await until("the second watch", () => seen.watches.length === 2);
  assert.deepEqual(events, [
    ["ADDED", "a", "1"],
    ["ADDED", "b", "2"],
    ["ADDED", "c", "3"],
    ["ADDED", "e", "4"],
    ["MODIFIED", "a", "11"],
    // the relist: c vanished, e is a new object under the same name, b changed, d is new; a is as it was
    ["DELETED", "c", "3"],
    ["DELETED", "e", "4"],
    ["MODIFIED", "b", "12"],
    ["ADDED", "d", "13"],
    ["ADDED", "e", "14"],
  ]);
  assert.deepEqual(reasons, ["gone"]);
  assert.equal(reflector.restarts, 1);
  assert.equal(seen.lists.length, 2);
  assert.deepEqual(reflector.list().map((o) => o.metadata.name).sort(), ["a", "b", "d", "e"]);
  assert.equal(reflector.get("ns", "e")?.metadata.uid, "ue2");
  assert.equal(reflector.get("ns", "c"), undefined);
  // list items get the kind the list names
  assert.equal(reflector.get("ns", "a")?.kind, "ConfigMap");
  const [list1] = seen.lists;
  assert.equal(list1?.url.pathname, "/api/v1/namespaces/ns/configmaps");
  assert.equal(list1?.url.searchParams.get("labelSelector"), "app=x");
  assert.equal(list1?.url.searchParams.get("limit"), "500");
  const [w1, w2] = seen.watches;
  assert.equal(w1?.url.searchParams.get("resourceVersion"), "10");
  assert.equal(w1?.url.searchParams.get("allowWatchBookmarks"), "true");
  assert.equal(w1?.url.searchParams.get("timeoutSeconds"), "300");
  assert.equal(w1?.url.searchParams.get("labelSelector"), "app=x");
  assert.equal(w2?.url.searchParams.get("resourceVersion"), "20");
});

test("a bookmark moves the resourceVersion on; a watch refused with 410 relists; a clean end counts as 'closed'", async (t) => {
  const { api, reflector, events, reasons } = await setup(t);
  const seen = script(
    api,
    [list("5", [cm("a", "ua", "5")]), list("30", [cm("a", "ua", "5")])],
    [watch([line("BOOKMARK", { kind: "ConfigMap", metadata: { resourceVersion: "7" } })]), (_req, res) => sendStatus(res, 410, "Expired", "too old resource version: 7 (25)")],
  );
  reflector.start();
  await until("the third watch", () => seen.watches.length === 3);
  assert.deepEqual(reasons, ["closed", "gone"]);
  assert.equal(seen.watches[1]?.url.searchParams.get("resourceVersion"), "7");
  assert.equal(seen.watches[2]?.url.searchParams.get("resourceVersion"), "30");
  assert.equal(seen.lists.length, 2);
  assert.deepEqual(events, [["ADDED", "a", "5"]]); // the relist found nothing new
  assert.equal(reflector.resourceVersion, "30");
});

test("a malformed line or a non-410 ERROR restarts the watch from the last resourceVersion, without a relist", async (t) => {
  const { api, reflector, reasons } = await setup(t);
  const seen = script(
    api,
    [list("5", [])],
    [
      watch([line("ADDED", cm("a", "ua", "6")), "{oops\n"], { hold: true }),
      watch([line("ERROR", { kind: "Status", code: 500, reason: "InternalError", message: "etcd hiccup" })]),
    ],
  );
  reflector.start();
  await until("the third watch", () => seen.watches.length === 3);
  assert.deepEqual(reasons, ["watch-error", "watch-error"]);
  assert.equal(seen.watches[1]?.url.searchParams.get("resourceVersion"), "6");
  assert.equal(seen.watches[2]?.url.searchParams.get("resourceVersion"), "6");
  assert.equal(seen.lists.length, 1);
  assert.equal(reflector.size, 1);
});

test("the stall guard aborts a watch silent past its timeout plus slack", async (t) => {
  const { api, reflector, reasons } = await setup(t, { watchTimeoutSeconds: 1, stallSlackMs: 200 });
  const seen = script(api, [list("5", [])], [hold, hold]);
  reflector.start();
  await until("the second watch", () => seen.watches.length === 2);
  assert.deepEqual(reasons, ["stalled"]);
  assert.equal(seen.watches[0]?.url.searchParams.get("timeoutSeconds"), "1");
  assert.equal(seen.watches[1]?.url.searchParams.get("resourceVersion"), "5");
});

test("failed lists are retried on the one restart path until the first list is in", async (t) => {
  const { api, reflector, reasons, events } = await setup(t);
  const fail: Handler = (_req, res) => sendStatus(res, 500, "InternalError", "boom");
  script(api, [fail, fail, list("9", [cm("a", "ua", "9")])], []);
  reflector.start();
  reflector.start(); // idempotent
  await reflector.synced;
  assert.equal(reflector.hasSynced, true);
  assert.deepEqual(reasons, ["list-error", "list-error"]);
  assert.deepEqual(events, [["ADDED", "a", "9"]]);
});

test("stop() aborts the watch in flight and is idempotent; a reflector stopped before its first list rejects synced", async (t) => {
  const { api, reflector } = await setup(t);
  let closed = false;
  script(api, [list("5", [])], [(_req, res) => {
    res.on("close", () => {
      closed = true;
    });
    hold(_req, res);
  }]);
  reflector.start();
  await reflector.synced;
  await until("the watch", () => api.requests.length === 2);
  await Promise.all([reflector.stop(), reflector.stop()]);
  await until("the server to see the watch closed", () => closed);

  const { api: api2, reflector: never } = await setup(t);
  script(api2, [hold], []);
  never.start();
  await until("the list", () => api2.requests.length === 1);
  await never.stop();
  await assert.rejects(never.synced, (err) => hasCode(err, "OP_ERR_ABORTED"));
});

test("a subscriber that throws is logged and does not stop the others", async (t) => {
  const logged: string[] = [];
  const log = (_fields: Record<string, unknown>, message: string) => logged.push(message);
  const logger: KubeLogger = { debug: () => undefined, info: log, warn: log, error: log };
  const { api, reflector, events } = await setup(t, { logger });
  script(api, [list("1", [cm("a", "ua", "1")])], []);
  reflector.subscribe(() => {
    throw new Error("subscriber bug");
  });
  reflector.start();
  await reflector.synced;
  assert.deepEqual(events, [["ADDED", "a", "1"]]);
  assert.ok(logged.includes("reflector subscriber threw"));
});

test("backoffDelayMs doubles from the initial delay, caps, and jitters between half and all of it", () => {
  assert.equal(backoffDelayMs(0, 200, 30_000, () => 0), 100);
  assert.equal(backoffDelayMs(0, 200, 30_000, () => 0.999999), 199.9999);
  assert.equal(backoffDelayMs(3, 200, 30_000, () => 1), 1600);
  assert.equal(backoffDelayMs(20, 200, 30_000, () => 1), 30_000);
  assert.equal(backoffDelayMs(20, 200, 30_000, () => 0), 15_000);
  assert.equal(backoffDelayMs(5000, 200, 30_000, () => 1), 30_000);
  for (let attempt = 0; attempt < 12; attempt++) {
    const d = backoffDelayMs(attempt, 200, 30_000);
    const base = Math.min(30_000, 200 * 2 ** attempt);
    assert.ok(d >= base / 2 && d <= base, `${attempt}: ${d}`);
  }
});

test("the backoff grows while watches fail and starts over once a watch delivered something", async (t) => {
  const delays: unknown[] = [];
  const log = (fields: Record<string, unknown>) => {
    if ("delayMs" in fields) delays.push(fields["delayMs"]);
  };
  const logger: KubeLogger = { debug: log, info: log, warn: log, error: log };
  const { api, reflector, reasons } = await setup(t, { logger, initialBackoffMs: 40 });
  const refuse: Handler = (_req, res) => sendStatus(res, 500, "InternalError", "no");
  const seen = script(api, [list("1", [])], [refuse, refuse, refuse, watch([line("BOOKMARK", { metadata: { resourceVersion: "2" } }), "{bad\n"]), refuse]);
  reflector.start();
  await until("the sixth watch", () => seen.watches.length === 6);
  // random() = 0: half of 40·2^attempt; the bookmark resets the attempt count.
  assert.deepEqual(delays, [20, 40, 80, 20, 40]);
  assert.deepEqual(reasons, ["watch-error", "watch-error", "watch-error", "watch-error", "watch-error"]);
});
