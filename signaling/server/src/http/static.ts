import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";

const PUBLIC_DIR = fileURLToPath(new URL("../../public/", import.meta.url));

/** Files of the demo page, by URL path. */
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
};

/** Serves the demo page's files; returns false for any other path. */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  const entry = FILES[path];
  if (!entry || (req.method !== "GET" && req.method !== "HEAD")) return false;
  const body = await readFile(PUBLIC_DIR + entry.file);
  res.writeHead(200, { "content-type": entry.type, "content-length": body.length, "cache-control": "no-cache" });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}
