/**
 * Builds and packs the SDK, `@switchboard/protocol` and `@switchboard/client`, as app developers
 * install them:
 *
 *   npm run sdk:pack [-- --out <dir>]      (default dir: dist/sdk; prints the sizes)
 *
 * Each package is compiled by `tsc -p tsconfig.build.json` into its `dist/` (ESM, `.d.ts`, source
 * maps), then `npm pack` runs on a staged copy whose manifest is the workspace one with
 * `publishConfig` applied: `exports` and `types` point at `dist/` instead of the TypeScript
 * sources the workspace runs, `private` and `scripts` are dropped, and the client's dependency on
 * the protocol is pinned to the one SDK version. `npm pack` in the package folders themselves is
 * refused by their `prepack` script, because it would pack the workspace manifest. The `dist/`
 * folders are removed again once packed.
 */
import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The SDK's packages in build order (the client's build reads the protocol's `dist/`). */
export const SDK_PACKAGES = [
  { name: "@switchboard/protocol", dir: "signaling/protocol" },
  { name: "@switchboard/client", dir: "signaling/client" },
] as const;

/** The changelog packed into both packages (one version, one history). */
export const CHANGELOG_PATH = "docs/sdk/CHANGELOG.md";

/** Error codes of the SDK tooling (this script, the size budget, the compat check). */
export type SdkToolErrorCode =
  | "SDK_ERR_VERSION_MISMATCH"
  | "SDK_ERR_MANIFEST"
  | "SDK_ERR_CHANGELOG"
  | "SDK_ERR_BUILD_FAILED"
  | "SDK_ERR_PACK_FAILED"
  | "SDK_ERR_OVER_BUDGET";

/** An error of the SDK tooling, with a stable code. */
export class SdkToolError extends Error {
  override readonly name = "SdkToolError";
  readonly code: SdkToolErrorCode;

  constructor(code: SdkToolErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
  }
}

/** One packed tarball, as `npm pack --json` reported it. */
export interface PackedPackage {
  readonly name: string;
  readonly version: string;
  /** Absolute path of the `.tgz`. */
  readonly file: string;
  /** Subresource-integrity string (sha512) of the tarball. */
  readonly integrity: string;
  /** Size of the tarball (gzip), bytes. */
  readonly packedBytes: number;
  /** Size of its files unpacked, bytes. */
  readonly unpackedBytes: number;
  /** Paths inside the package, sorted. */
  readonly files: readonly string[];
}

/** Both packed packages; they always share one version. */
export interface PackedSdk {
  readonly version: string;
  readonly protocol: PackedPackage;
  readonly client: PackedPackage;
}

type Manifest = Record<string, unknown> & { name: string; version: string };

/** Fields every published manifest must have (issue 19). */
const REQUIRED_FIELDS = ["license", "engines", "sideEffects", "files", "publishConfig"] as const;

/** Reads the workspace manifests and checks the release invariants: one version, the required fields, a changelog entry. */
export async function readSdkManifests(): Promise<{ version: string; manifests: Manifest[] }> {
  const manifests: Manifest[] = [];
  for (const pkg of SDK_PACKAGES) {
    const manifest = JSON.parse(await readFile(join(REPO_ROOT, pkg.dir, "package.json"), "utf8")) as Manifest;
    for (const field of REQUIRED_FIELDS) {
      if (manifest[field] === undefined) throw new SdkToolError("SDK_ERR_MANIFEST", `${pkg.dir}/package.json has no "${field}"`);
    }
    manifests.push(manifest);
  }
  const versions = new Set(manifests.map((m) => m.version));
  if (versions.size !== 1) {
    throw new SdkToolError("SDK_ERR_VERSION_MISMATCH", `the SDK packages must share one version, found ${manifests.map((m) => `${m.name}@${m.version}`).join(", ")}`);
  }
  const version = manifests[0]?.version as string;
  const changelog = await readFile(join(REPO_ROOT, CHANGELOG_PATH), "utf8");
  if (!new RegExp(`^## ${version.replaceAll(".", "\\.")}(\\s|$)`, "m").test(changelog)) {
    throw new SdkToolError("SDK_ERR_CHANGELOG", `${CHANGELOG_PATH} has no "## ${version}" section for the version in the manifests`);
  }
  return { version, manifests };
}

/** The manifest that is packed: `publishConfig` applied, workspace-only fields dropped, siblings pinned. */
export function publishedManifest(manifest: Manifest, version: string): Manifest {
  const { publishConfig, private: _private, scripts: _scripts, devDependencies: _dev, ...rest } = manifest;
  const published: Manifest = { ...rest, ...(publishConfig as Record<string, unknown>) };
  const deps = { ...(manifest["dependencies"] as Record<string, string> | undefined) };
  for (const sibling of SDK_PACKAGES) if (sibling.name in deps) deps[sibling.name] = version;
  published["dependencies"] = deps;
  return published;
}

