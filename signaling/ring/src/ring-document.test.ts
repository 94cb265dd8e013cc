import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  MAX_RING_DOCUMENT_BYTES,
  type RingDocument,
  RingDocumentError,
  parseRingDocument,
  serializeRingDocument,
  toRingDocument,
} from "./ring-document.ts";

const EXAMPLE = `{
  "version": 7,
  "vnodes": 2048,
  "members": [
    { "name": "switchboard-1", "address": "10.0.0.6:8080", "state": "JOINING" },
    { "since": "2025-01-01T00:00:00Z", "uid": "0b9d2f4e-5c1a-4e7b-9f3d-2a8c6e1b7d40", "name": "switchboard-0", "address": "http://10.0.0.5:8080", "state": "ACTIVE" },
    { "name": "switchboard-2", "address": "[fd00::2]:8080", "state": "LEAVING", "since": "2025-01-01T00:00:00.123+02:00" }
  ]
}`;

/** The issue lines of the error `fn` throws; fails if it throws anything else. */
function issuesOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RingDocumentError, `expected RingDocumentError, got ${String(err)}`);
    assert.equal(err.code, "RING_ERR_INVALID_DOCUMENT");
    assert.equal(err.message.split("\n").length, err.issues.length + 1);
    return err.issues;
  }
  assert.fail("expected a RingDocumentError");
}

