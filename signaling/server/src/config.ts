import { readFileSync } from "node:fs";
import { z } from "zod";
import {
  DEFAULT_CALL_CONFIRM_TIMEOUT_MS,
  DEFAULT_CALL_RING_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_MISSED_LIMIT,
  DEFAULT_MAX_INVALID_MESSAGES,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_OUTBOUND_BYTES,
  DEFAULT_MAX_PEERS_PER_ROOM,
  DEFAULT_MAX_REPLAY_BYTES,
  DEFAULT_MAX_ROOMS_PER_SESSION,
  DEFAULT_RATE_BURST,
  DEFAULT_RATE_PER_SECOND,
  DEFAULT_RESUME_WINDOW_MS,
} from "@switchboard/protocol";
import { AuthConfigSchema, TurnConfigSchema } from "./auth/index.ts";
import { PeerJsConfigSchema } from "./peerjs/peerjs-config.ts";

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/** The pod's whole configuration. Every field has a default except what production must set. */
export const ConfigSchema = z.object({
  /** Name of this pod (the ring member name in cluster mode). @default hostname */
  podName: z.string().min(1).default("switchboard-0"),
  host: z.string().default("127.0.0.1"),
  port: int(0, 65535).default(8080),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  auth: AuthConfigSchema.prefault({ mode: "jwt" }),
  /** Bearer token of the admin HTTP API; the API is off without it. */
  adminToken: z.string().min(16).optional(),
  /** Allowed `Origin` values of upgrades (exact, or `*`); empty = any origin. */
  allowedOrigins: z.array(z.string()).default([]),
  turn: TurnConfigSchema.prefault({}),
  limits: z
    .object({
      maxMessageBytes: int(256).default(DEFAULT_MAX_MESSAGE_BYTES),
      maxOutboundBytes: int(1024).default(DEFAULT_MAX_OUTBOUND_BYTES),
      maxReplayBytes: int(1024).default(DEFAULT_MAX_REPLAY_BYTES),
      ratePerSecond: z.coerce.number().positive().default(DEFAULT_RATE_PER_SECOND),
      rateBurst: int(1).default(DEFAULT_RATE_BURST),
      maxPeersPerRoom: int(1).default(DEFAULT_MAX_PEERS_PER_ROOM),
      maxRoomsPerSession: int(1).default(DEFAULT_MAX_ROOMS_PER_SESSION),
      maxInvalidMessages: int(1).default(DEFAULT_MAX_INVALID_MESSAGES),
      handshakeTimeoutMs: int(100).default(DEFAULT_HANDSHAKE_TIMEOUT_MS),
      /** Sockets one client address may hold. */
      maxConnectionsPerIp: int(1).default(1000),
      /** Upgrades per second one client address may make (token bucket, burst = 2x). */
      upgradesPerSecondPerIp: z.coerce.number().positive().default(50),
      /** Sockets one pod accepts in all. */
      maxConnections: int(1).default(100_000),
      /** Sessions one user may open per minute, across the whole cluster (Redis counters). */
      sessionsPerUserPerMinute: int(1).default(120),
      /** Calls one user may place per minute, across the whole cluster. */
      callsPerUserPerMinute: int(1).default(60),
    })
    .prefault({}),
  heartbeatIntervalMs: int(10).default(DEFAULT_HEARTBEAT_INTERVAL_MS),
  /**
   * How far V8's old generation may grow past what survived the last full GC before the next one,
   * in percent (V8's `--heap-growing-percent`; 0 leaves it to V8's heuristics). V8's own factor is
   * often 1.1–1.3 on a pod's small heap: with objects promoted at 1–2 MB/s under relay load, that
   * was a full GC every 1–3 s, each a 5–10 ms pause plus marking steps on the loop — the pod's
   * latency tail. 300 lets the old generation reach 4× its live size first (memory for latency;
   * docs/benchmarks.md). Applied by the pod process at start (main.ts).
   */
  gcHeapGrowingPercent: int(0, 1000).default(300),
  heartbeatMissedLimit: int(1).default(DEFAULT_HEARTBEAT_MISSED_LIMIT),
  resumeWindowMs: int(0).default(DEFAULT_RESUME_WINDOW_MS),
  /** Warn the client this long before its token expires. */
  tokenExpiryWarningMs: int(0).default(60_000),
  calls: z
    .object({
      ringTimeoutMs: int(100).default(DEFAULT_CALL_RING_TIMEOUT_MS),
      confirmTimeoutMs: int(100).default(DEFAULT_CALL_CONFIRM_TIMEOUT_MS),
    })
    .prefault({}),
  drain: z
    .object({
      /** Total time allowed for a drain before the remaining sockets are closed. */
      timeoutMs: int(0).default(30_000),
      /** Reconnect hints are spread over this window, with jitter. */
      spreadMs: int(0).default(10_000),
      /** Sockets told to reconnect per batch. */
      batchSize: int(1).default(500),
    })
    .prefault({}),
  /** Serve the demo page at `/`. */
  demoPage: z.coerce.boolean().default(true),
  /**
   * Cluster mode (docs/cluster.md). Off (single node, in memory) unless `name` is set; then NATS and
   * Redis are required and the ring comes from the ConfigMap `ringConfigMap` (through the
   * Kubernetes API), else from `ringFile`, else from the Redis key `sb:<name>:ring`.
   */
  cluster: z
    .object({
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "cluster name: 1-64 chars of A-Z a-z 0-9 _ -").optional(),
      natsUrl: z.string().default("nats://127.0.0.1:4222"),
      redisUrl: z.string().default("redis://127.0.0.1:6379"),
      ringFile: z.string().optional(),
      /**
       * The operator's ring ConfigMap (key `ring.json`), read and watched through the Kubernetes
       * API with the pod's service account (or KUBECONFIG). Takes precedence over `ringFile`.
       */
      ringConfigMap: z
        .string()
        .max(253)
        .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, "a ConfigMap name: lowercase DNS subdomain")
        .optional(),
      /** The namespace of `ringConfigMap`. @default the kubeconfig context's (in a pod: its service account's namespace) */
      namespace: z
        .string()
        .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "a namespace name: lowercase DNS label of 1-63 chars")
        .optional(),
      /** Stream storage: `file` survives a NATS restart. */
      storage: z.enum(["file", "memory"]).default("file"),
    })
    .prefault({}),
  /** The PeerJS-server-compatible face (docs/peerjs.md). */
  peerjs: PeerJsConfigSchema.prefault({}),
});
export type Config = z.infer<typeof ConfigSchema>;
/** Input accepted by {@link parseConfig}: any subset, with defaults filling the rest. */
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Thrown with one line per bad field. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Validates a configuration object; throws {@link ConfigError} naming every bad field. */
export function parseConfig(input: unknown): Config {
  const parsed = ConfigSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
}

