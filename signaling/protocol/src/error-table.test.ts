import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { renderErrorTable } from "./error-table.ts";
import { ALL_ERROR_CODES, ERROR_CODES } from "./errors.ts";

test("docs/errors.md is the rendered error table (run npm run docs:errors after changing codes)", () => {
  const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
  assert.equal(doc, renderErrorTable());
});

test("every closing error uses a close code a client can act on", () => {
  for (const code of ALL_ERROR_CODES) {
    const close = ERROR_CODES[code].close;
    if (close === null) continue;
    assert.ok(close === 1009 || close === 1011 || close === 1012 || (close >= 4000 && close < 5000), `${code}: ${close}`);
  }
  const closes = ALL_ERROR_CODES.map((c) => ERROR_CODES[c].close).filter((c) => c !== null && c >= 4000);
  assert.equal(new Set(closes).size, closes.length, "application close codes are unique");
});
