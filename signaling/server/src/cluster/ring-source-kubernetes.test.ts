/**
 * The Kubernetes ring source against a small HTTP server that plays the API server on a real
 * socket: the GET and watch requests it makes, the events it delivers, and the paths a real API
 * server rarely takes on demand (410 Gone as a status and as an ERROR event, a silent watch, a
 * broken stream). `e2e/src/pods/ring-source-kubernetes.test.ts` runs it against a real one.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { serializeRingDocument, type RingDocument } from "@switchboard/ring";
import { eventually } from "../testing/pod.ts";
import { KubernetesRingSource, KubernetesRingSourceError, watchBackoffMs, type KubernetesRingSourceOptions } from "./ring-source-kubernetes.ts";

const NAMESPACE = "sb";
const NAME = "ring";
const TOKEN = "fake-api-token";

function ringText(version: number, names: readonly string[] = ["pod-0"]): string {
  return serializeRingDocument({ version, members: names.map((name, i) => ({ name, address: `10.0.0.${i + 1}:8080`, state: "ACTIVE" as const })) });
}

function configMap(resourceVersion: string, text: string | undefined): object {
  return {
    kind: "ConfigMap",
    apiVersion: "v1",
    metadata: { name: NAME, namespace: NAMESPACE, resourceVersion },
    ...(text === undefined ? {} : { data: { "ring.json": text } }),
  };
}

/** One watch request the fake API received, with its response to write events to. */
interface WatchCall {
  readonly query: URLSearchParams;
  readonly res: ServerResponse;
  /** Resolves when the client closed the request (aborted it, or after the response ended). */
  readonly closed: Promise<void>;
  send(type: string, object: object): void;
}

/**
 * The API server's part: GET answers from `object` (404 when null), and each watch request is
 * handed to `onWatch` (the test answers it).
 */
class FakeApi {
  object: object | null = configMap("10", ringText(1));
  readonly gets: IncomingMessage[] = [];
  readonly watches: WatchCall[] = [];
  onWatch: (call: WatchCall) => void = (call) => call.res.writeHead(200, { "content-type": "application/json" }).flushHeaders();
  readonly #server = createServer((req, res) => this.#handle(req, res));

  async listen(t: TestContext): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    t.after(
      () =>
        new Promise<void>((resolve) => {
          this.#server.close(() => resolve());
          this.#server.closeAllConnections();
        }),
    );
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://fake");
    assert.equal(req.headers.authorization, `Bearer ${TOKEN}`, "the kubeconfig's credentials are sent");
    if (url.pathname === `/api/v1/namespaces/${NAMESPACE}/configmaps/${NAME}`) {
      this.gets.push(req);
      if (this.object === null) return status(res, 404, "NotFound", `configmaps "${NAME}" not found`);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(this.object));
      return;
    }
    if (url.pathname === `/api/v1/namespaces/${NAMESPACE}/configmaps` && url.searchParams.get("watch") === "true") {
      const closed = new Promise<void>((resolve) => res.once("close", resolve));
      const call: WatchCall = {
        query: url.searchParams,
        res,
        closed,
        send: (type, object) => res.write(`${JSON.stringify({ type, object })}\n`),
      };
      this.watches.push(call);
      this.onWatch(call);
      return;
    }
    status(res, 404, "NotFound", "no such path");
  }
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message }));
}

function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "fake", server, skipTLSVerify: true }],
    users: [{ name: "pod", token: TOKEN }],
    contexts: [{ name: "fake", cluster: "fake", user: "pod" }],
    currentContext: "fake",
  });
  return kc;
}

/** A started source over `api`, stopped after the test; what it delivered and reported. */
async function startSource(t: TestContext, api: FakeApi, options: Partial<KubernetesRingSourceOptions> = {}) {
  const server = await api.listen(t);
  const source = new KubernetesRingSource({
    namespace: NAMESPACE,
    name: NAME,
    kubeConfig: kubeConfigFor(server),
    backoffInitialMs: 10,
    backoffMaxMs: 40,
    ...options,
  });
  const seen: RingDocument[] = [];
  const errors: Error[] = [];
  t.after(() => source.stop());
  const first = await source.start(
    (doc) => seen.push(doc),
    (err) => errors.push(err),
  );
  return { source, first, seen, errors };
}

const codeOf = (err: Error): string | undefined => (err instanceof KubernetesRingSourceError ? err.code : (err as { code?: string }).code);

