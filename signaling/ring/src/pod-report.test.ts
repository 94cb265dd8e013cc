import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { POD_REPORT_PATH, PodReport } from "./index.ts";

const REPORT: PodReport = {
  pod: "switchboard-0",
  ready: true,
  draining: false,
  ring: { version: 7, state: "ACTIVE" },
  connections: 12,
  sessions: 11,
  rooms: 3,
  eventLoopLagP99Ms: 1.25,
};

test("the report is served at /status", () => {
  assert.equal(POD_REPORT_PATH, "/status");
});

test("a full report parses unchanged; unknown fields are dropped at every level", () => {
  assert.deepEqual(PodReport.parse(REPORT), REPORT);
  const newer = { ...REPORT, zone: "z1", ring: { ...REPORT.ring, vnodes: 2048 } };
  assert.deepEqual(PodReport.parse(newer), REPORT);
});

test("before any ring: version -1, state null", () => {
  const report = PodReport.parse({ ...REPORT, ring: { version: -1, state: null } });
  assert.deepEqual(report.ring, { version: -1, state: null });
});

test("refuses negative counts, versions below -1, unknown states, missing fields", () => {
  const bad: unknown[] = [
    { ...REPORT, connections: -1 },
    { ...REPORT, sessions: 1.5 },
    { ...REPORT, rooms: Number.NaN },
    { ...REPORT, eventLoopLagP99Ms: -0.1 },
    { ...REPORT, eventLoopLagP99Ms: Number.POSITIVE_INFINITY },
    { ...REPORT, ring: { version: -2, state: null } },
    { ...REPORT, ring: { version: 1.5, state: null } },
    { ...REPORT, ring: { version: 1, state: "active" } },
    { ...REPORT, ring: { version: 1 } },
    { ...REPORT, pod: "" },
    { ...REPORT, ready: "yes" },
    (({ draining: _d, ...rest }) => rest)(REPORT),
    null,
    [],
  ];
  for (const value of bad) assert.equal(PodReport.safeParse(value).success, false, JSON.stringify(value));
});

test("never throws on arbitrary JSON: safeParse either succeeds or reports issues", () => {
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue(), fc.record({ ...Object.fromEntries(Object.keys(REPORT).map((k) => [k, fc.jsonValue()])) })), (value) => {
      const parsed = PodReport.safeParse(value);
      if (parsed.success) assert.deepEqual(PodReport.parse(JSON.parse(JSON.stringify(parsed.data))), parsed.data);
      else assert.ok(parsed.error.issues.length > 0);
    }),
    { numRuns: 2000 },
  );
});