/** Environment variables read by {@link loadConfig}, mapped to config paths. */
export const ENV_VARS: Readonly<Record<string, string>> = {
  SWITCHBOARD_POD_NAME: "podName",
  POD_NAME: "podName",
  SWITCHBOARD_HOST: "host",
  SWITCHBOARD_PORT: "port",
  SWITCHBOARD_LOG_LEVEL: "logLevel",
  SWITCHBOARD_ADMIN_TOKEN: "adminToken",
  SWITCHBOARD_ALLOWED_ORIGINS: "allowedOrigins",
  SWITCHBOARD_AUTH_MODE: "auth.mode",
  SWITCHBOARD_JWT_HS256_SECRET: "auth.hs256Secret",
  SWITCHBOARD_JWT_PUBLIC_KEYS: "auth.publicKeys",
  SWITCHBOARD_JWKS_URL: "auth.jwksUrl",
  SWITCHBOARD_JWT_AUDIENCE: "auth.audience",
  SWITCHBOARD_JWT_ISSUER: "auth.issuer",
  SWITCHBOARD_TURN_SECRET: "turn.secret",
  SWITCHBOARD_TURN_URLS: "turn.urls",
  SWITCHBOARD_STUN_URLS: "turn.stunUrls",
  SWITCHBOARD_TURN_TTL_SEC: "turn.ttlSec",
  SWITCHBOARD_MAX_MESSAGE_BYTES: "limits.maxMessageBytes",
  SWITCHBOARD_MAX_CONNECTIONS: "limits.maxConnections",
  SWITCHBOARD_MAX_CONNECTIONS_PER_IP: "limits.maxConnectionsPerIp",
  SWITCHBOARD_SESSIONS_PER_USER_PER_MINUTE: "limits.sessionsPerUserPerMinute",
  SWITCHBOARD_CALLS_PER_USER_PER_MINUTE: "limits.callsPerUserPerMinute",
  SWITCHBOARD_HEARTBEAT_INTERVAL_MS: "heartbeatIntervalMs",
  SWITCHBOARD_GC_HEAP_GROWING_PERCENT: "gcHeapGrowingPercent",
  SWITCHBOARD_RESUME_WINDOW_MS: "resumeWindowMs",
  SWITCHBOARD_DRAIN_TIMEOUT_MS: "drain.timeoutMs",
  SWITCHBOARD_CLUSTER_NAME: "cluster.name",
  SWITCHBOARD_NATS_URL: "cluster.natsUrl",
  SWITCHBOARD_REDIS_URL: "cluster.redisUrl",
  SWITCHBOARD_RING_FILE: "cluster.ringFile",
  SWITCHBOARD_RING_CONFIGMAP: "cluster.ringConfigMap",
  // The downward API's usual name first: later entries win, so SWITCHBOARD_NAMESPACE overrides it.
  POD_NAMESPACE: "cluster.namespace",
  SWITCHBOARD_NAMESPACE: "cluster.namespace",
  SWITCHBOARD_PEERJS_ENABLED: "peerjs.enabled",
  SWITCHBOARD_PEERJS_PATH: "peerjs.path",
  SWITCHBOARD_PEERJS_KEY: "peerjs.key",
  SWITCHBOARD_PEERJS_AUTH: "peerjs.auth",
  SWITCHBOARD_PEERJS_ALLOW_DISCOVERY: "peerjs.allowDiscovery",
};

/** Config paths whose environment value is a comma-separated list. */
const LIST_PATHS = new Set(["allowedOrigins", "auth.publicKeys", "turn.urls", "turn.stunUrls"]);

/**
 * Builds the configuration from an optional JSON file (`SWITCHBOARD_CONFIG_FILE`) overlaid with
 * environment variables ({@link ENV_VARS}). `SWITCHBOARD_AUTH_INSECURE_DEV=1` selects the
 * insecure development auth mode (for `make run` only; the pod logs it loudly).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const file = env["SWITCHBOARD_CONFIG_FILE"];
  let base: Record<string, unknown> = {};
  if (file) {
    try {
      base = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`invalid configuration:\n  SWITCHBOARD_CONFIG_FILE (${file}): ${(err as Error).message}`);
    }
  }
  for (const [name, path] of Object.entries(ENV_VARS)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    setPath(base, path, LIST_PATHS.has(path) ? splitList(value) : value);
  }
  if (env["SWITCHBOARD_AUTH_INSECURE_DEV"] === "1") setPath(base, "auth.mode", "insecure-dev");
  return parseConfig(base);
}

function splitList(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}
