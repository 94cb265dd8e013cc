/**
 * The one decoder of untrusted input: examples of every failure code and field path, and
 * fast-check properties (never throws, only table codes, valid messages round-trip).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { CLIENT_MESSAGE_TYPES, type ClientMessageType } from "./client-messages.ts";
import { decodeClientMessage, decodeServerMessage, type DecodeResult } from "./decode.ts";
import { ERROR_CODES, isErrorCode } from "./errors.ts";

const DECODE_CODES = new Set(["SIG_ERR_BAD_JSON", "SIG_ERR_BAD_MESSAGE", "SIG_ERR_UNKNOWN_TYPE", "SIG_ERR_UNSUPPORTED_VERSION"]);

function failure(result: DecodeResult<unknown>) {
  assert.equal(result.ok, false, "expected a decode failure");
  if (result.ok) throw new Error("unreachable");
  return result;
}

/** A decode result is ok, or a failure with a table code, a message, and a string field when bad. */
function assertWellFormed(result: DecodeResult<unknown>): void {
  if (result.ok) return;
  assert.ok(isErrorCode(result.code) && Object.hasOwn(ERROR_CODES, result.code), `unknown code ${result.code}`);
  assert.ok(DECODE_CODES.has(result.code));
  assert.equal(typeof result.message, "string");
  assert.ok(result.message.length <= 512, "messages stay short whatever the input");
  if (result.code === "SIG_ERR_BAD_MESSAGE") assert.equal(typeof result.field, "string");
  if (result.id !== undefined) assert.ok(typeof result.id === "string" && result.id.length >= 1 && result.id.length <= 64);
}