test("GET, then a watch of that one object from its resourceVersion; newer versions delivered, older ones not", async (t) => {
  const api = new FakeApi();
  api.onWatch = (call) => {
    call.res.writeHead(200, { "content-type": "application/json" });
    if (api.watches.length === 1) {
      call.send("MODIFIED", configMap("11", ringText(2, ["pod-0", "pod-1"])));
      call.send("MODIFIED", configMap("12", ringText(1)));
      // Two events in one chunk, then one split across chunks.
      call.res.write(`${JSON.stringify({ type: "BOOKMARK", object: { kind: "ConfigMap", metadata: { resourceVersion: "13" } } })}\n`);
      const line = JSON.stringify({ type: "MODIFIED", object: configMap("14", ringText(3)) });
      call.res.write(line.slice(0, 40));
      setTimeout(() => {
        call.res.write(`${line.slice(40)}\n`);
        // The server ends the watch (its timeoutSeconds): the next one resumes from the last resourceVersion.
        call.res.end();
      }, 20);
    }
  };
  const { first, seen, errors, source } = await startSource(t, api, { watchTimeoutSeconds: 77 });
  assert.equal(first.version, 1);
  await eventually(() => api.watches.length >= 2, "a second watch after the server ended the first");
  const [one, two] = api.watches;
  assert.equal(one?.query.get("fieldSelector"), `metadata.name=${NAME}`);
  assert.equal(one?.query.get("resourceVersion"), "10", "from the GET");
  assert.equal(one?.query.get("allowWatchBookmarks"), "true");
  assert.equal(one?.query.get("timeoutSeconds"), "77");
  assert.equal(two?.query.get("resourceVersion"), "14", "from the last event");
  assert.deepEqual(
    seen.map((d) => d.version),
    [1, 2, 3],
    "version 1 written again is not delivered",
  );
  assert.deepEqual(errors, [], "a server-side end of the watch is not an error");
  assert.equal(source.lists, 1);
});

test("410 Gone as an HTTP status: reported, relisted (GET), then watched from the new resourceVersion", async (t) => {
  const api = new FakeApi();
  api.onWatch = (call) => {
    if (api.watches.length === 1) {
      api.object = configMap("50", ringText(4));
      return status(call.res, 410, "Expired", "too old resource version: 10 (40)");
    }
    call.res.writeHead(200, { "content-type": "application/json" });
  };
  const { seen, errors, source } = await startSource(t, api);
  await eventually(() => api.watches.length >= 2, "a watch after the relist");
  assert.equal(api.gets.length, 2);
  assert.equal(source.lists, 2);
  assert.equal(api.watches[1]?.query.get("resourceVersion"), "50");
  assert.deepEqual(
    seen.map((d) => d.version),
    [1, 4],
    "the relist delivers what changed meanwhile",
  );
  assert.deepEqual(errors.map(codeOf), ["RING_ERR_KUBE_GONE"]);
  assert.equal((errors[0] as KubernetesRingSourceError).status, 410);
});

test("410 Gone as an ERROR event: relisted, then watched again", async (t) => {
  const api = new FakeApi();
  api.onWatch = (call) => {
    call.res.writeHead(200, { "content-type": "application/json" });
    if (api.watches.length === 1) {
      api.object = configMap("60", ringText(5));
      call.send("ERROR", { kind: "Status", apiVersion: "v1", status: "Failure", code: 410, reason: "Expired", message: "too old resource version" });
    }
  };
  const { seen, errors } = await startSource(t, api);
  await eventually(() => api.watches.length >= 2, "a watch after the relist");
  assert.equal(api.gets.length, 2);
  assert.equal(api.watches[1]?.query.get("resourceVersion"), "60");
  assert.deepEqual(
    seen.map((d) => d.version),
    [1, 5],
  );
  assert.deepEqual(errors.map(codeOf), ["RING_ERR_KUBE_GONE"]);
});

test("other failures resume from the last resourceVersion without a relist: HTTP 500, a cut stream, an ERROR event, garbage", async (t) => {
  const api = new FakeApi();
  api.onWatch = (call) => {
    const n = api.watches.length;
    if (n === 1) return status(call.res, 500, "InternalError", "etcd leader changed");
    call.res.writeHead(200, { "content-type": "application/json" });
    if (n === 2) {
      call.send("MODIFIED", configMap("21", ringText(2)));
      setTimeout(() => call.res.socket?.destroy(), 10);
    } else if (n === 3) call.send("ERROR", { kind: "Status", code: 500, reason: "InternalError", message: "boom" });
    else if (n === 4) call.res.write("{not json\n");
  };
  const { seen, errors } = await startSource(t, api);
  await eventually(() => api.watches.length >= 5, "five watches");
  assert.equal(api.gets.length, 1, "no relist");
  assert.deepEqual(
    api.watches.map((w) => w.query.get("resourceVersion")),
    ["10", "10", "21", "21", "21"],
  );
  assert.deepEqual(
    seen.map((d) => d.version),
    [1, 2],
  );
  assert.deepEqual(errors.map(codeOf), ["RING_ERR_KUBE_HTTP", "ECONNRESET", "RING_ERR_KUBE_WATCH", "RING_ERR_KUBE_PROTOCOL"]);
  assert.equal((errors[0] as KubernetesRingSourceError).status, 500);
});

