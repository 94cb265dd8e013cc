/**
 * Scratch projects outside the workspace that install packed SDK tarballs the way an app does.
 *
 * The installs are offline, so they also work inside the browser tests' loopback-only network
 * namespace: the registry packages a project needs are pinned to the versions of the workspace's
 * own lock file, whose tarballs are in npm's cache since the workspace's `npm ci`, and a
 * `package-lock.json` written here names each tarball by URL and integrity, so `npm ci --offline`
 * reads them from the cache without asking the registry for anything.
 */
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { REPO_ROOT, run, type PackedPackage } from "../../../scripts/sdk/pack.ts";

/** What a scratch project installs in place of the SDK's registry packages. */
export interface SdkTarballs {
  readonly protocol: PackedPackage;
  readonly client: PackedPackage;
}

type LockEntry = Record<string, unknown> & { version: string; integrity?: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
type Manifest = { name: string; version?: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> } & Record<string, unknown>;

/** The SDK's package names; not on the registry, so a project gets both from tarballs. */
const SDK_NAMES = ["@switchboard/protocol", "@switchboard/client"] as const;

let rootLock: Promise<Record<string, LockEntry>> | null = null;

function workspaceLock(): Promise<Record<string, LockEntry>> {
  rootLock ??= readFile(join(REPO_ROOT, "package-lock.json"), "utf8").then((t) => (JSON.parse(t) as { packages: Record<string, LockEntry> }).packages);
  return rootLock;
}

/** The environment of commands in a scratch project: nothing of the workspace's npm run, no workspace binaries. */
export function scratchEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // npm run exports its config (npm_config_local_prefix names the workspace) and the package's fields.
    if (/^npm_/i.test(k) && k.toLowerCase() !== "npm_config_cache") continue;
    if (k === "INIT_CWD" || k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  const workspaceBin = join(REPO_ROOT, "node_modules/.bin");
  env["PATH"] = (env["PATH"] ?? "").split(":").filter((p) => p !== workspaceBin && !p.startsWith(join(REPO_ROOT, "node_modules"))).join(":");
  return { ...env, ...extra };
}

/**
 * Makes a project in `dir` (which must be outside the workspace) from a template folder such as
 * `examples/node-bot`: copies its files, points its SDK dependencies at the tarballs, writes the
 * lock file and runs `npm ci --offline`. Resolves the installed project's directory.
 */
export async function makeScratchProject(dir: string, template: string, sdk: SdkTarballs, options: { files?: readonly string[] } = {}): Promise<string> {
  if (!relative(REPO_ROOT, dir).startsWith("..")) throw new Error(`scratch projects live outside the workspace, not in ${dir}`);
  const source = join(REPO_ROOT, template);
  await mkdir(dir, { recursive: true });
  for (const file of options.files ?? ["package.json", "tsconfig.json", "src"]) {
    await cp(join(source, file), join(dir, file), { recursive: true });
  }
  const tarballs = join(dir, "tarballs");
  await mkdir(tarballs, { recursive: true });
  const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as Manifest;
  const deps = { ...manifest.dependencies };
  const devDeps = { ...manifest.devDependencies };
  const lockPackages: Record<string, LockEntry> = {};
  for (const name of SDK_NAMES) {
    const pkg = name === "@switchboard/client" ? sdk.client : sdk.protocol;
    const wanted = deps[name];
    if (wanted !== undefined && !satisfiesCaret(pkg.version, wanted)) throw new Error(`${template} wants ${name}@${wanted}, the tarball is ${pkg.version}`);
    await cp(pkg.file, join(tarballs, basename(pkg.file)));
    const spec = `file:tarballs/${basename(pkg.file)}`;
    deps[name] = spec;
    const packed = await packedManifest(pkg.file, dir);
    lockPackages[`node_modules/${name}`] = {
      version: pkg.version,
      resolved: spec,
      integrity: pkg.integrity,
      ...(packed.license ? { license: packed.license } : {}),
      ...(packed.dependencies ? { dependencies: packed.dependencies } : {}),
      ...(packed.engines ? { engines: packed.engines } : {}),
    };
  }
  const registryRoots = new Map<string, string>();
  for (const [name, range] of Object.entries({ ...deps, ...devDeps })) if (!range.startsWith("file:")) registryRoots.set(name, range);
  // zod and the other dependencies of the tarballs come from the registry too.
  for (const name of SDK_NAMES) for (const [dep, range] of Object.entries((lockPackages[`node_modules/${name}`]?.dependencies ?? {}) as Record<string, string>)) if (!SDK_NAMES.includes(dep as never)) registryRoots.set(dep, range);
  Object.assign(lockPackages, await registryClosure(registryRoots));
  const finalManifest: Manifest = { ...manifest, dependencies: deps, devDependencies: devDeps };
  await writeFile(join(dir, "package.json"), `${JSON.stringify(finalManifest, null, 2)}\n`);
  const lock = {
    name: manifest.name,
    version: manifest.version ?? "0.0.0",
    lockfileVersion: 3,
    requires: true,
    packages: { "": { name: manifest.name, version: manifest.version ?? "0.0.0", dependencies: deps, devDependencies: devDeps }, ...lockPackages },
  };
  await writeFile(join(dir, "package-lock.json"), `${JSON.stringify(lock, null, 2)}\n`);
  const { code, output } = await run("npm", ["ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"], dir, { env: scratchEnv(), timeoutMs: 120_000 });
  if (code !== 0) {
    throw new Error(`npm ci --offline in ${dir} exited ${code} (a package missing from npm's cache? run npm ci in the workspace first):\n${output}`);
  }
  return dir;
}

/** The manifest inside a tarball (read with tar, which every machine here has). */
async function packedManifest(tgz: string, cwd: string): Promise<Manifest & { license?: string; engines?: Record<string, string> }> {
  const { code, stdout, output } = await run("tar", ["-xzOf", tgz, "package/package.json"], cwd);
  if (code !== 0) throw new Error(`cannot read package.json from ${tgz}: ${output}`);
  return JSON.parse(stdout) as Manifest;
}

/**
 * Lock entries for registry packages and everything they depend on, at the versions of the
 * workspace's lock (hoisted entries only), each with its registry URL so npm finds it in the cache
 * by integrity.
 */
async function registryClosure(roots: ReadonlyMap<string, string>): Promise<Record<string, LockEntry>> {
  const lock = await workspaceLock();
  const registry = "https://registry.npmjs.org/";
  const out: Record<string, LockEntry> = {};
  const queue: Array<[string, string, string]> = [...roots].map(([name, range]) => [name, range, "the project"]);
  while (queue.length > 0) {
    const [name, range, from] = queue.shift() as [string, string, string];
    if (out[`node_modules/${name}`]) continue;
    const entry = lock[`node_modules/${name}`];
    if (!entry) throw new Error(`${name} (wanted by ${from}) is not in the workspace's package-lock.json: add it to the workspace so its tarball is cached`);
    if (!satisfiesRange(entry.version, range)) throw new Error(`${from} wants ${name}@${range}; the workspace locks ${entry.version}`);
    const { dev: _dev, devOptional: _devOptional, peer: _peer, resolved: _resolved, ...rest } = entry;
    out[`node_modules/${name}`] = { ...rest, resolved: `${registry}${name}/-/${name.split("/").pop() as string}-${entry.version}.tgz` };
    for (const [dep, depRange] of Object.entries({ ...entry.dependencies, ...entry.optionalDependencies })) {
      if (Object.keys(lock).some((k) => k.endsWith(`/node_modules/${name}/node_modules/${dep}`) || k === `node_modules/${name}/node_modules/${dep}`)) {
        throw new Error(`${name} has a nested copy of ${dep} in the workspace lock; scratch projects only take hoisted packages`);
      }
      queue.push([dep, depRange, name]);
    }
  }
  return out;
}

/** `^x.y.z` (npm's caret), an exact version, or `*`; enough for the ranges of the examples and their dependencies. */
function satisfiesCaret(version: string, range: string): boolean {
  if (range === "*" || range === version) return true;
  const m = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range);
  if (!m) return false;
  const [a, b, c] = m.slice(1).map(Number) as [number, number, number];
  const [x, y, z] = version.split(/[.+-]/).map(Number) as [number, number, number];
  if (a > 0) return x === a && (y > b || (y === b && z >= c));
  if (b > 0) return x === 0 && y === b && z >= c;
  return x === 0 && y === 0 && z === c;
}

/** Carets, exact versions, `*`, `>=a <b` pairs and `||` alternatives (the forms in the lock's dependency ranges). */
function satisfiesRange(version: string, range: string): boolean {
  return range.split("||").some((alt) => {
    const r = alt.trim();
    if (satisfiesCaret(version, r)) return true;
    const parts = r.split(/\s+/);
    if (parts.length === 0 || !parts.every((p) => /^(>=|<=|>|<)\d+\.\d+\.\d+$/.test(p))) return false;
    return parts.every((p) => {
      const [, op, v] = /^(>=|<=|>|<)(.*)$/.exec(p) as unknown as [string, string, string];
      const cmp = compare(version, v);
      return op === ">=" ? cmp >= 0 : op === "<=" ? cmp <= 0 : op === ">" ? cmp > 0 : cmp < 0;
    });
  });
}

function compare(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map(Number);
  const pb = b.split(/[.+-]/).map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
