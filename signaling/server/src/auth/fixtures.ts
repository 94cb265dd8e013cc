/**
 * Test fixtures of the auth module: key pairs, a recording logger, a local JWKS server and the
 * "no token in the error" assertion. Used by the `*.test.ts` files only; not exported from the
 * module's index.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestContext } from "node:test";
import type { JWK } from "jose";
import type { ErrorCode } from "@switchboard/protocol";
import { isSignalingError, type SignalingError } from "../errors.ts";
import type { AuthLogger } from "./authenticator.ts";

/** A generated key pair in the forms the tests need. */
export interface TestKeyPair {
  /** PKCS#8 PEM, for {@link issueToken}. */
  readonly privatePem: string;
  /** SPKI PEM, for `auth.publicKeys`. */
  readonly publicPem: string;
  /** Public JWK (no `kid`). */
  readonly publicJwk: JWK;
  readonly privateKey: KeyObject;
}

/** Generates a key pair: `rsa` (2048 bits), `ec` (P-256) or `ed25519`. */
export function keyPair(type: "rsa" | "ec" | "ed25519", options: { modulusLength?: number; namedCurve?: string } = {}): TestKeyPair {
  const { publicKey, privateKey } =
    type === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: options.modulusLength ?? 2048 })
      : type === "ec"
        ? generateKeyPairSync("ec", { namedCurve: options.namedCurve ?? "P-256" })
        : generateKeyPairSync("ed25519");
  return {
    privatePem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    publicJwk: publicKey.export({ format: "jwk" }) as JWK,
    privateKey,
  };
}

/** A 32-byte HMAC secret for tests. */
export const HS_SECRET = "test-secret-0123456789-abcdefghijklmnop";
export const AUDIENCE = "switchboard";
export const ISSUER = "https://issuer.test";

/** One recorded log call. */
export interface LogEntry {
  readonly level: "warn" | "error";
  readonly obj: object;
  readonly msg: string;
}

/** A logger that records its calls. */
export function recordingLogger(): AuthLogger & { readonly entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    warn: (obj, msg) => void entries.push({ level: "warn", obj, msg }),
    error: (obj, msg) => void entries.push({ level: "error", obj, msg }),
  };
}

/** Splits a token into the parts that must never be echoed: the whole, and each long segment. */
function secretParts(token: string): string[] {
  return [token, ...token.split(".")].filter((part) => part.length >= 8);
}

/**
 * Asserts that `err` is a {@link SignalingError} with `code` and that neither its message, its
 * cause, nor anything logged contains the token or one of its segments.
 */
export function assertRejection(err: unknown, code: ErrorCode, token: string, log?: { entries: readonly LogEntry[] }): SignalingError {
  assert.ok(isSignalingError(err), `expected a SignalingError, got ${String(err)}`);
  assert.equal(err.code, code, `code (message: ${err.message})`);
  const exposed = [err.message, JSON.stringify(err.cause ?? null), String(err.field ?? ""), ...(log?.entries ?? []).map((e) => `${e.msg} ${JSON.stringify(e.obj)}`)];
  for (const part of secretParts(token)) {
    for (const text of exposed) assert.ok(!text.includes(part), `token material leaked into ${JSON.stringify(text.slice(0, 200))}`);
  }
  return err;
}

/** Runs `promise` expecting a rejection, then checks it with {@link assertRejection}. */
export async function expectRejection(
  promise: Promise<unknown>,
  code: ErrorCode,
  token: string,
  log?: { entries: readonly LogEntry[] },
): Promise<SignalingError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, "expected the promise to reject");
  return assertRejection(caught, code, token, log);
}

/** base64url of a UTF-8 string or JSON value. */
export function b64url(value: unknown): string {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}

/** A JWKS served by a real HTTP server on 127.0.0.1, port 0. */
export interface JwksServer {
  readonly url: string;
  /** Replaces the served keys (key rotation). */
  setKeys(keys: readonly JWK[]): void;
  /** Serves `body` verbatim instead of a JWKS (a misbehaving issuer). */
  setBody(body: string): void;
  /** Requests served so far. */
  requests(): number;
  /** Stops the server (idempotent); later fetches fail with connection refused. */
  close(): Promise<void>;
}

/**
 * Starts a JWKS server on `port` (default: any free port); it is closed in `t.after`. With `hang`,
 * it accepts requests and never answers (for timeouts).
 */
export async function startJwksServer(t: TestContext, keys: readonly JWK[], options: { hang?: boolean; port?: number } = {}): Promise<JwksServer> {
  let body = JSON.stringify({ keys });
  let count = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    count++;
    if (options.hang) return;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  t.after(close);
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    setKeys: (next) => void (body = JSON.stringify({ keys: next })),
    setBody: (next) => void (body = next),
    requests: () => count,
    close,
  };
}
