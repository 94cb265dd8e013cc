/** The PeerJS frame decoder: total on any input, exact on what PeerJS clients send. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { PeerJsConfigSchema } from "./peerjs-config.ts";
import { PeerJsQuerySchema, PeerJsServerMessageSchema, decodePeerJsMessage, errorFrame, expireFrame, leaveFrame, relayFrame, type PeerJsDecoded } from "./peerjs-protocol.ts";

function wellFormed(d: PeerJsDecoded): void {
  if (d.ok) assert.ok(["HEARTBEAT", "OFFER", "ANSWER", "CANDIDATE", "LEAVE", "EXPIRE"].includes(d.message.type));
  else assert.ok(["SIG_ERR_BAD_JSON", "SIG_ERR_BAD_MESSAGE", "SIG_ERR_UNKNOWN_TYPE"].includes(d.code));
}

describe("decodePeerJsMessage", () => {
  test("never throws, on any string or JSON value", () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => wellFormed(decodePeerJsMessage(s))));
    fc.assert(fc.property(fc.jsonValue(), (v) => wellFormed(decodePeerJsMessage(JSON.stringify(v) ?? "null"))));
  });

  test("decodes what the peerjs client sends; src is read by nobody; payloads stay opaque", () => {
    fc.assert(
      fc.property(fc.constantFrom("OFFER", "ANSWER", "CANDIDATE", "LEAVE", "EXPIRE"), fc.string({ minLength: 1, maxLength: 64 }), fc.jsonValue(), (type, dst, payload) => {
        const d = decodePeerJsMessage(JSON.stringify({ type, src: "spoofed", dst, payload }));
        assert.ok(d.ok);
        assert.equal(d.message.type, type);
        assert.ok(!("src" in d.message));
        assert.deepEqual(JSON.parse(relayFrame(type, "real", dst, (d.message as { payload?: unknown }).payload)).payload, JSON.parse(JSON.stringify({ payload })).payload);
      }),
    );
    assert.deepEqual(decodePeerJsMessage('{"type":"HEARTBEAT"}'), { ok: true, message: { type: "HEARTBEAT" } });
  });

  test("codes: bad JSON, unknown type, bad field", () => {
    assert.deepEqual(decodePeerJsMessage("{"), { ok: false, code: "SIG_ERR_BAD_JSON" });
    assert.deepEqual(decodePeerJsMessage('{"type":"OPEN"}'), { ok: false, code: "SIG_ERR_UNKNOWN_TYPE" }, "OPEN is server to client");
    assert.deepEqual(decodePeerJsMessage('{"type":"OFFER","dst":7}'), { ok: false, code: "SIG_ERR_BAD_MESSAGE" });
    assert.deepEqual(decodePeerJsMessage(`{"type":"OFFER","dst":"${"x".repeat(257)}"}`), { ok: false, code: "SIG_ERR_BAD_MESSAGE" });
    assert.deepEqual(decodePeerJsMessage("null"), { ok: false, code: "SIG_ERR_BAD_MESSAGE" });
  });

  test("every server frame matches the server schema", () => {
    for (const frame of [errorFrame("Invalid key provided"), expireFrame("x", "a"), leaveFrame("b", "a"), relayFrame("OFFER", "a", "b", { sdp: "v=0" })]) {
      assert.ok(PeerJsServerMessageSchema.safeParse(JSON.parse(frame)).success, frame);
    }
  });
});

describe("PeerJS query and config", () => {
  test("key, id and token are all required and bounded", () => {
    assert.ok(PeerJsQuerySchema.safeParse({ key: "peerjs", id: "a", token: "t", version: "1.5.5" }).success);
    for (const q of [{ id: "a", token: "t" }, { key: "peerjs", token: "t" }, { key: "peerjs", id: "a" }, { key: "peerjs", id: "", token: "t" }, { key: "peerjs", id: "a".repeat(257), token: "t" }]) {
      assert.equal(PeerJsQuerySchema.safeParse(q).success, false, JSON.stringify(q).slice(0, 80));
    }
  });

  test("defaults match PeerJS server where it has one; paths and booleans are checked", () => {
    const c = PeerJsConfigSchema.parse({});
    assert.deepEqual(
      [c.enabled, c.path, c.key, c.expireTimeoutMs, c.aliveTimeoutMs, c.concurrentLimit, c.allowDiscovery, c.auth],
      [true, "/peerjs", "peerjs", 5000, 60_000, 5000, false, "pod"],
    );
    assert.equal(PeerJsConfigSchema.parse({ enabled: "false", allowDiscovery: "1" }).enabled, false);
    assert.equal(PeerJsConfigSchema.parse({ allowDiscovery: "1" }).allowDiscovery, true);
    for (const path of ["/", "peerjs", "/peerjs/", "/a//b", "/a b", "/admin", "/v1/peerjs", "/metrics"]) assert.equal(PeerJsConfigSchema.safeParse({ path }).success, false, path);
    assert.equal(PeerJsConfigSchema.parse({ path: "/rtc/peer-server" }).path, "/rtc/peer-server");
  });
});