/** Compiles both packages into their `dist/` folders (removed first, so no stale file is packed). */
export async function buildSdk(): Promise<void> {
  const tsc = join(REPO_ROOT, "node_modules/typescript/bin/tsc");
  for (const pkg of SDK_PACKAGES) {
    await rm(join(REPO_ROOT, pkg.dir, "dist"), { recursive: true, force: true });
    const { code, output } = await run(process.execPath, [tsc, "-p", join(pkg.dir, "tsconfig.build.json")], REPO_ROOT);
    if (code !== 0) throw new SdkToolError("SDK_ERR_BUILD_FAILED", `tsc -p ${pkg.dir}/tsconfig.build.json exited ${code}:\n${output}`);
  }
}

/** Builds both packages and packs them into `outDir`; resolves what `npm pack` reported. */
export async function packSdk(outDir: string): Promise<PackedSdk> {
  const { version, manifests } = await readSdkManifests();
  await buildSdk();
  await mkdir(outDir, { recursive: true });
  const stageRoot = await mkdtemp(join(tmpdir(), "switchboard-sdk-stage-"));
  try {
    const packed: PackedPackage[] = [];
    for (const [i, pkg] of SDK_PACKAGES.entries()) {
      const source = join(REPO_ROOT, pkg.dir);
      const stage = join(stageRoot, pkg.dir.replaceAll("/", "-"));
      await mkdir(join(stage, "src"), { recursive: true });
      await cp(join(source, "dist"), join(stage, "dist"), { recursive: true });
      // The sources ship beside dist/ so that the source maps and declaration maps resolve.
      for (const file of await readdir(join(source, "src"))) {
        if (file.endsWith(".ts") && !file.endsWith(".test.ts")) await cp(join(source, "src", file), join(stage, "src", file));
      }
      await cp(join(source, "README.md"), join(stage, "README.md"));
      await cp(join(source, "LICENSE"), join(stage, "LICENSE"));
      await cp(join(REPO_ROOT, CHANGELOG_PATH), join(stage, "CHANGELOG.md"));
      await writeFile(join(stage, "package.json"), `${JSON.stringify(publishedManifest(manifests[i] as Manifest, version), null, 2)}\n`);
      const { code, output, stdout } = await run("npm", ["pack", "--json", "--pack-destination", resolve(outDir), "--no-audit", "--no-fund", "--loglevel=error"], stage);
      if (code !== 0) throw new SdkToolError("SDK_ERR_PACK_FAILED", `npm pack of ${pkg.name} exited ${code}:\n${output}`);
      const [report] = JSON.parse(stdout) as Array<{ name: string; version: string; filename: string; integrity: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
      if (!report) throw new SdkToolError("SDK_ERR_PACK_FAILED", `npm pack of ${pkg.name} reported nothing`);
      packed.push({
        name: report.name,
        version: report.version,
        file: join(resolve(outDir), report.filename),
        integrity: report.integrity,
        packedBytes: report.size,
        unpackedBytes: report.unpackedSize,
        files: report.files.map((f) => f.path).sort(),
      });
    }
    return { version, protocol: packed[0] as PackedPackage, client: packed[1] as PackedPackage };
  } finally {
    await rm(stageRoot, { recursive: true, force: true });
    // dist/ lives only as long as a pack: nothing in the workspace runs it, and lint and the
    // editors keep seeing the sources only.
    await cleanSdk();
  }
}

/** Removes the packages' `dist/` folders. */
export async function cleanSdk(): Promise<void> {
  for (const pkg of SDK_PACKAGES) await rm(join(REPO_ROOT, pkg.dir, "dist"), { recursive: true, force: true });
}

/** One line per package: name, version, packed and unpacked size, file count. */
export function formatPackReport(sdk: PackedSdk): string {
  return [sdk.protocol, sdk.client]
    .map((p) => `${p.name}@${p.version}: ${kib(p.packedBytes)} packed, ${kib(p.unpackedBytes)} unpacked, ${p.files.length} files (${p.file})`)
    .join("\n");
}

/** Bytes as KiB with one decimal. */
export function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * Runs a command; resolves its exit code, stdout, and stdout+stderr for error messages. A command
 * still running after `timeoutMs` is killed (its code is then not 0).
 */
export function run(command: string, args: readonly string[], cwd: string, options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"], timeout: options.timeoutMs ?? 120_000 });
    let stdout = "";
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code: code ?? 1, stdout, output }));
  });
}

if (import.meta.main) {
  const i = process.argv.indexOf("--out");
  const outDir = i > 0 && process.argv[i + 1] ? resolve(process.argv[i + 1] as string) : join(REPO_ROOT, "dist/sdk");
  const sdk = await packSdk(outDir);
  console.log(formatPackReport(sdk));
}
