/**
 * The images' Dockerfiles cannot be built here (no Docker), so this holds them to what matters:
 * the `node:24-slim` base, a numeric non-root USER before the ENTRYPOINT, COPY sources that exist
 * and are not kept out of the build context by `.dockerignore`, an `npm ci --omit=dev` of just the
 * image's workspaces that the lock file can satisfy and that installs every package the copied
 * code imports, an ENTRYPOINT script that the image contains; and that the node agent of the local
 * cluster (images.ts) runs exactly that entrypoint.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { basename, dirname, join, posix } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_IMAGE_MAP } from './images.ts';
import { NODE_BIN, REPO_ROOT } from './paths.ts';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** Splits a Dockerfile into instructions: continuation lines joined, comments and blank lines dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) return;
    if (pending === '') start = i + 1;
    const continued = line.endsWith('\\');
    pending += `${continued ? line.slice(0, -1) : line} `;
    if (continued) return;
    const [keyword = '', ...rest] = pending.trim().split(/\s+/);
    out.push({ keyword: keyword.toUpperCase(), args: rest.join(' '), line: start });
    pending = '';
  });
  assert.equal(pending, '', 'the last instruction ends with a continuation');
  return out;
}

/** A file or directory the image gets from the repository: image path ← repository path. */
interface Copied {
  readonly imagePath: string;
  readonly repoPath: string;
  readonly dir: boolean;
  /** Whether the repository has it (a build fails on a COPY of a missing path). */
  readonly exists: boolean;
  /** Index of the COPY instruction. */
  readonly at: number;
}

/** What one Dockerfile builds, as far as these checks need it. */
interface Image {
  readonly instructions: readonly Instruction[];
  readonly from: readonly string[];
  readonly env: ReadonlyMap<string, string>;
  readonly copied: readonly Copied[];
  /** WORKDIR in effect at the ENTRYPOINT. */
  readonly workdir: string;
  readonly entrypoint: readonly string[];
  readonly entrypointAt: number;
}

function readImage(dockerfile: string): Image {
  const instructions = parseDockerfile(readFileSync(join(REPO_ROOT, dockerfile), 'utf8'));
  const env = new Map<string, string>();
  const copied: Copied[] = [];
  const from: string[] = [];
  let workdir = '/';
  let entrypoint: string[] | undefined;
  let entrypointAt = -1;
  instructions.forEach((ins, at) => {
    const where = `${dockerfile}:${ins.line}`;
    switch (ins.keyword) {
      case 'FROM':
        from.push(ins.args);
        break;
      case 'WORKDIR':
        workdir = posix.resolve(workdir, ins.args);
        break;
      case 'ENV':
        for (const pair of ins.args.split(/\s+/)) {
          const eq = pair.indexOf('=');
          assert.ok(eq > 0, `${where}: ENV in KEY=value form (${ins.args})`);
          env.set(pair.slice(0, eq), pair.slice(eq + 1).replace(/^"(.*)"$/, '$1'));
        }
        break;
      case 'COPY':
      case 'ADD': {
        assert.equal(ins.keyword, 'COPY', `${where}: COPY, not ADD`);
        const words = ins.args.split(/\s+/);
        assert.ok(!words.some((w) => w.startsWith('--from')), `${where}: a single-stage build copies from the context only`);
        const paths = words.filter((w) => !w.startsWith('--'));
        const dest = paths.pop() ?? '';
        assert.ok(paths.length > 0, `${where}: COPY has sources and a destination`);
        const destPath = posix.resolve(workdir, dest);
        for (const source of paths) {
          assert.ok(!/[*?[]/.test(source), `${where}: COPY source ${source} is a plain path`);
          const full = join(REPO_ROOT, source);
          const exists = existsSync(full);
          const dir = exists && statSync(full).isDirectory();
          // A file copied into a directory (a destination ending in / or several sources) keeps its name.
          const imagePath = !dir && (dest.endsWith('/') || paths.length > 1) ? posix.join(destPath, basename(source)) : destPath;
          copied.push({ imagePath, repoPath: posix.normalize(source).replace(/\/$/, ''), dir, exists, at });
        }
        break;
      }
      case 'ENTRYPOINT':
        entrypoint = JSON.parse(ins.args) as string[];
        assert.ok(Array.isArray(entrypoint) && entrypoint.every((a) => typeof a === 'string'), `${where}: ENTRYPOINT in exec (JSON) form`);
        entrypointAt = at;
        break;
      default:
    }
  });
  assert.ok(entrypoint !== undefined, `${dockerfile} has an ENTRYPOINT`);
  return { instructions, from, env, copied, workdir, entrypoint, entrypointAt };
}

/** The repository path of an image path, when a COPY before instruction `before` put it there. */
function repoPathOf(image: Image, imagePath: string, before = Infinity): string | undefined {
  // A later COPY overrides an earlier one.
  for (const c of [...image.copied].reverse()) {
    if (c.at >= before) continue;
    if (c.imagePath === imagePath) return c.repoPath;
    if (c.dir && imagePath.startsWith(`${c.imagePath}/`)) return posix.join(c.repoPath, imagePath.slice(c.imagePath.length + 1));
  }
  return undefined;
}

/** `.dockerignore` as a function: whether the build context leaves a repository path out. */
function dockerignore(): (path: string) => boolean {
  const rules = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize(negate ? l.slice(1) : l).replace(/^\/|\/$/g, '');
      const source = pattern.split(/(\*\*\/|\*\*|\*|\?)/).map((part) => {
        if (part === '**/') return '(?:.*/)?';
        if (part === '**') return '.*';
        if (part === '*') return '[^/]*';
        if (part === '?') return '[^/]';
        return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }).join('');
      return { negate, re: new RegExp(`^${source}$`) };
    });
  // As Docker does: a path is left out when it or a parent matches; the last matching rule wins.
  return (path) => {
    const parts = path.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (prefixes.some((p) => rule.re.test(p))) excluded = !rule.negate;
    return excluded;
  };
}

