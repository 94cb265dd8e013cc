/**
 * Configuration: defaults, one line per bad field, and loading from the environment and an
 * optional JSON file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PEERS_PER_ROOM,
  DEFAULT_MAX_ROOMS_PER_SESSION,
  DEFAULT_RATE_BURST,
  DEFAULT_RATE_PER_SECOND,
  DEFAULT_RESUME_WINDOW_MS,
} from "@switchboard/protocol";
import { ConfigError, ENV_VARS, loadConfig, parseConfig } from "./config.ts";

const DEV = { auth: { mode: "insecure-dev" } } as const;
const SECRET = "config-test-secret-0123456789-abcdefgh";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected a ConfigError");
}

/** A temporary JSON config file, removed after the test. */
function configFile(t: TestContext, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "config.json");
  writeFileSync(path, content);
  return path;
}

describe("parseConfig", () => {
  test("fills every default (design §8)", () => {
    const c = parseConfig(DEV);
    assert.equal(c.port, 8080);
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.logLevel, "info");
    assert.equal(c.podName, "switchboard-0");
    assert.equal(c.adminToken, undefined);
    assert.deepEqual(c.allowedOrigins, []);
    assert.equal(c.limits.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES);
    assert.equal(c.limits.maxMessageBytes, 64 * 1024);
    assert.equal(c.limits.maxOutboundBytes, 1024 * 1024);
    assert.equal(c.limits.ratePerSecond, DEFAULT_RATE_PER_SECOND);
    assert.equal(c.limits.rateBurst, DEFAULT_RATE_BURST);
    assert.equal(c.limits.maxPeersPerRoom, DEFAULT_MAX_PEERS_PER_ROOM);
    assert.equal(c.limits.maxRoomsPerSession, DEFAULT_MAX_ROOMS_PER_SESSION);
    assert.deepEqual([c.limits.maxPeersPerRoom, c.limits.maxRoomsPerSession], [100, 16]);
    assert.equal(c.heartbeatIntervalMs, DEFAULT_HEARTBEAT_INTERVAL_MS);
    assert.equal(c.heartbeatIntervalMs, 25_000);
    assert.equal(c.heartbeatMissedLimit, 2);
    assert.equal(c.gcHeapGrowingPercent, 300);
    assert.equal(c.resumeWindowMs, DEFAULT_RESUME_WINDOW_MS);
    assert.equal(c.resumeWindowMs, 30_000);
    assert.equal(c.calls.ringTimeoutMs, 60_000);
    assert.equal(c.calls.confirmTimeoutMs, 32_000);
    assert.deepEqual(c.drain, { timeoutMs: 30_000, spreadMs: 10_000, batchSize: 500 });
    assert.equal(c.auth.mode, "insecure-dev");
  });

  test("partial nested objects keep the other defaults", () => {
    const c = parseConfig({ ...DEV, limits: { maxPeersPerRoom: 3 }, drain: { batchSize: 7 } });
    assert.equal(c.limits.maxPeersPerRoom, 3);
    assert.equal(c.limits.maxRoomsPerSession, 16);
    assert.deepEqual(c.drain, { timeoutMs: 30_000, spreadMs: 10_000, batchSize: 7 });
  });

  test("numbers given as strings are coerced", () => {
    const c = parseConfig({ ...DEV, port: "9000", limits: { maxMessageBytes: "2048" } });
    assert.equal(c.port, 9000);
    assert.equal(c.limits.maxMessageBytes, 2048);
  });

  test("an invalid config names every bad field, one line each", () => {
    const err = configError(() => parseConfig({ ...DEV, port: "abc", limits: { maxMessageBytes: -1 }, logLevel: "loud", adminToken: "short" }));
    const lines = err.message.split("\n");
    assert.equal(lines[0], "invalid configuration:");
    const fields = lines.slice(1).map((l) => l.trim().split(":")[0]);
    assert.deepEqual(fields.sort(), ["adminToken", "limits.maxMessageBytes", "logLevel", "port"]);
    assert.equal(lines.length, 5);
  });

  test("jwt mode (the default) requires audience, issuer and a key", () => {
    const err = configError(() => parseConfig({}));
    assert.match(err.message, /auth\.audience/);
    assert.match(err.message, /auth\.issuer/);
    assert.match(err.message, /auth\.hs256Secret/);
    const ok = parseConfig({ auth: { audience: "a", issuer: "i", hs256Secret: SECRET } });
    assert.equal(ok.auth.mode, "jwt");
  });

  test("limits below their floors are refused", () => {
    const err = configError(() => parseConfig({ ...DEV, limits: { maxMessageBytes: 10, rateBurst: 0, handshakeTimeoutMs: 5 }, heartbeatMissedLimit: 0 }));
    for (const field of ["limits.maxMessageBytes", "limits.rateBurst", "limits.handshakeTimeoutMs", "heartbeatMissedLimit"]) {
      assert.match(err.message, new RegExp(`^  ${field.replace(".", "\\.")}: `, "m"));
    }
  });
});

