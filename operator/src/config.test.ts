import assert from "node:assert/strict";
import { test } from "node:test";
import { loadOperatorConfig } from "./config.ts";

test("the operator's settings come from its environment, with defaults", () => {
  const c = loadOperatorConfig({ POD_NAME: "op-1", POD_NAMESPACE: "sys", SWITCHBOARD_OPERATOR_LEASE_DURATION_MS: "9000" });
  assert.equal(c.podName, "op-1");
  assert.equal(c.namespace, "sys");
  assert.equal(c.leaseDurationMs, 9000);
  assert.equal(c.renewDeadlineMs, 10_000);
  assert.equal(c.watchNamespace, undefined);
});

test("a bad variable is named", () => {
  assert.throws(() => loadOperatorConfig({ SWITCHBOARD_OPERATOR_PORT: "70000", SWITCHBOARD_OPERATOR_LOG_LEVEL: "loud" }), /SWITCHBOARD_OPERATOR_PORT: .*\n.*SWITCHBOARD_OPERATOR_LOG_LEVEL/);
});