/** Every file under a repository directory (relative paths), skipping what `ignored` leaves out. */
function filesUnder(dir: string, ignored: (path: string) => boolean): string[] {
  return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = posix.join(dir, e.name);
    if (ignored(path)) return [];
    return e.isDirectory() ? filesUnder(path, ignored) : [path];
  });
}

/** The packages a module imports at run time (bare specifiers; `import type` is erased). */
function importedPackages(source: string): string[] {
  const specifiers = [
    ...source.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]/gm),
    ...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1] ?? '');
  return specifiers.filter((s) => !s.startsWith('.') && !s.startsWith('/') && !isBuiltin(s))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] ?? s)));
}

interface LockEntry {
  readonly name?: string;
  readonly link?: boolean;
  readonly resolved?: string;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
}

/**
 * The lock file's paths that `npm ci --omit=dev --workspace …` installs: the workspaces, then the
 * production dependencies of each installed package, resolved as Node resolves them (the nearest
 * `node_modules` up from the package).
 */
function installedByLock(lock: Record<string, LockEntry>, workspaces: readonly string[]): Set<string> {
  const installed = new Set<string>();
  const queue = [...workspaces];
  for (let path = queue.shift(); path !== undefined; path = queue.shift()) {
    if (installed.has(path)) continue;
    installed.add(path);
    const entry = lock[path];
    if (entry === undefined) continue;
    if (entry.link === true && entry.resolved !== undefined) {
      queue.push(entry.resolved);
      continue;
    }
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies })) {
      const found = resolveInLock(lock, path, name);
      if (found !== undefined) queue.push(found);
    }
  }
  return installed;
}

/** The lock path that `name` resolves to from the package at lock path `from`. */
function resolveInLock(lock: Record<string, LockEntry>, from: string, name: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = dir === '.' || dir === '' ? `node_modules/${name}` : `${dir}/node_modules/${name}`;
    if (lock[candidate] !== undefined) return candidate;
    if (dir === '.' || dir === '' || dir === '/') return undefined;
  }
}

const ROOT_PACKAGE = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };

/** The images and what each must hold. */
const IMAGES = [
  { dockerfile: 'signaling/server/Dockerfile', repository: 'switchboard/signaling', workspaces: ['signaling/protocol', 'signaling/ring', 'signaling/server'], script: 'signaling/server/src/main.ts', port: '8080' },
  { dockerfile: 'operator/Dockerfile', repository: 'switchboard/operator', workspaces: ['signaling/ring', 'operator'], script: 'operator/src/main.ts', port: undefined },
] as const;

