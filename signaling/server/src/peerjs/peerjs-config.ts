import { z } from "zod";

/** URL prefix of the PeerJS face; PeerJS clients pass it as `path` in the `Peer` options. @default "/peerjs" */
export const DEFAULT_PEERJS_PATH = "/peerjs";
/** The PeerJS API key, as in PeerJS server. @default "peerjs" */
export const DEFAULT_PEERJS_KEY = "peerjs";
/** How long a message waits for a peer that has not connected before the sender gets `EXPIRE`. @default 5000 */
export const DEFAULT_PEERJS_EXPIRE_TIMEOUT_MS = 5_000;
/** A socket that sends nothing (not even `HEARTBEAT`) for this long is closed. @default 60000 */
export const DEFAULT_PEERJS_ALIVE_TIMEOUT_MS = 60_000;
/** How long a dropped peer may come back with its token before the peers it talked to get `LEAVE`. @default 5000 */
export const DEFAULT_PEERJS_LEAVE_GRACE_MS = 5_000;
/** Registered PeerJS ids per pod, as PeerJS server's `concurrent_limit`. @default 5000 */
export const DEFAULT_PEERJS_CONCURRENT_LIMIT = 5_000;
/** Messages queued for one peer that has not connected yet. @default 64 */
export const DEFAULT_PEERJS_MAX_QUEUED_PER_PEER = 64;
/** Bytes of all queued messages of the pod together. @default 4194304 */
export const DEFAULT_PEERJS_MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** First path segments the pod serves itself (health, metrics, admin, the v1 socket, the demo page's modules). */
const RESERVED_PREFIXES: ReadonlySet<string> = new Set(["healthz", "readyz", "metrics", "admin", "v1", "sdk", "vendor", "index.html", "demo.ts", "favicon.ico"]);

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
/** A boolean that also reads "true"/"false"/"1"/"0"/"yes"/"no" from the environment. */
const bool = z.union([z.boolean(), z.stringbool()]);

/**
 * The PeerJS-server-compatible face (`config.peerjs`), see docs/peerjs.md.
 *
 * - `enabled`: serve the face. @default true
 * - `path`: URL prefix; the WebSocket is `{path}/peerjs`, the HTTP API `{path}/`, `{path}/{key}/id`
 *   and `{path}/{key}/peers`. One or more `/segment`s, no trailing slash. @default "/peerjs"
 * - `key`: the shared API key every client must send. @default "peerjs"
 * - `auth`: `pod` (default) follows `config.auth`: in `jwt` mode the PeerJS `token` must be a JWT
 *   whose `sub` is the PeerJS id and that grants `signal`; in `insecure-dev` mode any id works.
 *   `key` accepts any id with the key alone, as PeerJS server does, even on a `jwt` pod.
 * - `expireTimeoutMs` @default 5000, `aliveTimeoutMs` @default 60000, `leaveGraceMs` @default 5000
 *   (0 announces `LEAVE` as soon as a socket closes), `concurrentLimit` @default 5000.
 * - `allowDiscovery`: `GET {path}/{key}/peers` lists every connected id. @default false
 * - `announceLeave`: tell the peers a peer exchanged messages with when it leaves (`LEAVE`). @default true
 * - `maxQueuedPerPeer` @default 64, `maxQueuedBytes` @default 4 MiB: bounds of the queue of
 *   messages waiting for peers that have not connected; a message over them is dropped and the
 *   sender gets `EXPIRE` at once.
 */
export const PeerJsConfigSchema = z.object({
  enabled: bool.default(true),
  path: z
    .string()
    .regex(/^(?:\/[A-Za-z0-9._~-]+)+$/, "must be /segment[/segment…] without a trailing slash")
    .refine((p) => !RESERVED_PREFIXES.has(p.split("/")[1] ?? ""), "must not start with a path the pod serves itself")
    .default(DEFAULT_PEERJS_PATH),
  key: z.string().min(1).max(256).default(DEFAULT_PEERJS_KEY),
  auth: z.enum(["pod", "key"]).default("pod"),
  expireTimeoutMs: int(10).default(DEFAULT_PEERJS_EXPIRE_TIMEOUT_MS),
  aliveTimeoutMs: int(100).default(DEFAULT_PEERJS_ALIVE_TIMEOUT_MS),
  leaveGraceMs: int(0).default(DEFAULT_PEERJS_LEAVE_GRACE_MS),
  concurrentLimit: int(1).default(DEFAULT_PEERJS_CONCURRENT_LIMIT),
  allowDiscovery: bool.default(false),
  announceLeave: bool.default(true),
  maxQueuedPerPeer: int(1).default(DEFAULT_PEERJS_MAX_QUEUED_PER_PEER),
  maxQueuedBytes: int(1024).default(DEFAULT_PEERJS_MAX_QUEUED_BYTES),
});

/** Validated settings of the PeerJS face. */
export type PeerJsConfig = z.infer<typeof PeerJsConfigSchema>;