describe("loadConfig", () => {
  test("reads the environment variables of ENV_VARS", () => {
    const c = loadConfig({
      SWITCHBOARD_AUTH_INSECURE_DEV: "1",
      SWITCHBOARD_PORT: "9123",
      SWITCHBOARD_HOST: "0.0.0.0",
      POD_NAME: "pod-7",
      SWITCHBOARD_LOG_LEVEL: "warn",
      SWITCHBOARD_ADMIN_TOKEN: "a-long-enough-admin-token",
      SWITCHBOARD_MAX_MESSAGE_BYTES: "4096",
      SWITCHBOARD_MAX_CONNECTIONS_PER_IP: "3",
      SWITCHBOARD_HEARTBEAT_INTERVAL_MS: "1000",
      SWITCHBOARD_GC_HEAP_GROWING_PERCENT: "0",
      SWITCHBOARD_RESUME_WINDOW_MS: "500",
      SWITCHBOARD_DRAIN_TIMEOUT_MS: "1234",
      SWITCHBOARD_TURN_SECRET: "turn-secret-0123456789",
      SWITCHBOARD_TURN_TTL_SEC: "600",
    });
    assert.equal(c.port, 9123);
    assert.equal(c.host, "0.0.0.0");
    assert.equal(c.podName, "pod-7");
    assert.equal(c.logLevel, "warn");
    assert.equal(c.adminToken, "a-long-enough-admin-token");
    assert.equal(c.limits.maxMessageBytes, 4096);
    assert.equal(c.limits.maxConnectionsPerIp, 3);
    assert.equal(c.heartbeatIntervalMs, 1000);
    assert.equal(c.gcHeapGrowingPercent, 0);
    assert.equal(c.resumeWindowMs, 500);
    assert.equal(c.drain.timeoutMs, 1234);
    assert.equal(c.turn.secret, "turn-secret-0123456789");
    assert.equal(c.turn.ttlSec, 600);
    assert.equal(c.auth.mode, "insecure-dev");
  });

  test("lists split on commas, trimmed, empty entries dropped", () => {
    const c = loadConfig({
      SWITCHBOARD_AUTH_INSECURE_DEV: "1",
      SWITCHBOARD_ALLOWED_ORIGINS: "https://a.example, https://b.example,,",
      SWITCHBOARD_TURN_SECRET: "turn-secret-0123456789",
      SWITCHBOARD_TURN_URLS: "turn:t1.example:3478?transport=udp,turns:t2.example:5349",
      SWITCHBOARD_STUN_URLS: " stun:s.example:3478 ",
    });
    assert.deepEqual(c.allowedOrigins, ["https://a.example", "https://b.example"]);
    assert.deepEqual(c.turn.urls, ["turn:t1.example:3478?transport=udp", "turns:t2.example:5349"]);
    assert.deepEqual(c.turn.stunUrls, ["stun:s.example:3478"]);
  });

  test("jwt settings come from the environment", () => {
    const c = loadConfig({
      SWITCHBOARD_JWT_HS256_SECRET: SECRET,
      SWITCHBOARD_JWT_AUDIENCE: "aud",
      SWITCHBOARD_JWT_ISSUER: "https://iss",
    });
    assert.equal(c.auth.mode, "jwt");
    assert.equal(c.auth.hs256Secret, SECRET);
    assert.equal(c.auth.audience, "aud");
    assert.equal(c.auth.issuer, "https://iss");
  });

  test("a JSON file is the base; environment variables override it; empty values are ignored", (t) => {
    const path = configFile(
      t,
      JSON.stringify({ auth: { mode: "insecure-dev" }, port: 7000, podName: "from-file", limits: { maxPeersPerRoom: 5, maxMessageBytes: 1000 } }),
    );
    const c = loadConfig({ SWITCHBOARD_CONFIG_FILE: path, SWITCHBOARD_PORT: "7001", SWITCHBOARD_POD_NAME: "", SWITCHBOARD_MAX_MESSAGE_BYTES: "2000" });
    assert.equal(c.port, 7001);
    assert.equal(c.podName, "from-file");
    assert.equal(c.limits.maxPeersPerRoom, 5, "file values the environment does not touch stay");
    assert.equal(c.limits.maxMessageBytes, 2000);
  });

  test("an unreadable or invalid file is a ConfigError naming the variable", (t) => {
    const broken = configFile(t, "{ not json");
    assert.match(configError(() => loadConfig({ SWITCHBOARD_CONFIG_FILE: broken })).message, /SWITCHBOARD_CONFIG_FILE/);
    assert.match(configError(() => loadConfig({ SWITCHBOARD_CONFIG_FILE: join(tmpdir(), "no-such-switchboard.json") })).message, /SWITCHBOARD_CONFIG_FILE/);
  });

  test("a bad environment value is reported under its config path", () => {
    const err = configError(() => loadConfig({ SWITCHBOARD_AUTH_INSECURE_DEV: "1", SWITCHBOARD_PORT: "abc", SWITCHBOARD_MAX_MESSAGE_BYTES: "-1" }));
    assert.match(err.message, /^ {2}port: /m);
    assert.match(err.message, /^ {2}limits\.maxMessageBytes: /m);
  });

  test("the ring ConfigMap and its namespace: SWITCHBOARD_NAMESPACE wins over POD_NAMESPACE; names are checked", () => {
    const base = { SWITCHBOARD_AUTH_INSECURE_DEV: "1", SWITCHBOARD_RING_CONFIGMAP: "sb-ring" };
    const c = loadConfig({ ...base, POD_NAMESPACE: "from-pod", SWITCHBOARD_NAMESPACE: "switchboard" });
    assert.equal(c.cluster.ringConfigMap, "sb-ring");
    assert.equal(c.cluster.namespace, "switchboard");
    assert.equal(loadConfig({ ...base, POD_NAMESPACE: "from-pod" }).cluster.namespace, "from-pod");
    assert.equal(loadConfig(base).cluster.namespace, undefined);
    assert.equal(loadConfig({ SWITCHBOARD_AUTH_INSECURE_DEV: "1" }).cluster.ringConfigMap, undefined);
    const err = configError(() => loadConfig({ ...base, SWITCHBOARD_RING_CONFIGMAP: "Ring_Map", SWITCHBOARD_NAMESPACE: "-x" }));
    assert.match(err.message, /^ {2}cluster\.ringConfigMap: /m);
    assert.match(err.message, /^ {2}cluster\.namespace: /m);
  });

  test("every ENV_VARS entry maps to a real config path", () => {
    const base = parseConfig(DEV) as unknown as Record<string, unknown>;
    for (const [name, path] of Object.entries(ENV_VARS)) {
      const keys = path.split(".");
      let node: unknown = base;
      for (const key of keys.slice(0, -1)) node = (node as Record<string, unknown>)[key];
      assert.ok(node !== null && typeof node === "object", `${name} → ${path}: parent exists`);
      // The leaf is either set by default or an optional field the schema knows.
      const leaf = keys[keys.length - 1] as string;
      const known = leaf in (node as object) || ["adminToken", "hs256Secret", "publicKeys", "jwksUrl", "audience", "issuer", "secret", "name", "ringFile", "ringConfigMap", "namespace"].includes(leaf);
      assert.ok(known, `${name} → ${path}`);
    }
  });
});
