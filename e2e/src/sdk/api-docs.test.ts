/**
 * The SDK's API reference (docs/sdk/api) is TypeDoc's output from the TSDoc of the two packages'
 * sources (`npm run sdk:docs`); this test regenerates it into a scratch folder and fails when the
 * committed pages differ, or when TypeDoc warns (a broken `{@link}`, a symbol referenced but not
 * exported).
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { REPO_ROOT, run } from "../../../scripts/sdk/pack.ts";

const API_DIR = join(REPO_ROOT, "docs/sdk/api");

async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(dir, path), await readFile(path, "utf8"));
  }
  return out;
}

test("docs/sdk/api is TypeDoc's output for the current sources, without a warning (npm run sdk:docs)", async (t) => {
  const out = await mkdtemp(join(tmpdir(), "switchboard-api-docs-"));
  t.after(() => rm(out, { recursive: true, force: true }));
  const typedoc = join(REPO_ROOT, "node_modules/typedoc/bin/typedoc");
  const { code, output } = await run(process.execPath, [typedoc, "--options", "scripts/sdk/typedoc.json", "--out", out], REPO_ROOT, { timeoutMs: 120_000 });
  assert.equal(code, 0, `typedoc (warnings are errors):\n${output}`);
  const fresh = await tree(out);
  const committed = await tree(API_DIR);
  assert.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort(), "docs/sdk/api has other pages than TypeDoc makes: run npm run sdk:docs");
  for (const [path, text] of fresh) assert.equal(committed.get(path), text, `docs/sdk/api/${path} is stale: run npm run sdk:docs`);
  assert.ok(fresh.get("@switchboard/client.md")?.includes("### SwitchboardClient"), "the client's page documents SwitchboardClient");
});
