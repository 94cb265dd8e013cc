import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import type { PodReport } from "@switchboard/ring";
import { PodReports } from "./pod-reports.ts";

function report(version: number): PodReport {
  return { pod: "p-0", ready: true, draining: false, ring: { version, state: "ACTIVE" }, connections: 7, sessions: 7, rooms: 1, eventLoopLagP99Ms: 2 };
}

test("reads each pod's /status over HTTP, tells a change, keeps the last reading when a pod stops answering", async (t) => {
  let current: PodReport | "broken" = report(3);
  const server = createServer((req, res) => {
    if (req.url !== "/status" || current === "broken") return void res.writeHead(503).end();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ...current, extra: "ignored" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  const changes: string[] = [];
  const errors: string[] = [];
  const reports = new PodReports({
    targets: () => [{ cluster: "ns/c", name: "p-0", uid: "u0", ip: "127.0.0.1", port }],
    onChange: (c) => changes.push(c),
    onError: (_t, err) => errors.push((err as Error).message),
  });
  t.after(() => reports.stop());
  await reports.pollNow();
  assert.deepEqual(reports.readings("ns/c", [{ name: "p-0", uid: "u0" }]).get("p-0")?.report, report(3));
  assert.deepEqual(changes, ["ns/c"]);
  await reports.pollNow();
  assert.deepEqual(changes, ["ns/c"], "the same report is no change");
  current = report(4);
  await reports.pollNow();
  assert.deepEqual(changes, ["ns/c", "ns/c"]);
  const before = reports.readings("ns/c", [{ name: "p-0", uid: "u0" }]).get("p-0");
  current = "broken";
  await reports.pollNow();
  assert.match(errors[0] ?? "", /HTTP 503/);
  assert.deepEqual(reports.readings("ns/c", [{ name: "p-0", uid: "u0" }]).get("p-0"), before, "the last reading stays (and ages)");
  assert.equal(reports.readings("ns/c", [{ name: "p-0", uid: "other" }]).size, 0, "a replaced pod has no reading");
});
