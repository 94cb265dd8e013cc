import assert from "node:assert/strict";
import { test } from "node:test";
import { newCallId } from "../sessions/ids.ts";
import { callIdOwnedBy, callIdOwner, callKey, parseOwnerKey, roomKey } from "./owner-key.ts";

test("owner keys round-trip; other strings are not keys", () => {
  assert.deepEqual(parseOwnerKey(roomKey("team:a")), { kind: "room", room: "team:a" });
  assert.deepEqual(parseOwnerKey(callKey("c_1_2_pod-a")), { kind: "call", callId: "c_1_2_pod-a" });
  assert.equal(parseOwnerKey("ctl"), undefined);
});

test("a call id names its owner pod when the name fits; otherwise the ring decides", () => {
  const base = newCallId();
  const id = callIdOwnedBy(base, "demo-2");
  assert.equal(callIdOwner(id), "demo-2");
  assert.equal(callIdOwnedBy(base, "Pod_With_Caps"), base, "not a DNS label: left to the ring");
  assert.equal(callIdOwner(base), undefined);
  assert.equal(callIdOwnedBy(base, "p".repeat(70)), base, "too long for a call id");
});
