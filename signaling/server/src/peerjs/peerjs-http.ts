import type { IncomingMessage, ServerResponse } from "node:http";
import type { PeerJsConfig } from "./peerjs-config.ts";
import { sameSecret } from "./peerjs-realm.ts";

/** What the HTTP API of the PeerJS face reads. */
export interface PeerJsHttpContext {
  readonly config: PeerJsConfig;
  /** The pod's `allowedOrigins` (empty or `*`: any origin gets CORS headers). */
  readonly allowedOrigins: readonly string[];
  ids(): string[];
  newId(): string;
}

/** `GET {path}/`: the same document PeerJS server answers, naming the implementation. */
const INFO = JSON.stringify({
  name: "PeerJS Server",
  description: "A server side element to broker connections between PeerJS clients.",
  website: "https://peerjs.com/",
  implementation: "switchboard",
});

const ROUTE = /^\/([^/]+)\/(id|peers)$/;

/**
 * The HTTP API PeerJS clients call, under the face's prefix `{path}` (peerjs-server
 * `src/api/v1/public/index.ts`):
 *
 * | request | answer |
 * |---|---|
 * | `GET {path}` or `{path}/` | 200, info JSON |
 * | `GET {path}/{key}/id` | 200, a fresh id as `text/html` (as PeerJS server), or 401 for a wrong key |
 * | `GET {path}/{key}/peers` | 200, JSON array of connected ids when `allowDiscovery`; else 401 |
 * | `OPTIONS` anything | 204, CORS preflight |
 * | anything else | 404 |
 *
 * CORS reflects the request's `Origin` (PeerJS server's `{origin: true}`), restricted to the pod's
 * `allowedOrigins` when that list is set.
 */
export function handlePeerJsHttp(req: IncomingMessage, res: ServerResponse, path: string, ctx: PeerJsHttpContext): void {
  const headers: Record<string, string> = { vary: "Origin", "cache-control": "no-store" };
  const origin = req.headers.origin;
  const anyOrigin = ctx.allowedOrigins.length === 0 || ctx.allowedOrigins.includes("*");
  if (origin && (anyOrigin || ctx.allowedOrigins.includes(origin))) headers["access-control-allow-origin"] = origin;

  if (req.method === "OPTIONS") {
    headers["access-control-allow-methods"] = "GET,HEAD";
    const requested = req.headers["access-control-request-headers"];
    if (requested) {
      headers["access-control-allow-headers"] = requested;
      headers["vary"] = "Origin, Access-Control-Request-Headers";
    }
    return send(res, 204, headers, "", null);
  }
  if (req.method !== "GET" && req.method !== "HEAD") return send(res, 404, headers, "Not Found", "text/plain; charset=utf-8");

  const rest = path.slice(ctx.config.path.length);
  if (rest === "" || rest === "/") return send(res, 200, headers, INFO, "application/json; charset=utf-8");
  const m = ROUTE.exec(rest);
  if (!m) return send(res, 404, headers, "Not Found", "text/plain; charset=utf-8");
  let key: string;
  try {
    key = decodeURIComponent(m[1] as string);
  } catch {
    return send(res, 404, headers, "Not Found", "text/plain; charset=utf-8");
  }
  // PeerJS server ignores the key here; the face checks it, as the WebSocket does.
  if (!sameSecret(key, ctx.config.key)) return send(res, 401, headers, "Unauthorized", "text/plain; charset=utf-8");
  if (m[2] === "id") return send(res, 200, headers, ctx.newId(), "text/html; charset=utf-8");
  if (!ctx.config.allowDiscovery) return send(res, 401, headers, "Unauthorized", "text/plain; charset=utf-8");
  return send(res, 200, headers, JSON.stringify(ctx.ids()), "application/json; charset=utf-8");
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string, type: string | null): void {
  res.writeHead(status, { ...headers, ...(type === null ? {} : { "content-type": type }), "content-length": Buffer.byteLength(body) });
  res.end(res.req.method === "HEAD" ? undefined : body);
}
