import assert from "node:assert/strict";
import { test } from "node:test";
import { ALL_OPERATOR_ERROR_CODES, OP_ERR, OperatorError, hasCode, isKubeStatus, isOperatorError } from "./errors.ts";

test("every code is OP_ERR_* with a summary; the class keeps code, cause and API details", () => {
  for (const code of ALL_OPERATOR_ERROR_CODES) {
    assert.match(code, /^OP_ERR_[A-Z_]+$/);
    assert.ok(OP_ERR[code].summary.length > 10);
  }
  const cause = new Error("socket hang up");
  const err = new OperatorError("OP_ERR_KUBE_STATUS", "GET /x: 404 NotFound", { cause, status: 404, reason: "NotFound", apiMessage: "x not found" });
  assert.equal(err.name, "OperatorError");
  assert.equal(err.cause, cause);
  assert.ok(isOperatorError(err));
  assert.ok(isKubeStatus(err, 404));
  assert.ok(!isKubeStatus(err, 409));
  assert.ok(hasCode(err, "OP_ERR_WATCH", "OP_ERR_KUBE_STATUS"));
  assert.ok(!isOperatorError(new Error("x")));
});

test("retryable: from the table, and by status for API answers", () => {
  const status = (s: number) => new OperatorError("OP_ERR_KUBE_STATUS", "x", { status: s }).retryable;
  assert.deepEqual([409, 429, 500, 503].map(status), [true, true, true, true]);
  assert.deepEqual([400, 403, 404, 410, 422].map(status), [false, false, false, false, false]);
  assert.equal(new OperatorError("OP_ERR_KUBE_REQUEST", "x").retryable, true);
  assert.equal(new OperatorError("OP_ERR_CONFIG", "x").retryable, false);
});