for (const spec of IMAGES) {
  test(`${spec.dockerfile}: the image the node agent stands in for`, async (t) => {
    const image = readImage(spec.dockerfile);
    const ignored = dockerignore();

    await t.test('one stage on node:24-slim, NODE_ENV=production', () => {
      assert.equal(image.from.length, 1, `one FROM: ${image.from.join(', ')}`);
      assert.match(image.from[0] ?? '', /^node:24-slim(?:@sha256:[0-9a-f]{64})?$/);
      assert.equal(image.env.get('NODE_ENV'), 'production');
      if (spec.port !== undefined) {
        assert.ok(image.instructions.some((i) => i.keyword === 'EXPOSE' && i.args.split(/\s+/).includes(spec.port)), `EXPOSE ${spec.port}`);
      }
    });

    await t.test('runs as a numeric non-root user', () => {
      const users = image.instructions.map((ins, at) => ({ ins, at })).filter(({ ins }) => ins.keyword === 'USER');
      const last = users.at(-1);
      assert.ok(last !== undefined && last.at < image.entrypointAt, 'a USER before the ENTRYPOINT');
      const match = /^(\d+)(?::(\d+))?$/.exec(last.ins.args);
      assert.ok(match !== null, `USER ${last.ins.args} is numeric (runAsNonRoot cannot check a name)`);
      assert.notEqual(Number(match[1]), 0, 'USER is not root');
      assert.notEqual(Number(match[2] ?? 1), 0, 'the group is not root');
    });

    await t.test('COPY sources exist and are in the build context', () => {
      for (const c of image.copied) {
        assert.ok(c.exists, `COPY source ${c.repoPath} exists in the repository`);
        assert.ok(!ignored(c.repoPath), `COPY source ${c.repoPath} is not left out by .dockerignore`);
      }
    });

    await t.test('npm ci --omit=dev installs just its workspaces, from a lock file in step with them', () => {
      const runs = image.instructions.map((ins, at) => ({ ins, at })).filter(({ ins }) => ins.keyword === 'RUN' && /\bnpm ci\b/.test(ins.args));
      assert.equal(runs.length, 1, 'one RUN npm ci');
      const { ins, at } = runs[0] ?? assert.fail();
      assert.match(ins.args, /--omit=dev\b/);
      const workspaces = [...ins.args.matchAll(/--workspace(?:=|\s+)(\S+)/g)].map((m) => m[1]);
      assert.deepEqual(workspaces, spec.workspaces);
      for (const file of ['package.json', 'package-lock.json']) {
        assert.equal(repoPathOf(image, posix.join(image.workdir, file), at), file, `${file} is copied before npm ci`);
      }
      const lock = (JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }).packages;
      for (const ws of spec.workspaces) {
        assert.ok(ROOT_PACKAGE.workspaces.includes(ws), `${ws} is a workspace of the root package.json`);
        assert.equal(repoPathOf(image, posix.join(image.workdir, ws, 'package.json'), at), `${ws}/package.json`, `${ws}/package.json is copied before npm ci`);
        // npm ci refuses a lock file whose workspace entries differ from the manifests.
        const manifest = JSON.parse(readFileSync(join(REPO_ROOT, ws, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
        assert.deepEqual(lock[ws]?.dependencies ?? {}, manifest.dependencies ?? {}, `package-lock.json's entry for ${ws} is in step with ${ws}/package.json (npm install)`);
      }
    });

    await t.test('the workspaces\' code imports only what npm ci installs', () => {
      const lock = (JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }).packages;
      const installed = installedByLock(lock, spec.workspaces);
      const missing: string[] = [];
      // What Node runs: the workspaces' src/ (not the files the pod serves to browsers).
      const inWorkspaceSrc = (f: string) => spec.workspaces.some((ws) => f.startsWith(`${ws}/src/`));
      for (const c of image.copied.filter((x) => x.dir && x.exists)) {
        for (const file of filesUnder(c.repoPath, ignored).filter((f) => f.endsWith('.ts') && inWorkspaceSrc(f))) {
          for (const pkg of importedPackages(readFileSync(join(REPO_ROOT, file), 'utf8'))) {
            const found = resolveInLock(lock, dirname(file), pkg);
            if (found === undefined || !installed.has(found)) missing.push(`${file} imports ${pkg}`);
          }
        }
      }
      assert.deepEqual(missing, [], 'every package the image\'s code imports is a production dependency of its workspaces');
    });

    await t.test('the ENTRYPOINT runs a script that the image holds', () => {
      const [program, ...args] = image.entrypoint;
      assert.equal(program, 'node');
      assert.equal(args.find((a) => !a.startsWith('-')), spec.script);
      assert.equal(repoPathOf(image, posix.resolve(image.workdir, spec.script)), spec.script, `a COPY puts ${spec.script} at ${image.workdir}/${spec.script}`);
      assert.ok(existsSync(join(REPO_ROOT, spec.script)), `${spec.script} exists`);
      assert.ok(!ignored(spec.script), `${spec.script} is in the build context`);
    });

    await t.test('the node agent runs exactly the image\'s entrypoint', () => {
      const [, ...args] = image.entrypoint;
      // The node agent runs the same argv from the repository root (the image's WORKDIR, where
      // every COPY puts a path at its own repository path), with the repository's Node 24.
      const command = DEFAULT_IMAGE_MAP.find((e) => e.repository === spec.repository)?.command;
      assert.ok(command !== undefined, `images.ts maps ${spec.repository}`);
      assert.deepEqual(command.entrypoint, [NODE_BIN, ...args]);
      assert.equal(command.cwd, REPO_ROOT);
      for (const c of image.copied) assert.equal(c.imagePath, posix.join(image.workdir, c.repoPath), `COPY ${c.repoPath} keeps its repository path under ${image.workdir}`);
      // What the agent sets to the pod IP, the image sets to every address of its own network.
      if (command.bindAddressEnv !== undefined) assert.equal(image.env.get(command.bindAddressEnv), '0.0.0.0');
    });
  });
}