describe("decodeClientMessage examples", () => {
  test("valid messages decode", () => {
    const r = decodeClientMessage(JSON.stringify({ type: "join", id: "1", room: "team-red", meta: { name: "A" }, ack: 3 }));
    assert.deepEqual(r, { ok: true, message: { type: "join", id: "1", room: "team-red", meta: { name: "A" }, ack: 3 } });
  });

  test("SIG_ERR_BAD_JSON for text that is not JSON", () => {
    for (const text of ["", "{", "nope", "{'a':1}", "[1,]"]) assert.equal(failure(decodeClientMessage(text)).code, "SIG_ERR_BAD_JSON", text);
  });

  test("SIG_ERR_BAD_MESSAGE for JSON that is not an object, or has no string type", () => {
    for (const text of ["1", '"hello"', "null", "[]", "true"]) {
      const f = failure(decodeClientMessage(text));
      assert.deepEqual([f.code, f.field], ["SIG_ERR_BAD_MESSAGE", ""], text);
    }
    const noType = failure(decodeClientMessage(JSON.stringify({ id: "x", room: "r" })));
    assert.deepEqual([noType.code, noType.field, noType.id], ["SIG_ERR_BAD_MESSAGE", "type", "x"]);
    assert.equal(failure(decodeClientMessage(JSON.stringify({ type: 5 }))).field, "type");
  });

  test("SIG_ERR_UNKNOWN_TYPE names the type, truncated", () => {
    const f = failure(decodeClientMessage(JSON.stringify({ type: "teleport", id: "7" })));
    assert.deepEqual([f.code, f.id], ["SIG_ERR_UNKNOWN_TYPE", "7"]);
    assert.match(f.message, /teleport/);
    const long = failure(decodeClientMessage(JSON.stringify({ type: "x".repeat(10_000) })));
    assert.ok(long.message.length < 200);
    // Inherited property names are not message types.
    for (const type of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      assert.equal(failure(decodeClientMessage(`{"type":${JSON.stringify(type)}}`)).code, "SIG_ERR_UNKNOWN_TYPE", type);
    }
  });

  test("SIG_ERR_BAD_MESSAGE names the first bad field as a dotted path", () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ type: "join", room: "bad room" }, "room"],
      [{ type: "join" }, "room"],
      [{ type: "join", room: "r", meta: [] }, "meta"],
      [{ type: "hello", v: "1" }, "v"],
      [{ type: "hello", v: 1.5 }, "v"],
      [{ type: "resume", v: 1, sessionId: "s", resumeToken: "t", lastSeq: -1 }, "lastSeq"],
      [{ type: "candidate", room: "r", to: "p", candidate: { candidate: "c", sdpMLineIndex: -1 } }, "candidate.sdpMLineIndex"],
      [{ type: "candidate", room: "r", to: "p", candidate: { candidate: "c", sdpMLineIndex: "0" } }, "candidate.sdpMLineIndex"],
      [{ type: "candidate", room: "r", to: "p", candidate: { candidate: 5 } }, "candidate.candidate"],
      [{ type: "offer", room: "r", to: "bad peer", sdp: "v=0" }, "to"],
      [{ type: "offer", room: "r", sdp: "v=0" }, "to"],
      [{ type: "offer", callId: "c1", room: "r", to: "p", sdp: "v=0" }, "to"],
      [{ type: "offer", room: "r", to: "p", sdp: "" }, "sdp"],
      [{ type: "ack", seq: 1e300 }, "seq"],
      [{ type: "ping", ack: -5 }, "ack"],
      [{ type: "call-reject", callId: "c1", reason: "bored" }, "reason"],
      [{ type: "bye", reason: "x".repeat(257) }, "reason"],
      [{ type: "update", room: "r", meta: { ["k".repeat(129)]: 1 } }, "meta"],
    ];
    for (const [msg, field] of cases) {
      const f = failure(decodeClientMessage(JSON.stringify(msg)));
      assert.equal(f.code, "SIG_ERR_BAD_MESSAGE", JSON.stringify(msg));
      assert.ok(f.field === field || f.field?.startsWith(`${field}.`), `${JSON.stringify(msg)}: field ${f.field}, expected ${field}`);
    }
  });

  test("the request id is echoed only when it is a usable id", () => {
    assert.equal(failure(decodeClientMessage(JSON.stringify({ type: "join", id: "ok-id" }))).id, "ok-id");
    assert.equal(failure(decodeClientMessage(JSON.stringify({ type: "join", id: "" }))).id, undefined);
    assert.equal(failure(decodeClientMessage(JSON.stringify({ type: "join", id: "x".repeat(65) }))).id, undefined);
    assert.equal(failure(decodeClientMessage(JSON.stringify({ type: "join", id: 7 }))).id, undefined);
  });

  test("SDP and data are carried exactly", () => {
    const sdp = "v=0\r\ns=☎ 会议 🎥\r\na=x:\"\\\u0000\r\n";
    const r = decodeClientMessage(JSON.stringify({ type: "offer", room: "r", to: "p1", sdp }));
    assert.ok(r.ok && r.message.type === "offer");
    assert.equal(r.message.sdp, sdp);
  });
});

// ---- property tests --------------------------------------------------------------------------

/**
 * Any code point, lone surrogates included, biased to ASCII. (fast-check's `unit: "binary"` does the
 * same but costs seconds to initialise.)
 */
const anyChar = fc.oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0, max: 0x10ffff })).map((c) => String.fromCodePoint(c));
const anyString = (maxLength: number) => fc.string({ unit: anyChar, maxLength });
const roomId = fc.stringMatching(/^[A-Za-z0-9._:@-]{1,128}$/);
const peerId = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const callId = peerId;
const requestId = fc.string({ minLength: 1, maxLength: 64 });
const seq = fc.nat();
const text = (min: number, max: number) => fc.string({ minLength: min, maxLength: max, unit: "grapheme" });
const token = text(1, 200);
const json = fc.jsonValue({ maxDepth: 3 });
const meta = fc.dictionary(text(0, 128), json, { maxKeys: 5 });
const candidate = fc.record(
  {
    candidate: text(0, 200),
    sdpMid: fc.option(text(0, 20), { nil: null }),
    sdpMLineIndex: fc.option(fc.integer({ min: 0, max: 1024 }), { nil: null }),
    usernameFragment: fc.option(text(0, 20), { nil: null }),
  },
  { requiredKeys: ["candidate"] },
);
const relayTarget = fc.oneof(fc.record({ room: roomId, to: peerId }), fc.record({ callId }));
const callEndReason = fc.constantFrom(
  "hangup",
  "declined",
  "busy",
  "cancelled",
  "answered-elsewhere",
  "no-answer",
  "unavailable",
  "confirm-timeout",
  "replaced",
  "connection-lost",
  "dismissed",
  "failed",
);