describe("parseRingDocument", () => {
  test("parses a valid document, keeping member order", () => {
    const doc = parseRingDocument(EXAMPLE);
    assert.equal(doc.version, 7);
    assert.equal(doc.vnodes, 2048);
    assert.deepEqual(
      doc.members.map((m) => [m.name, m.state]),
      [
        ["switchboard-1", "JOINING"],
        ["switchboard-0", "ACTIVE"],
        ["switchboard-2", "LEAVING"],
      ],
    );
    assert.equal(doc.members[1]?.since, "2025-01-01T00:00:00Z");
    assert.equal(doc.members[1]?.uid, "0b9d2f4e-5c1a-4e7b-9f3d-2a8c6e1b7d40");
    assert.equal(doc.members[0]?.uid, undefined);
  });

  test("accepts an empty ring and omits optional fields", () => {
    const doc = parseRingDocument('{"version":0,"members":[]}');
    assert.deepEqual(doc, { version: 0, members: [] });
    assert.equal("vnodes" in doc, false);
  });

  test("drops unknown fields, so a newer writer does not break older pods", () => {
    const doc = parseRingDocument('{"version":1,"cluster":"eu","members":[{"name":"a","address":"a:1","state":"ACTIVE","zone":"z1"}]}');
    assert.deepEqual(doc, { version: 1, members: [{ name: "a", address: "a:1", state: "ACTIVE" }] });
  });

  test("reports one line per bad field, with its path", () => {
    const issues = issuesOf(() =>
      parseRingDocument(
        JSON.stringify({
          version: -1,
          vnodes: 0,
          members: [
            { name: "ok-0", address: "h:1", state: "ACTIVE" },
            { name: "-bad", address: "h:1", state: "ACTIVE" },
            { name: "ok-2", address: "no port", state: "ACTIVE" },
            { name: "ok-3", address: "h:70000", state: "ACTIVE" },
            { name: "ok-4", address: "ftp://h", state: "ACTIVE" },
            { name: "ok-5", address: "h:1", state: "active" },
            { name: "ok-6", address: "h:1", state: "ACTIVE", since: "yesterday" },
            { name: "ok-7", address: "h:1", state: "ACTIVE", uid: "not a uid" },
            { name: "ok-0", address: "h:2", state: "JOINING" },
            { address: "h:1", state: "ACTIVE" },
          ],
        }),
      ),
    );
    const paths = issues.map((line) => line.slice(0, line.indexOf(":")));
    assert.deepEqual(paths, [
      "version",
      "vnodes",
      "members.1.name",
      "members.2.address",
      "members.3.address",
      "members.4.address",
      "members.5.state",
      "members.6.since",
      "members.7.uid",
      "members.9.name",
    ]);
    // Duplicates are checked once every member is valid on its own (zod refines last).
    const duplicate = issuesOf(() =>
      parseRingDocument(
        JSON.stringify({
          version: 1,
          members: [
            { name: "a", address: "h:1", state: "ACTIVE" },
            { name: "a", address: "h:2", state: "JOINING" },
          ],
        }),
      ),
    );
    assert.deepEqual(duplicate, ['members.1.name: duplicate member name "a"']);
  });

  test("rejects text that is not JSON, or not an object", () => {
    assert.match(issuesOf(() => parseRingDocument("{version: 1"))[0] ?? "", /^\(root\): not valid JSON: /);
    assert.match(issuesOf(() => parseRingDocument(""))[0] ?? "", /^\(root\): not valid JSON: /);
    assert.match(issuesOf(() => parseRingDocument("[]"))[0] ?? "", /^\(root\): /);
    assert.match(issuesOf(() => parseRingDocument("null"))[0] ?? "", /^\(root\): /);
  });

  test("rejects a document larger than a ConfigMap can hold", () => {
    const text = `{"version":1,"members":[],"pad":"${"x".repeat(MAX_RING_DOCUMENT_BYTES)}"}`;
    assert.match(issuesOf(() => parseRingDocument(text))[0] ?? "", /longer than/);
  });

  test("never crashes: any JSON value either parses or throws RingDocumentError", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          parseRingDocument(JSON.stringify(value) ?? "");
        } catch (err) {
          assert.ok(err instanceof RingDocumentError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test("never crashes on near-valid documents or arbitrary text", () => {
    const anything = fc.oneof(fc.jsonValue(), fc.constant(undefined));
    const member = fc.record(
      {
        name: fc.oneof(fc.constantFrom("a", "b", "pod-1"), fc.string(), anything),
        address: fc.oneof(fc.constantFrom("h:1", "ws://h", "[::1]:8080", "h:0"), fc.string(), anything),
        state: fc.oneof(fc.constantFrom("JOINING", "ACTIVE", "LEAVING"), anything),
        uid: fc.oneof(fc.uuid(), fc.string(), anything),
        since: fc.oneof(fc.constant("2025-01-01T00:00:00Z"), fc.string(), anything),
      },
      { requiredKeys: [] },
    );
    const doc = fc.record(
      {
        version: fc.oneof(fc.nat(), fc.double(), anything),
        vnodes: fc.oneof(fc.integer({ min: -1, max: 20_000 }), anything),
        members: fc.oneof(fc.array(member, { maxLength: 6 }), anything),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(doc.map((d) => JSON.stringify(d)), fc.string()), (text) => {
        try {
          const parsed = parseRingDocument(text);
          // Whatever parses must survive a round trip unchanged.
          assert.deepEqual(parseRingDocument(serializeRingDocument(parsed)), normalize(parsed));
        } catch (err) {
          assert.ok(err instanceof RingDocumentError, String(err));
        }
      }),
      { numRuns: 3000 },
    );
  });
});

/** The document as serialization writes it back: plain objects, members sorted by name. */
function normalize(doc: RingDocument): RingDocument {
  const members = doc.members.map((m) => ({ ...m })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { ...doc, members };
}

const validMember = fc.record(
  {
    name: fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?$/),
    address: fc.oneof(
      fc.tuple(fc.constantFrom("pod", "10.0.0.1", "[fd00::1]"), fc.integer({ min: 1, max: 65_535 })).map(([h, p]) => `${h}:${p}`),
      fc.constantFrom("ws://pod-0.svc:8080", "https://pod-1.example/ws"),
    ),
    state: fc.constantFrom("JOINING", "ACTIVE", "LEAVING"),
    uid: fc.uuid(),
    since: fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()),
  },
  { requiredKeys: ["name", "address", "state"] },
);
const validDocument: fc.Arbitrary<RingDocument> = fc
  .record(
    {
      version: fc.nat(),
      vnodes: fc.integer({ min: 1, max: 4096 }),
      members: fc.uniqueArray(validMember, { selector: (m) => m.name, maxLength: 12 }),
    },
    { requiredKeys: ["version", "members"] },
  )
  .map((doc) => doc as RingDocument);

describe("serializeRingDocument", () => {
  test("round-trips every valid document", () => {
    fc.assert(
      fc.property(validDocument, (doc) => {
        const text = serializeRingDocument(doc);
        assert.deepEqual(parseRingDocument(text), normalize(doc));
        assert.equal(serializeRingDocument(parseRingDocument(text)), text);
      }),
      { numRuns: 500 },
    );
  });

  test("is deterministic: member order and key order do not change the bytes", () => {
    fc.assert(
      fc.property(validDocument, fc.infiniteStream(fc.nat()), (doc, seeds) => {
        const shuffled = [...doc.members].map((m) => ({ m, key: seeds.next().value as number })).sort((a, b) => a.key - b.key);
        // Rebuild every member with its keys in reverse order.
        const members = shuffled.map(({ m }) => Object.fromEntries(Object.entries(m).reverse()) as RingDocument["members"][number]);
        const reordered = toRingDocument(Object.fromEntries(Object.entries({ ...doc, members }).reverse()));
        assert.equal(serializeRingDocument(reordered), serializeRingDocument(doc));
      }),
      { numRuns: 300 },
    );
  });

  test("writes a fixed layout", () => {
    const text = serializeRingDocument(parseRingDocument(EXAMPLE));
    assert.equal(
      text,
      `{
  "version": 7,
  "vnodes": 2048,
  "members": [
    {
      "name": "switchboard-0",
      "address": "http://10.0.0.5:8080",
      "state": "ACTIVE",
      "uid": "0b9d2f4e-5c1a-4e7b-9f3d-2a8c6e1b7d40",
      "since": "2025-01-01T00:00:00Z"
    },
    {
      "name": "switchboard-1",
      "address": "10.0.0.6:8080",
      "state": "JOINING"
    },
    {
      "name": "switchboard-2",
      "address": "[fd00::2]:8080",
      "state": "LEAVING",
      "since": "2025-01-01T00:00:00.123+02:00"
    }
  ]
}
`,
    );
  });
});
