import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_JSON_DEPTH, isJsonValue } from "./common.ts";
import { decodeClientMessage } from "./decode.ts";

test("app data and metadata pass through as parsed, own __proto__ keys included", () => {
  const text = '{"type":"broadcast","room":"r","data":{"__proto__":{"x":1},"a":[1,"b",null]}}';
  const r = decodeClientMessage(text);
  assert.ok(r.ok);
  assert.equal(JSON.stringify(r.message), text);
  const meta = decodeClientMessage('{"type":"join","room":"r","meta":{"__proto__":{"y":2}}}');
  assert.ok(meta.ok);
  assert.equal(JSON.stringify(meta.message), '{"type":"join","room":"r","meta":{"__proto__":{"y":2}}}');
  assert.equal(({} as Record<string, unknown>)["y"], undefined, "no prototype was touched");
});

test("JSON nesting is bounded; metadata must be an object with short keys", () => {
  let deep: unknown = 1;
  for (let i = 0; i <= MAX_JSON_DEPTH; i++) deep = [deep];
  assert.equal(isJsonValue(deep), false);
  const bad = decodeClientMessage(JSON.stringify({ type: "broadcast", room: "r", data: deep }));
  assert.ok(!bad.ok && bad.code === "SIG_ERR_BAD_MESSAGE" && bad.field === "data");
  for (const meta of [[], "x", { ["k".repeat(129)]: 1 }]) {
    const r = decodeClientMessage(JSON.stringify({ type: "join", room: "r", meta }));
    assert.ok(!r.ok && r.field === "meta", JSON.stringify(meta));
  }
});
