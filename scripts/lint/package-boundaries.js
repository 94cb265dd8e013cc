/**
 * ESLint rule `switchboard/package-boundaries`: a workspace package is reached only through its
 * entry points (the keys of its package.json `exports`, such as `@switchboard/server` and
 * `@switchboard/server/testing`), never through its files.
 *
 * Refused:
 * - a relative import that leaves its own package and lands in another one
 *   (`../../server/src/testing/pod.ts` from the SDK, `../../../operator/src/kube/http.ts` from e2e);
 * - a relative import from outside every package (the repository's scripts) into one;
 * - a package import of a subpath the package does not export (`@switchboard/server/src/hub.ts`).
 *
 * Static imports, re-exports, `import()` with a literal and `import("…")` types are checked.
 * Imports within one package, of the repository's own scripts, and of other npm packages are left
 * alone. The workspaces and their `exports` are read from the package.json files once per process.
 *
 * Plain JavaScript (type-checked through JSDoc), so that any runtime that loads eslint.config.js,
 * an editor's included, loads the rule too.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * A workspace package: where it lives and what it exports.
 * @typedef {object} Workspace
 * @property {string} name the package name
 * @property {string} dir its absolute directory, ending with the path separator
 * @property {readonly string[]} entries its entry points as subpaths: `.`, `./testing`, …
 */

/**
 * What is wrong with one import specifier.
 * @typedef {{ messageId: "relative" | "subpath", data: Record<string, string> }} Problem
 */

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** @type {readonly Workspace[] | null} */
let cached = null;

/**
 * The workspaces of the repository at `root` (read once per process for the repository itself).
 * @param {string} [root] the directory of the root package.json
 * @returns {readonly Workspace[]}
 */
export function workspacesOf(root = REPO_ROOT) {
  if (root === REPO_ROOT && cached) return cached;
  /** @type {{ workspaces?: string[] }} */
  const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const found = (rootManifest.workspaces ?? []).map((w) => {
    const dir = resolve(root, w);
    /** @type {{ name: string, exports?: unknown }} */
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    return { name: manifest.name, dir: dir + sep, entries: entryPoints(manifest.exports) };
  });
  if (root === REPO_ROOT) cached = found;
  return found;
}

/**
 * The subpaths an `exports` field makes importable (patterns kept as written).
 * @param {unknown} exports the field
 * @returns {string[]}
 */
function entryPoints(exports) {
  if (exports === undefined || exports === null) return [];
  if (typeof exports === "string" || Array.isArray(exports)) return ["."];
  const keys = Object.keys(exports);
  // An object of conditions (`{"types": …, "default": …}`) exports "." only.
  return keys.every((k) => k.startsWith(".")) ? keys : ["."];
}

/**
 * The package that holds `path` (the deepest one, should they nest), if any.
 * @param {readonly Workspace[]} workspaces
 * @param {string} path an absolute path
 * @returns {Workspace | undefined}
 */
function packageOf(workspaces, path) {
  /** @type {Workspace | undefined} */
  let best;
  for (const w of workspaces) if (path.startsWith(w.dir) && (!best || w.dir.length > best.dir.length)) best = w;
  return best;
}

/**
 * True when `subpath` (`./testing`) is one of `entries`, patterns (`./features/*`) included.
 * @param {readonly string[]} entries
 * @param {string} subpath
 */
function exported(entries, subpath) {
  return entries.some((e) => {
    const star = e.indexOf("*");
    if (star < 0) return e === subpath;
    return subpath.length >= e.length - 1 && subpath.startsWith(e.slice(0, star)) && subpath.endsWith(e.slice(star + 1));
  });
}

/**
 * Splits `@scope/name/sub/path` (or `name/sub`) into the package name and `./sub/path` (or ".").
 * @param {string} spec
 */
function splitSpecifier(spec) {
  const parts = spec.split("/");
  const n = spec.startsWith("@") ? 2 : 1;
  const rest = parts.slice(n).join("/");
  return { name: parts.slice(0, n).join("/"), subpath: rest === "" ? "." : `./${rest}` };
}

/**
 * The check of the import specifiers of one file.
 * @param {string} filename the file's absolute path
 * @param {readonly Workspace[]} [workspaces] the repository's packages
 * @returns {(spec: string) => Problem | null}
 */
export function checker(filename, workspaces = workspacesOf()) {
  const from = packageOf(workspaces, filename);
  const byName = new Map(workspaces.map((w) => [w.name, w]));
  /** @param {Workspace} w */
  const entriesOf = (w) => w.entries.map((e) => (e === "." ? w.name : `${w.name}/${e.slice(2)}`)).join(", ") || "none";
  return (spec) => {
    if (spec.startsWith("./") || spec.startsWith("../")) {
      const target = packageOf(workspaces, resolve(dirname(filename), spec));
      if (!target || target === from) return null;
      return { messageId: "relative", data: { spec, pkg: target.name, entries: entriesOf(target) } };
    }
    const { name, subpath } = splitSpecifier(spec);
    const target = byName.get(name);
    if (!target || subpath === "." || exported(target.entries, subpath)) return null;
    return { messageId: "subpath", data: { spec, pkg: target.name, entries: entriesOf(target) } };
  };
}

/**
 * A string literal's value, or null for anything else (a template, an expression).
 * @param {unknown} node
 * @returns {string | null}
 */
function literal(node) {
  const n = /** @type {{ type?: string, value?: unknown } | null | undefined} */ (node);
  return n?.type === "Literal" && typeof n.value === "string" ? n.value : null;
}

/** @type {import("eslint").Rule.RuleModule} */
export const packageBoundaries = {
  meta: {
    type: "problem",
    docs: { description: "Reach another workspace package only through the entry points in its package.json exports" },
    schema: [],
    messages: {
      relative: '"{{spec}}" reaches into the files of {{pkg}}: import one of its entry points ({{entries}}) instead.',
      subpath: '"{{spec}}" is not an entry point of {{pkg}} (its entry points: {{entries}}).',
    },
  },
  create(context) {
    const check = checker(context.filename);
    /**
     * @param {unknown} source the node of the specifier
     * @param {import("eslint").Rule.Node} node where to report
     */
    const visit = (source, node) => {
      const spec = literal(source);
      if (spec === null) return;
      const problem = check(spec);
      if (problem) context.report({ node, ...problem });
    };
    return {
      ImportDeclaration: (node) => visit(node.source, node),
      ExportNamedDeclaration: (node) => visit(node.source, node),
      ExportAllDeclaration: (node) => visit(node.source, node),
      ImportExpression: (node) => visit(node.source, node),
      // `import("…").Type` in TypeScript (a typescript-eslint node, not an ESTree one).
      /** @param {import("eslint").Rule.Node} node */
      TSImportType: (node) => {
        const argument = /** @type {{ argument?: { type?: string, literal?: unknown } }} */ (/** @type {unknown} */ (node)).argument;
        visit(argument?.type === "TSLiteralType" ? argument.literal : argument, node);
      },
    };
  },
};

/** The plugin as eslint.config.js registers it. */
export const boundariesPlugin = { rules: { "package-boundaries": packageBoundaries } };
