import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { isOperatorError, type OperatorError } from "../errors.ts";
import { FAKE_TOKEN, sendJson, sendStatus, startFakeApiServer } from "./fake-api-server.ts";
import { KubeHttp } from "./http.ts";
import type { WatchEvent } from "./wire.ts";

async function setup(t: { after: (fn: () => unknown) => void }) {
  const api = await startFakeApiServer();
  const client = await KubeHttp.fromKubeConfig(api.kubeConfig);
  t.after(async () => {
    client.close();
    await api.close();
  });
  return { api, client };
}

async function rejection(p: Promise<unknown>): Promise<OperatorError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isOperatorError(err), `not an OperatorError: ${String(err)}`);
    return err;
  }
  assert.fail("expected a rejection");
}

async function collect(it: AsyncIterable<WatchEvent>): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  for await (const ev of it) out.push(ev);
  return out;
}

test("request sends the bearer token, the query and a JSON body, and parses the answer", async (t) => {
  const { api, client } = await setup(t);
  api.handle((_req, res) => sendJson(res, 200, { kind: "ConfigMap", metadata: { name: "a" } }));
  const answer = await client.request<{ kind: string }>("POST", "/api/v1/namespaces/ns/configmaps", {
    query: { fieldManager: "m", force: true, dryRun: undefined },
    body: { metadata: { name: "a" } },
  });
  assert.equal(answer.kind, "ConfigMap");
  const [req] = api.requests;
  assert.ok(req !== undefined);
  assert.equal(req.headers.authorization, `Bearer ${FAKE_TOKEN}`);
  assert.equal(req.headers["content-type"], "application/json");
  assert.equal(req.headers["user-agent"], "switchboard-operator");
  assert.equal(req.url.pathname, "/api/v1/namespaces/ns/configmaps");
  assert.equal(req.url.search, "?fieldManager=m&force=true");
  assert.deepEqual(JSON.parse(req.body), { metadata: { name: "a" } });
});

test("a non-2xx answer rejects with its status, the Status reason and the server's message", async (t) => {
  const { api, client } = await setup(t);
  for (const [code, reason] of [[404, "NotFound"], [409, "Conflict"], [410, "Gone"], [422, "Invalid"]] as const) {
    api.handle((_req, res) => sendStatus(res, code, reason, `the server says ${code}`));
    const err = await rejection(client.request("GET", "/api/v1/x"));
    assert.equal(err.code, "OP_ERR_KUBE_STATUS");
    assert.equal(err.status, code);
    assert.equal(err.reason, reason);
    assert.equal(err.apiMessage, `the server says ${code}`);
    assert.match(err.message, new RegExp(`GET /api/v1/x: ${code} ${reason}: the server says`));
    assert.equal(err.retryable, code === 409);
  }
  api.handle((_req, res) => {
    res.writeHead(503, { "content-type": "text/plain" });
    res.end("upstream gone");
  });
  const err = await rejection(client.request("GET", "/api/v1/x"));
  assert.equal(err.status, 503);
  assert.equal(err.reason, undefined);
  assert.equal(err.apiMessage, "upstream gone");
  assert.equal(err.retryable, true);
});

test("a 2xx answer that is not JSON rejects with OP_ERR_KUBE_RESPONSE; an empty one resolves undefined", async (t) => {
  const { api, client } = await setup(t);
  api.handle((_req, res) => {
    res.writeHead(200);
    res.end("<html>");
  });
  assert.equal((await rejection(client.request("GET", "/x"))).code, "OP_ERR_KUBE_RESPONSE");
  api.handle((_req, res) => {
    res.writeHead(200);
    res.end();
  });
  assert.equal(await client.request("DELETE", "/x"), undefined);
});

test("every request has a timeout, an abort path and maps transport failures", async (t) => {
  const { api, client } = await setup(t);
  api.handle(() => undefined); // never answers
  const timedOut = await rejection(client.request("GET", "/slow", { timeoutMs: 100 }));
  assert.equal(timedOut.code, "OP_ERR_KUBE_TIMEOUT");
  assert.equal(timedOut.retryable, true);

  const ac = new AbortController();
  const pending = client.request("GET", "/slow", { signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  assert.equal((await rejection(pending)).code, "OP_ERR_ABORTED");

  const inFlight = client.request("GET", "/slow");
  setTimeout(() => client.close(), 50);
  assert.equal((await rejection(inFlight)).code, "OP_ERR_ABORTED");
  client.close(); // idempotent
  assert.equal((await rejection(client.request("GET", "/x"))).code, "OP_ERR_ABORTED");

  const gone = await startFakeApiServer();
  const refused = await KubeHttp.fromKubeConfig(gone.kubeConfig);
  await gone.close();
  const err = await rejection(refused.request("GET", "/x"));
  assert.equal(err.code, "OP_ERR_KUBE_REQUEST");
  assert.match(err.message, /ECONNREFUSED/);
  refused.close();
});

test("watchStream yields events split across chunks, multibyte characters included, and the last line without newline", async (t) => {
  const { api, client } = await setup(t);
  const ev1 = JSON.stringify({ type: "ADDED", object: { metadata: { name: "a", resourceVersion: "1" }, data: { k: "héllo ✓" } } });
  const ev2 = JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "2" } } });
  const ev3 = JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old" } });
  api.handle(async (req, res) => {
    assert.equal(req.url.searchParams.get("watch"), "true");
    assert.equal(req.url.searchParams.get("resourceVersion"), "1");
    res.writeHead(200, { "content-type": "application/json" });
    const bytes = Buffer.from(`${ev1}\n\n${ev2}\n${ev3}`);
    // Cut inside the multibyte "✓" and inside a line.
    const cut = bytes.indexOf(Buffer.from("✓")) + 1;
    res.write(bytes.subarray(0, cut));
    await new Promise((r) => setTimeout(r, 20));
    res.write(bytes.subarray(cut, cut + 30));
    await new Promise((r) => setTimeout(r, 20));
    res.end(bytes.subarray(cut + 30));
  });
  const events = await collect(client.watchStream("/api/v1/configmaps", { resourceVersion: "1" }, new AbortController().signal));
  assert.deepEqual(events.map((e) => e.type), ["ADDED", "BOOKMARK", "ERROR"]);
  assert.equal((events[0]?.object as { data: { k: string } }).data.k, "héllo ✓");
  assert.equal(events[2]?.type === "ERROR" ? events[2].object.code : undefined, 410);
});