/** The fields of a valid message of each type, besides `type`, `id` and `ack`. */
const bodies: { [T in ClientMessageType]: fc.Arbitrary<Record<string, unknown>> } = {
  hello: fc.record({ v: fc.integer(), token, device: text(0, 128), textHeartbeat: fc.boolean() }, { requiredKeys: ["v"] }),
  resume: fc.record({ v: fc.integer(), sessionId: text(1, 64), resumeToken: text(1, 256), lastSeq: seq, token, textHeartbeat: fc.boolean() }, { requiredKeys: ["v", "sessionId", "resumeToken", "lastSeq"] }),
  ping: fc.record({ ts: fc.double({ noNaN: true, noDefaultInfinity: true }) }, { requiredKeys: [] }),
  pong: fc.constant({}),
  ack: fc.record({ seq }),
  refresh: fc.record({ token }),
  bye: fc.record({ reason: text(0, 256) }, { requiredKeys: [] }),
  join: fc.record({ room: roomId, meta }, { requiredKeys: ["room"] }),
  leave: fc.record({ room: roomId }),
  update: fc.record({ room: roomId, meta }),
  offer: fc.tuple(relayTarget, text(1, 500)).map(([t, sdp]) => ({ ...t, sdp })),
  answer: fc.tuple(relayTarget, text(1, 500)).map(([t, sdp]) => ({ ...t, sdp })),
  candidate: fc.tuple(relayTarget, candidate).map(([t, c]) => ({ ...t, candidate: c })),
  "end-of-candidates": relayTarget,
  renegotiate: fc.tuple(relayTarget, fc.option(fc.boolean(), { nil: undefined })).map(([t, r]) => (r === undefined ? t : { ...t, iceRestart: r })),
  broadcast: fc.record({ room: roomId, data: json }),
  message: fc.record({ room: roomId, to: peerId, data: json }),
  "call-invite": fc.record({ to: text(1, 256), meta }, { requiredKeys: ["to"] }),
  "call-ringing": fc.record({ callId }),
  "call-accept": fc.record({ callId }),
  "call-confirm": fc.record({ callId }),
  "call-reject": fc.record({ callId, reason: fc.constantFrom("declined", "busy") }),
  "call-dismiss": fc.record({ callId }),
  "call-cancel": fc.record({ callId }),
  "call-hangup": fc.record({ callId, reason: callEndReason }, { requiredKeys: ["callId"] }),
};

const validMessage = fc
  .constantFrom(...CLIENT_MESSAGE_TYPES)
  .chain((type) =>
    fc.tuple(bodies[type], fc.record({ id: requestId, ack: seq }, { requiredKeys: [] })).map(([body, env]) => ({ type, ...env, ...body })),
  );

