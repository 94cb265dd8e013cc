/**
 * A protocol change that breaks old clients cannot land without a protocol version bump: the
 * released SDK, packed and committed in compat/, is installed into a scratch project and driven
 * through what an app does (compat-client/scenario.mjs) against the current pod, beside a client
 * of the current workspace.
 *
 * - Same `PROTOCOL_VERSION` in the release and in the workspace: every step must pass.
 * - The workspace bumped it: the old client must be refused cleanly (`SIG_ERR_UNSUPPORTED_VERSION`
 *   at connect), not fail in some other way.
 *
 * Design and the release procedure: docs/sdk/README.md, Versioning.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, test } from "node:test";
import { SwitchboardClient } from "@switchboard/client";
import { PROTOCOL_VERSION } from "@switchboard/protocol";
import { CHANGELOG_PATH, REPO_ROOT, readSdkManifests, run, type PackedPackage } from "../../../scripts/sdk/pack.ts";
import { startPod } from "../browser/pod.ts";
import { makeScratchProject, scratchEnv } from "./scratch.ts";

const COMPAT_DIR = join(REPO_ROOT, "compat");

/** The released tarballs in compat/: exactly one of each package, of one version. */
async function releasedSdk(): Promise<{ protocol: PackedPackage; client: PackedPackage; version: string }> {
  const files = (await readdir(COMPAT_DIR)).filter((f) => f.endsWith(".tgz"));
  const find = async (name: string): Promise<PackedPackage> => {
    const matches = files.filter((f) => f.startsWith(`switchboard-${name}-`));
    assert.equal(matches.length, 1, `compat/ holds one switchboard-${name}-<version>.tgz, found ${JSON.stringify(matches)}`);
    const file = join(COMPAT_DIR, matches[0] as string);
    const bytes = await readFile(file);
    const version = (matches[0] as string).slice(`switchboard-${name}-`.length, -".tgz".length);
    return { name: `@switchboard/${name}`, version, file, integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`, packedBytes: bytes.length, unpackedBytes: 0, files: [] };
  };
  const protocol = await find("protocol");
  const client = await find("client");
  assert.equal(protocol.version, client.version, "the released protocol and client share one version");
  return { protocol, client, version: client.version };
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "switchboard-compat-"));
});
after(() => rm(scratch, { recursive: true, force: true }));

test("versioning: one SDK version, a changelog section naming its protocol version, the compat release not newer than the workspace", async () => {
  const { version } = await readSdkManifests();
  const released = await releasedSdk();
  assert.ok(compareVersions(released.version, version) <= 0, `compat/ holds ${released.version}, newer than the workspace's ${version}`);
  const changelog = await readFile(join(REPO_ROOT, CHANGELOG_PATH), "utf8");
  const section = changelog.split(/^## /m).find((s) => s.startsWith(`${version}\n`)) ?? "";
  assert.match(section, new RegExp(`Protocol version ${PROTOCOL_VERSION}\\b`), `${CHANGELOG_PATH}, section ${version}, names the protocol version it speaks (${PROTOCOL_VERSION})`);
  assert.ok(changelog.includes(`\n## ${released.version}\n`), `${CHANGELOG_PATH} has the released ${released.version}`);
});

test("the released client (compat/) against the current pod: everything an app does works, or the protocol version was bumped and it is refused cleanly", async (t) => {
  const released = await releasedSdk();
  const dir = await makeScratchProject(join(scratch, "compat-client"), "e2e/src/sdk/compat-client", released, { files: ["package.json", "scenario.mjs"] });
  const releasedProtocol = (await import(pathToFileURL(join(dir, "node_modules/@switchboard/protocol/dist/index.js")).href)) as { PROTOCOL_VERSION: number };
  assert.ok(releasedProtocol.PROTOCOL_VERSION <= PROTOCOL_VERSION, `the released SDK speaks protocol ${releasedProtocol.PROTOCOL_VERSION}, the workspace ${PROTOCOL_VERSION}`);
  const bumped = releasedProtocol.PROTOCOL_VERSION < PROTOCOL_VERSION;

  const pod = await startPod();
  t.after(() => pod.close());
  const room = "compat";
  const current = new SwitchboardClient({ url: pod.wsUrl, token: "carol-current" });
  t.after(() => current.close());
  const welcome = await current.connect();
  await current.join(room);
  current.on("message", (e) => void current.message(e.room, e.from, { echo: e.data }).catch(() => undefined));

  const env = scratchEnv({ SWITCHBOARD_URL: pod.wsUrl, ROOM: room, CURRENT_PEER: welcome.peerId, ...(bumped ? { EXPECT: "refused" } : {}) });
  const result = await run(process.execPath, ["scenario.mjs"], dir, { env, timeoutMs: 60_000 });
  const lines = result.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const line of lines) if ("step" in line && line["ok"]) console.log(`# released ${released.version} (protocol ${releasedProtocol.PROTOCOL_VERSION}) vs the current pod (protocol ${PROTOCOL_VERSION}): ${String(line["step"])} ${String(line["ms"])} ms`);
  const last = lines.at(-1);
  assert.equal(
    result.code,
    0,
    bumped
      ? `the pod speaks protocol ${PROTOCOL_VERSION}: the released client must be refused with SIG_ERR_UNSUPPORTED_VERSION:\n${result.output}`
      : `a change breaks the released client ${released.version} while PROTOCOL_VERSION is still ${PROTOCOL_VERSION}: keep the pod compatible, or bump the protocol version (docs/sdk/README.md, Versioning):\n${result.output}`,
  );
  assert.deepEqual(last, { result: "pass" });
  const steps = lines.filter((l) => l["ok"] === true).length;
  assert.equal(steps, bumped ? 1 : 8, `every step ran: ${result.stdout}`);
});