test("watchStream reports a line that is not JSON or not an event, after yielding the good ones", async (t) => {
  const { api, client } = await setup(t);
  for (const bad of ["{not json", JSON.stringify({ type: "SOMETHING", object: {} }), JSON.stringify({ type: "ADDED" })]) {
    api.handle((_req, res) => {
      res.writeHead(200);
      res.end(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "a" } } })}\n${bad}\n`);
    });
    const seen: string[] = [];
    const err = await rejection(
      (async () => {
        for await (const ev of client.watchStream("/w", {}, new AbortController().signal)) seen.push(ev.type);
      })(),
    );
    assert.deepEqual(seen, ["ADDED"]);
    assert.equal(err.code, "OP_ERR_WATCH");
    assert.ok(err.message.includes(bad.slice(0, 20)), err.message);
  }
});

test("watchStream: a refused watch carries its status; silence past idleTimeoutMs is a stall; abort ends it quietly", async (t) => {
  const { api, client } = await setup(t);
  api.handle((_req, res) => sendStatus(res, 410, "Expired", "too old resource version: 1 (5)"));
  const gone = await rejection(collect(client.watchStream("/w", { resourceVersion: "1" }, new AbortController().signal)));
  assert.equal(gone.code, "OP_ERR_KUBE_STATUS");
  assert.equal(gone.status, 410);
  assert.equal(gone.reason, "Expired");

  api.handle((_req, res) => {
    res.writeHead(200);
    res.write(`${JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } })}\n`);
  });
  const seen: string[] = [];
  const stalled = await rejection(
    (async () => {
      for await (const ev of client.watchStream("/w", {}, new AbortController().signal, { idleTimeoutMs: 150 })) seen.push(ev.type);
    })(),
  );
  assert.deepEqual(seen, ["BOOKMARK"]);
  assert.equal(stalled.code, "OP_ERR_WATCH_STALLED");

  const ac = new AbortController();
  const quiet = collect(client.watchStream("/w", {}, ac.signal));
  setTimeout(() => ac.abort(), 50);
  assert.deepEqual((await quiet).map((e) => e.type), ["BOOKMARK"]);
});

test("watchStream gives up on headers after connectTimeoutMs and ends its request when the consumer leaves early", async (t) => {
  const { api, client } = await setup(t);
  api.handle(() => undefined);
  const err = await rejection(collect(client.watchStream("/w", {}, new AbortController().signal, { connectTimeoutMs: 100 })));
  assert.equal(err.code, "OP_ERR_KUBE_TIMEOUT");

  let closedByClient: Promise<unknown> | undefined;
  api.handle((_req, res) => {
    closedByClient = once(res, "close");
    res.writeHead(200);
    res.write(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "a" } } })}\n`);
  });
  for await (const ev of client.watchStream("/w", {}, new AbortController().signal)) {
    assert.equal(ev.type, "ADDED");
    break;
  }
  assert.ok(closedByClient !== undefined);
  await closedByClient;
});

test("fromKubeConfig refuses what it cannot honour", async () => {
  const make = (cluster: { server: string; skipTLSVerify?: boolean; proxyUrl?: string }) => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", skipTLSVerify: false, ...cluster }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    return kc;
  };
  assert.equal((await rejection(KubeHttp.fromKubeConfig(make({ server: "http://127.0.0.1:1" })))).code, "OP_ERR_CONFIG");
  assert.equal((await rejection(KubeHttp.fromKubeConfig(make({ server: "https://10.0.0.1", proxyUrl: "http://proxy:3128" })))).code, "OP_ERR_CONFIG");
  assert.equal((await rejection(KubeHttp.fromKubeConfig(new KubeConfig()))).code, "OP_ERR_CONFIG");
  const ok = await KubeHttp.fromKubeConfig(make({ server: "https://10.0.0.1:6443/prefix/" }));
  assert.equal(ok.server.pathname, "/prefix/");
  ok.close();
});

test("watchStream reports a stream cut short by the server (not a clean end)", async (t) => {
  const { api, client } = await setup(t);
  api.handle((_req, res) => {
    res.writeHead(200);
    res.write(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "a" } } })}\n`);
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const seen: string[] = [];
  const err = await rejection(
    (async () => {
      for await (const ev of client.watchStream("/w", {}, new AbortController().signal)) seen.push(ev.type);
    })(),
  );
  assert.deepEqual(seen, ["ADDED"]);
  assert.equal(err.code, "OP_ERR_WATCH");
  assert.match(err.message, /stream broke/);
});