test("an invalid document or a missing key is reported and ignored; the next valid one is delivered; a deletion keeps the ring", async (t) => {
  const api = new FakeApi();
  api.onWatch = (call) => {
    call.res.writeHead(200, { "content-type": "application/json" });
    call.send("MODIFIED", configMap("11", "{not json"));
    call.send("MODIFIED", configMap("12", JSON.stringify({ version: 2, members: [{ name: "-", address: "x", state: "ACTIVE" }] })));
    call.send("MODIFIED", configMap("13", undefined));
    call.send("DELETED", configMap("14", ringText(1)));
    call.send("ADDED", configMap("15", ringText(3)));
  };
  const { seen, errors } = await startSource(t, api);
  await eventually(() => seen.length === 2, "version 3");
  assert.deepEqual(
    seen.map((d) => d.version),
    [1, 3],
  );
  assert.deepEqual(errors.map(codeOf), ["RING_ERR_INVALID_DOCUMENT", "RING_ERR_INVALID_DOCUMENT", "RING_ERR_KUBE_NO_DOCUMENT", "RING_ERR_KUBE_DELETED"]);
  assert.match(errors[3]?.message ?? "", /ring version 1 stays in force/);
  assert.equal(api.watches.length, 1, "none of these ends the watch");
});

test("a silent watch (no event, no bookmark past its timeout plus slack) is aborted and restarted; so is one without an answer", async (t) => {
  const api = new FakeApi();
  api.onWatch = (call) => {
    // The first never answers; the second sends its headers, then nothing: a connection that
    // died without a FIN, as far as the client can tell; the third delivers.
    if (api.watches.length === 2) call.res.writeHead(200, { "content-type": "application/json" }).flushHeaders();
    if (api.watches.length === 3) {
      call.res.writeHead(200, { "content-type": "application/json" });
      call.send("MODIFIED", configMap("11", ringText(2)));
    }
  };
  const { errors, seen } = await startSource(t, api, { watchTimeoutSeconds: 1, stallSlackMs: 100, requestTimeoutMs: 200 });
  await eventually(() => seen.length === 2, "version 2 from the third watch", 5000);
  await Promise.all([api.watches[0]?.closed, api.watches[1]?.closed]);
  assert.deepEqual(errors.map(codeOf), ["RING_ERR_KUBE_TIMEOUT", "RING_ERR_KUBE_STALLED"]);
  assert.deepEqual(
    api.watches.map((w) => w.query.get("resourceVersion")),
    ["10", "10", "10"],
  );
});

test("start rejects when the ConfigMap, its key or a valid document is missing", async (t) => {
  const cases: Array<[object | null, string]> = [
    [null, "RING_ERR_KUBE_HTTP"],
    [configMap("1", undefined), "RING_ERR_KUBE_NO_DOCUMENT"],
    [configMap("1", "{}"), "RING_ERR_INVALID_DOCUMENT"],
  ];
  for (const [object, code] of cases) {
    const api = new FakeApi();
    api.object = object;
    const source = new KubernetesRingSource({ namespace: NAMESPACE, name: NAME, kubeConfig: kubeConfigFor(await api.listen(t)) });
    await assert.rejects(
      source.start(
        () => undefined,
        () => undefined,
      ),
      (err: Error) => codeOf(err) === code,
    );
    assert.equal(api.watches.length, 0);
    await source.stop();
  }
});

test("stop() aborts the watch in flight and the wait between watches, is idempotent, and leaves no timer or socket", async (t) => {
  const api = new FakeApi();
  const { source } = await startSource(t, api, { watchTimeoutSeconds: 1, stallSlackMs: 60_000 });
  await eventually(() => api.watches.length === 1, "the watch");
  await source.stop();
  await api.watches[0]?.closed;
  await source.stop();
  // In a wait: the server ends every watch at once with an error, so the source mostly sleeps.
  const waiting = new FakeApi();
  waiting.onWatch = (call) => status(call.res, 500, "InternalError", "no");
  const second = await startSource(t, waiting, { backoffInitialMs: 60_000, backoffMaxMs: 60_000 });
  await eventually(() => second.errors.length === 1, "the first failure");
  await second.source.stop();
  const left = process.getActiveResourcesInfo().filter((r) => r === "Timeout" || r === "TCPSocketWrap");
  assert.deepEqual(left, [], "no timer or socket of the sources is left");
});

test("backoff: doubles per restart without an event, capped, jittered into its upper half", () => {
  assert.equal(watchBackoffMs(0, 250, 10_000, 0), 125);
  assert.equal(watchBackoffMs(0, 250, 10_000, 0.999_999) < 250, true);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 100].map((n) => watchBackoffMs(n, 250, 10_000, 0)),
    [125, 250, 500, 1000, 2000, 4000, 5000, 5000, 5000],
  );
  for (let i = 0; i < 100; i++) {
    const r = Math.random();
    const ms = watchBackoffMs(3, 250, 10_000, r);
    assert.ok(ms >= 1000 && ms < 2000, String(ms));
  }
});