describe("decodeClientMessage properties", () => {
  test("every message type has a generator", () => {
    assert.deepEqual(Object.keys(bodies).sort(), [...CLIENT_MESSAGE_TYPES].sort());
  });

  test("arbitrary strings never throw and fail only with table codes", () => {
    fc.assert(
      fc.property(fc.oneof(anyString(300), fc.string({ maxLength: 50 })), (s) => assertWellFormed(decodeClientMessage(s))),
      { numRuns: 1000 },
    );
  });

  test("arbitrary JSON values never throw and fail only with table codes", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => assertWellFormed(decodeClientMessage(JSON.stringify(v) ?? "null"))),
      { numRuns: 500 },
    );
  });

  test("SIG_ERR_UNSUPPORTED_VERSION for a hello or resume of another version that does not decode as this one", () => {
    const r = decodeClientMessage(JSON.stringify({ type: "hello", v: 2, id: "h", capabilities: 7, token: 5 }));
    assert.deepEqual(r, { ok: false, code: "SIG_ERR_UNSUPPORTED_VERSION", message: "protocol version 2 is not supported (use 1)", field: "v", id: "h" });
    assert.equal(decodeClientMessage(JSON.stringify({ type: "resume", v: 0 })).ok ? "ok" : "refused", "refused");
    assert.equal((decodeClientMessage(JSON.stringify({ type: "resume", v: 0 })) as { code: string }).code, "SIG_ERR_UNSUPPORTED_VERSION");
    // The current version with a bad field is a bad message; another version of the right shape
    // decodes (the pod refuses it with close 4002).
    assert.equal((decodeClientMessage(JSON.stringify({ type: "hello", v: 1, token: 5 })) as { code: string }).code, "SIG_ERR_BAD_MESSAGE");
    assert.equal(decodeClientMessage(JSON.stringify({ type: "hello", v: 2, token: "t" })).ok, true);
  });

  test("objects with a known type and arbitrary fields never throw; failures are BAD_MESSAGE with a field", () => {
    const arbitraryFields = fc.dictionary(fc.constantFrom("id", "ack", "v", "room", "to", "callId", "sdp", "candidate", "meta", "data", "seq", "token", "lastSeq", "sessionId", "resumeToken", "reason", "__proto__", "constructor"), fc.jsonValue({ maxDepth: 2 }));
    fc.assert(
      fc.property(fc.constantFrom(...CLIENT_MESSAGE_TYPES), arbitraryFields, (type, fields) => {
        const r = decodeClientMessage(JSON.stringify({ ...fields, type }));
        assertWellFormed(r);
        const otherVersion = (type === "hello" || type === "resume") && Number.isSafeInteger(fields["v"]) && fields["v"] !== 1;
        if (!r.ok) assert.equal(r.code, otherVersion ? "SIG_ERR_UNSUPPORTED_VERSION" : "SIG_ERR_BAD_MESSAGE");
        else assert.equal(r.message.type, type);
      }),
      { numRuns: 1000 },
    );
  });

  test("near-valid messages (one field mutated) never throw", () => {
    fc.assert(
      fc.property(validMessage, fc.jsonValue({ maxDepth: 1 }), fc.nat(), (msg, junk, pick) => {
        const keys = Object.keys(msg);
        const key = keys[pick % keys.length] as string;
        assertWellFormed(decodeClientMessage(JSON.stringify({ ...msg, [key]: junk })));
        const without: Record<string, unknown> = { ...msg };
        delete without[key];
        assertWellFormed(decodeClientMessage(JSON.stringify(without)));
      }),
      { numRuns: 500 },
    );
  });

  test("valid generated messages round-trip exactly", () => {
    fc.assert(
      fc.property(validMessage, (msg) => {
        const wire = JSON.stringify(msg);
        const r = decodeClientMessage(wire);
        assert.ok(r.ok, `refused ${wire}: ${r.ok ? "" : `${r.code} ${r.field} ${r.message}`}`);
        assert.deepEqual(r.message, JSON.parse(wire));
        assert.equal(JSON.stringify(r.message), wire, "nothing added, dropped or reordered");
      }),
      { numRuns: 1000 },
    );
  });
});

describe("decodeServerMessage", () => {
  test("never throws on arbitrary input", () => {
    fc.assert(
      fc.property(fc.oneof(anyString(200), fc.jsonValue().map((v) => JSON.stringify(v) ?? "null")), (s) => assertWellFormed(decodeServerMessage(s))),
      { numRuns: 500 },
    );
  });

  test("decodes server events", () => {
    const r = decodeServerMessage(JSON.stringify({ type: "peer-left", seq: 3, room: "r", peerId: "p1", reason: "kicked" }));
    assert.ok(r.ok);
    assert.equal(failure(decodeServerMessage(JSON.stringify({ type: "peer-left", seq: 3, room: "r", peerId: "p1", reason: "bored" }))).field, "reason");
  });
});
