/**
 * The package-boundaries rule through ESLint's Node API with the repository's own eslint.config.js,
 * so the test proves the rule is wired in as well as what it refuses and lets through.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { ESLint } from "eslint";
import { checker } from "./package-boundaries.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const RULE = "switchboard/package-boundaries";
const eslint = new ESLint({ cwd: REPO_ROOT });

/** The rule's messages for `code` linted as the file at `path` (relative to the repository root). */
async function boundaryProblems(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${REPO_ROOT}${path}` });
  assert.ok(result, "ESLint linted the snippet");
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], "the snippet parses");
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

describe("switchboard/package-boundaries", () => {
  test("refuses a relative import into another package's src/ (SDK tests into the server, e2e into the operator)", async () => {
    const fromClient = await boundaryProblems("signaling/client/src/some.test.ts", 'import { startPod } from "../../server/src/testing/pod.ts";\nstartPod;\n');
    assert.equal(fromClient.length, 1);
    assert.match(fromClient[0] ?? "", /reaches into the files of @switchboard\/server: import one of its entry points \(@switchboard\/server, @switchboard\/server\/testing\)/);

    const fromE2e = await boundaryProblems("e2e/src/operator/some.test.ts", 'import { KubeHttp } from "../../../operator/src/kube/http.ts";\nKubeHttp;\n');
    assert.equal(fromE2e.length, 1);
    assert.match(fromE2e[0] ?? "", /@switchboard\/operator/);
  });

  test("refuses re-exports, import() and import types that cross, and scripts that reach into a package", async () => {
    const code = [
      'export * from "../../server/src/index.ts";',
      'export { Hub } from "../../server/src/hub.ts";',
      'export type Node = import("../../server/src/cluster/cluster-node.ts").ClusterNode;',
      'export const lazy = () => import("../../protocol/src/errors.ts");',
      "",
    ].join("\n");
    assert.equal((await boundaryProblems("signaling/bench/src/some.ts", code)).length, 4);
    assert.equal((await boundaryProblems("scripts/some.ts", 'import { ERROR_CODES } from "../signaling/protocol/src/errors.ts";\nERROR_CODES;\n')).length, 1);
  });

  test("refuses a subpath a package does not export (@switchboard/server/src/…)", async () => {
    const problems = await boundaryProblems("e2e/src/pods/some.test.ts", 'import { Hub } from "@switchboard/server/src/hub.ts";\nHub;\n');
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? "", /is not an entry point of @switchboard\/server/);
  });

  test("lets entry points, imports within a package, the repository's scripts and other packages through", async () => {
    const code = [
      'import { createSignalingServer } from "@switchboard/server";',
      'import { startPod } from "@switchboard/server/testing";',
      'import { PROTOCOL_VERSION } from "@switchboard/protocol";',
      'import { z } from "zod";',
      'import { something } from "../../../scripts/sdk/pack.ts";',
      'import { local } from "./local.ts";',
      "createSignalingServer; startPod; PROTOCOL_VERSION; z; something; local;",
      "",
    ].join("\n");
    assert.deepEqual(await boundaryProblems("e2e/src/pods/some.test.ts", code), []);
    assert.deepEqual(await boundaryProblems("signaling/server/src/cluster/some.ts", 'import { Hub } from "../hub.ts";\nHub;\n'), []);
  });

  test("packages are told apart by directory, not by name: a sibling's similarly named folder is still another package", () => {
    const workspaces = [
      { name: "@x/server", dir: "/repo/server/", entries: ["."] },
      { name: "@x/server-tools", dir: "/repo/server-tools/", entries: [".", "./testing", "./features/*"] },
    ];
    const check = checker("/repo/server/src/a.ts", workspaces);
    assert.equal(check("../../server-tools/src/b.ts")?.messageId, "relative");
    assert.equal(check("./b.ts"), null);
    assert.equal(check("@x/server-tools/testing"), null);
    assert.equal(check("@x/server-tools/features/one"), null);
    assert.equal(check("@x/server-tools/src/b.ts")?.messageId, "subpath");
    assert.equal(check("@x/server/package.json")?.messageId, "subpath");
  });
});
