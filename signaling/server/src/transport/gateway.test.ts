/**
 * The WebSocket edge on real sockets: frame decoding errors, the handshake and its failures, the
 * Origin allowlist, the path, and the handshake timeout.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { describe, test } from "node:test";
import { ERROR_CODES, type ServerMessageOf } from "@switchboard/protocol";
import { closedWithin, eventually, JWT_AUTH, jwt, metricValue, startPod } from "../testing/pod.ts";
import { RawClient } from "../testing/raw-client.ts";

type ErrorFrame = ServerMessageOf<"error">;

describe("frame decoding", () => {
  test("bad JSON, unknown type, binary frame and schema errors each get their code; the socket stays open", async (t) => {
    const pod = await startPod(t);
    const { client } = await pod.open("alice");

    client.sendText("{not json");
    let err = await client.nextOf("error");
    assert.equal(err.code, "SIG_ERR_BAD_JSON");
    assert.equal(err.retryable, false);

    client.send({ type: "teleport", id: "u1" });
    err = await client.nextOf("error");
    assert.deepEqual([err.code, err.id], ["SIG_ERR_UNKNOWN_TYPE", "u1"]);

    client.sendText(Buffer.from([1, 2, 3]));
    err = await client.nextOf("error");
    assert.equal(err.code, "SIG_ERR_BINARY_FRAME");

    client.send({ id: "t1", room: "r" });
    err = await client.nextOf("error");
    assert.deepEqual([err.code, err.field, err.id], ["SIG_ERR_BAD_MESSAGE", "type", "t1"]);

    client.sendText("[1,2]");
    err = await client.nextOf("error");
    assert.deepEqual([err.code, err.field], ["SIG_ERR_BAD_MESSAGE", ""]);

    client.send({ type: "join", id: "j1", room: "no spaces" });
    err = await client.nextOf("error");
    assert.deepEqual([err.code, err.field, err.id], ["SIG_ERR_BAD_MESSAGE", "room", "j1"]);

    assert.equal((await client.request({ type: "ping" })).type, "pong");
    assert.equal(client.closeCode, null);
    const metrics = await pod.metrics();
    assert.equal(metricValue(metrics, "switchboard_errors_total", { code: "SIG_ERR_BAD_JSON" }), 1);
    assert.equal(metricValue(metrics, "switchboard_errors_total", { code: "SIG_ERR_BINARY_FRAME" }), 1);
  });
});

describe("handshake", () => {
  test("a message before hello is SIG_ERR_HANDSHAKE_REQUIRED; hello still works after it", async (t) => {
    const pod = await startPod(t);
    const client = pod.connect();
    await client.opened();
    client.send({ type: "join", id: "early", room: "r" });
    const err = await client.nextOf("error");
    assert.deepEqual([err.code, err.id], ["SIG_ERR_HANDSHAKE_REQUIRED", "early"]);
    assert.equal(err.seq, undefined, "no session, no seq");
    assert.equal(pod.server.hub.rooms.size, 0);
    const w = await client.hello("alice");
    assert.equal(w.userId, "alice");
  });

  test("a second hello or resume is SIG_ERR_ALREADY_HANDSHAKEN and changes nothing", async (t) => {
    const pod = await startPod(t);
    const { client, welcome } = await pod.open("alice");
    const reply = (await client.request({ type: "hello", v: 1, token: "bob" })) as ErrorFrame;
    assert.equal(reply.code, "SIG_ERR_ALREADY_HANDSHAKEN");
    const reply2 = (await client.request({ type: "resume", v: 1, sessionId: welcome.sessionId, resumeToken: welcome.resumeToken, lastSeq: 0 })) as ErrorFrame;
    assert.equal(reply2.code, "SIG_ERR_ALREADY_HANDSHAKEN");
    assert.equal(pod.server.hub.sessions.size, 1);
    assert.equal(pod.server.hub.sessions.get(welcome.sessionId)?.userId, "alice");
  });

  test("an unsupported version is SIG_ERR_UNSUPPORTED_VERSION and closes 4002", async (t) => {
    const pod = await startPod(t);
    const client = pod.connect();
    await client.opened();
    client.send({ type: "hello", v: 2, token: "alice", id: "h" });
    const err = await client.nextOf("error");
    assert.deepEqual([err.code, err.id], ["SIG_ERR_UNSUPPORTED_VERSION", "h"]);
    assert.equal((await closedWithin(client)).code, ERROR_CODES.SIG_ERR_UNSUPPORTED_VERSION.close);
    assert.equal(client.closeCode, 4002);
    assert.equal(pod.server.hub.sessions.size, 0);
  });

  test("a bad token is SIG_ERR_AUTH_FAILED and closes 4001; no token at all likewise", async (t) => {
    const pod = await startPod(t);
    const bad = pod.connect();
    await bad.opened();
    bad.send({ type: "hello", v: 1, token: "not a valid user id!" });
    assert.equal((await bad.nextOf("error")).code, "SIG_ERR_AUTH_FAILED");
    assert.equal((await closedWithin(bad)).code, 4001);

    const none = pod.connect();
    await none.opened();
    none.send({ type: "hello", v: 1 });
    assert.equal((await none.nextOf("error")).code, "SIG_ERR_AUTH_FAILED");
    assert.equal((await closedWithin(none)).code, 4001);
    assert.equal(pod.server.hub.sessions.size, 0);
  });

  test("JWTs: an expired token closes 4003, a badly signed one 4001, the bearer subprotocol works", async (t) => {
    const pod = await startPod(t, { auth: JWT_AUTH });
    const expired = pod.connect();
    await expired.opened();
    expired.send({ type: "hello", v: 1, token: await jwt("alice", { expiresInSec: -60 }) });
    const e1 = await expired.nextOf("error");
    assert.deepEqual([e1.code, e1.retryable], ["SIG_ERR_TOKEN_EXPIRED", true]);
    assert.equal((await closedWithin(expired)).code, 4003);

    const forged = pod.connect();
    await forged.opened();
    const good = await jwt("alice");
    const [header, payload] = good.split(".");
    forged.send({ type: "hello", v: 1, token: `${header}.${payload}.${"A".repeat(43)}` });
    const e2 = await forged.nextOf("error");
    assert.equal(e2.code, "SIG_ERR_AUTH_FAILED");
    assert.ok(!e2.message.includes(payload as string), "the error never echoes the token");
    assert.equal((await closedWithin(forged)).code, 4001);

    const bearer = pod.connect({ protocols: ["switchboard.v1", `bearer.${good}`] });
    await bearer.opened();
    bearer.send({ type: "hello", v: 1 });
    assert.equal((await bearer.nextOf("welcome")).userId, "alice");
    assert.equal(pod.server.hub.sessions.size, 1);
  });

  test("no hello in time: SIG_ERR_HANDSHAKE_TIMEOUT and close 4008", async (t) => {
    const pod = await startPod(t, { limits: { handshakeTimeoutMs: 150 } });
    const client = pod.connect();
    await client.opened();
    const err = await client.nextOf("error");
    assert.equal(err.code, "SIG_ERR_HANDSHAKE_TIMEOUT");
    assert.equal(err.retryable, true);
    assert.equal((await closedWithin(client)).code, 4008);
    // A socket that says hello in time is not affected.
    const ok = pod.connect();
    await ok.hello("alice");
    assert.equal((await ok.request({ type: "ping" }, 1000)).type, "pong");
  });

  test("the upgrade path must be /v1/ws", async (t) => {
    const pod = await startPod(t);
    const client = new RawClient(pod.server.wsUrl.replace("/v1/ws", "/v2/ws"));
    t.after(() => client.drop());
    await assert.rejects(client.opened(), { status: 404 });
  });
});

describe("origin allowlist", () => {
  test("only listed origins may upgrade; a missing origin is refused", async (t) => {
    const pod = await startPod(t, { allowedOrigins: ["http://good.example"] });
    const evil = pod.connect({ origin: "http://evil.example" });
    await assert.rejects(evil.opened(), { status: 403 });
    const missing = pod.connect();
    await assert.rejects(missing.opened(), { status: 403 });
    const good = pod.connect({ origin: "http://good.example" });
    const w = await good.hello("alice");
    assert.equal(w.userId, "alice");
    assert.equal(metricValue(await pod.metrics(), "switchboard_errors_total", { code: "SIG_ERR_ORIGIN_FORBIDDEN" }), 2);
    await eventually(() => pod.server.gateway.connectionCount === 1, "only the good socket open");
  });

  test("the refusal body carries the error code", async (t) => {
    const pod = await startPod(t, { allowedOrigins: ["http://good.example"] });
    const body = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${pod.server.httpUrl}/v1/ws`, {
        headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", origin: "http://evil.example" },
      });
      req.on("response", (r) => {
        let text = "";
        r.on("data", (c: Buffer) => (text += String(c)));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body: text }));
      });
      req.on("upgrade", () => reject(new Error("upgrade accepted")));
      req.on("error", reject);
      req.end();
    });
    assert.equal(body.status, 403);
    assert.equal((JSON.parse(body.body) as { code: string }).code, "SIG_ERR_ORIGIN_FORBIDDEN");
  });
});
