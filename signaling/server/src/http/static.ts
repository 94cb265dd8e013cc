import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { stripTypeScriptTypes } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const PUBLIC_DIR = fileURLToPath(new URL("../../public/", import.meta.url));
const CLIENT_SRC = fileURLToPath(new URL("../../../client/src/", import.meta.url));
const PROTOCOL_SRC = fileURLToPath(new URL("../../../protocol/src/", import.meta.url));
const ZOD_DIR = `${dirname(fileURLToPath(import.meta.resolve("zod")))}/`;

const HTML = "text/html; charset=utf-8";
const JS = "text/javascript; charset=utf-8";

/** Fixed files of the demo page, by URL path. */
const PAGES: Readonly<Record<string, { file: string; type: string; strip: boolean }>> = {
  "/": { file: `${PUBLIC_DIR}index.html`, type: HTML, strip: false },
  "/index.html": { file: `${PUBLIC_DIR}index.html`, type: HTML, strip: false },
  "/demo.ts": { file: `${PUBLIC_DIR}demo.ts`, type: JS, strip: true },
};

/**
 * Module trees the browser loads without a build step: the SDK and the protocol package as
 * TypeScript with the types stripped (Node's own stripper), and zod's ESM files. Only plain file
 * names are served: no `..`, no directories outside these roots.
 */
const TREES: ReadonlyArray<{ prefix: string; dir: string; pattern: RegExp; strip: boolean }> = [
  { prefix: "/sdk/client/", dir: CLIENT_SRC, pattern: /^[a-z0-9-]+\.ts$/, strip: true },
  { prefix: "/sdk/protocol/", dir: PROTOCOL_SRC, pattern: /^[a-z0-9-]+\.ts$/, strip: true },
  { prefix: "/vendor/zod/", dir: ZOD_DIR, pattern: /^(?:[a-z0-9_-]+\/)*[a-z0-9_.-]+\.js$/i, strip: false },
];

const cache = new Map<string, Buffer>();

/** Serves the demo page and the browser modules it needs; returns false for any other path. */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  if (path === "/favicon.ico") {
    res.writeHead(204, { "cache-control": "max-age=86400" });
    res.end();
    return true;
  }
  const target = resolve(path);
  if (!target) return false;
  let body = cache.get(target.file);
  if (!body) {
    let text: string;
    try {
      text = await readFile(target.file, "utf8");
    } catch {
      return false;
    }
    if (target.strip) text = stripTypeScriptTypes(text, { mode: "strip" });
    body = Buffer.from(text);
    cache.set(target.file, body);
  }
  res.writeHead(200, { "content-type": target.type, "content-length": body.length, "cache-control": "no-cache", "x-content-type-options": "nosniff" });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}

function resolve(path: string): { file: string; type: string; strip: boolean } | undefined {
  const page = PAGES[path];
  if (page) return page;
  for (const tree of TREES) {
    if (!path.startsWith(tree.prefix)) continue;
    const rest = path.slice(tree.prefix.length);
    if (!tree.pattern.test(rest) || rest.includes("..")) return undefined;
    return { file: tree.dir + rest, type: JS, strip: tree.strip };
  }
  return undefined;
}
