import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { HashRing, ringConverged, type RingDocument, type RingMemberState } from "./index.ts";

function doc(version: number, members: Array<[string, RingMemberState]>): RingDocument {
  return { version, members: members.map(([name, state]) => ({ name, address: `${name}:8080`, state })) };
}

test("converged when every member, whatever its state, reports exactly the version", () => {
  const d = doc(4, [
    ["a", "ACTIVE"],
    ["b", "JOINING"],
    ["c", "LEAVING"],
  ]);
  assert.equal(ringConverged(d, { a: 4, b: 4, c: 4 }), true);
  assert.equal(ringConverged(d, { a: 4, b: 4, c: 4, gone: 2 }), true, "pods outside the ring do not count");
  assert.equal(ringConverged(d, { a: 4, b: 4 }), false, "a member that has not reported");
  assert.equal(ringConverged(d, { a: 4, b: 3, c: 4 }), false, "a JOINING member behind");
  assert.equal(ringConverged(d, { a: 4, b: 4, c: 3 }), false, "a LEAVING member behind");
  assert.equal(ringConverged(d, { a: 4, b: 4, c: 5 }), false, "a newer version: this document is not the ring in force");
  assert.equal(ringConverged(d, { a: 4, b: undefined, c: 4 }), false);
});

test("an empty ring has converged; a HashRing works as the document", () => {
  assert.equal(ringConverged(doc(0, []), {}), true);
  const d = doc(2, [["a", "ACTIVE"]]);
  assert.equal(ringConverged(new HashRing({ ...d, vnodes: 4 }), { a: 2 }), true);
  assert.equal(ringConverged(d, { constructor: 2 }), false, "names that are Object.prototype keys are not reports");
});

test("property: converged exactly when every member's report equals the version", () => {
  const names = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), { maxLength: 8 });
  fc.assert(
    fc.property(names, fc.nat(100), fc.array(fc.oneof(fc.constant(undefined), fc.integer({ min: -1, max: 101 }))), (members, version, reports) => {
      const d = doc(
        version,
        members.map((name) => [name, "ACTIVE"]),
      );
      const applied: Record<string, number | undefined> = {};
      members.forEach((name, i) => (applied[name] = i < reports.length ? reports[i] : version));
      const expected = members.every((name) => applied[name] === version);
      assert.equal(ringConverged(d, applied), expected);
    }),
  );
});

test("ringPassed: every member at this version or later (the handoff's reading); missing or older blocks it", async () => {
  const { ringPassed } = await import("./index.ts");
  const d = { version: 4, members: [{ name: "a" }, { name: "b" }] };
  assert.equal(ringPassed(d, { a: 4, b: 5 }), true, "b already applied a later ring");
  assert.equal(ringConverged(d, { a: 4, b: 5 }), false, "but 4 is not the ring in force");
  assert.equal(ringPassed(d, { a: 4, b: 3 }), false);
  assert.equal(ringPassed(d, { a: 4 }), false, "b has not reported");
  assert.equal(ringPassed({ version: 1, members: [] }, {}), true);
});
