import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWSHeaderParameters,
  type JWTPayload,
  type JWTVerifyOptions,
  type LocalJWKSet,
  type RemoteJWKSet,
} from "jose";
import { z } from "zod";
import { SignalingError } from "../errors.ts";
import { parsePublicKey } from "./keys.ts";
import { createPrincipal, principalFromClaims, type Grant, type Principal } from "./principal.ts";

/** JWS algorithms the pod can verify. `none` is not one of them, whatever the configuration. */
export const JWS_ALGORITHMS = [
  "HS256",
  "HS384",
  "HS512",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;

/** One verifiable JWS algorithm. */
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

/** Algorithms accepted when `auth.algorithms` is not set. */
export const DEFAULT_ALGORITHMS: readonly JwsAlgorithm[] = ["HS256", "RS256", "ES256", "EdDSA"];
/** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds. @default 5 */
export const DEFAULT_CLOCK_TOLERANCE_SEC = 5;
/** Time after a JWKS fetch before an unknown `kid` may trigger another fetch. @default 30000 */
export const DEFAULT_JWKS_COOLDOWN_MS = 30_000;
/** Time a fetched JWKS is used before it is fetched again. @default 600000 */
export const DEFAULT_JWKS_CACHE_MAX_AGE_MS = 600_000;
/** Timeout of one JWKS HTTP request. @default 5000 */
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
/** Longest token accepted, in characters; longer strings are refused before any parsing. @default 8192 */
export const MAX_TOKEN_LENGTH = 8192;
/** Smallest `auth.hs256Secret`, in UTF-8 bytes (RFC 7518 §3.2: at least the hash size). */
export const MIN_HS_SECRET_BYTES = 32;
/** The insecure development mode accepts these strings as user ids. */
export const DEV_USER_ID = /^[A-Za-z0-9._@-]{1,64}$/;
/** Grants of every insecure-dev principal (not `admin`). */
export const DEV_GRANTS: readonly Grant[] = ["join", "signal", "broadcast", "call"];

const HS_ALGORITHMS: ReadonlySet<string> = new Set(["HS256", "HS384", "HS512"]);
/** Most keys tried for one token without a `kid` when several keys fit its algorithm. */
const MAX_CANDIDATE_KEYS = 16;
/** Repeated operational errors (JWKS down) are logged at most this often. */
const ERROR_LOG_INTERVAL_MS = 10_000;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/**
 * Authentication settings (`config.auth`).
 *
 * - `mode`: `jwt` (default) verifies signed tokens; `insecure-dev` takes the token string as the
 *   user id and must never run in production.
 * - `algorithms`: accepted JWS `alg` values. @default ["HS256","RS256","ES256","EdDSA"]
 * - `hs256Secret`: HMAC secret (≥ 32 UTF-8 bytes); verifies the HS* algorithms only.
 * - `publicKeys`: PEM public keys (optionally prefixed `kid=<id> `) or JWK JSON strings; each
 *   verifies only the algorithms of its key type.
 * - `jwksUrl`: a remote JWKS (https, or http for in-cluster or loopback issuers); an unknown `kid`
 *   triggers a refetch at most once per `jwksCooldownMs`.
 * - `audience`, `issuer`: required in `jwt` mode; tokens must carry them.
 * - `clockToleranceSec`: allowed clock skew. @default 5
 * - `maxTokenLifetimeSec`: when set, tokens must have `exp`, at most this far after `iat` (or now).
 * - `jwksCooldownMs` @default 30000, `jwksCacheMaxAgeMs` @default 600000, `jwksTimeoutMs`
 *   @default 5000.
 *
 * In `jwt` mode at least one of `hs256Secret`, `publicKeys` and `jwksUrl` is required.
 */
export const AuthConfigSchema = z
  .object({
    mode: z.enum(["jwt", "insecure-dev"]).default("jwt"),
    algorithms: z
      .array(z.enum(JWS_ALGORITHMS))
      .min(1)
      .default(() => [...DEFAULT_ALGORITHMS]),
    hs256Secret: z
      .string()
      .refine((s) => new TextEncoder().encode(s).length >= MIN_HS_SECRET_BYTES, `must be at least ${MIN_HS_SECRET_BYTES} bytes`)
      // A public key pasted here would let anyone who has it mint tokens.
      .refine((s) => !s.includes("-----BEGIN"), "must be a random secret, not a PEM key")
      .optional(),
    publicKeys: z.array(z.string().min(1)).optional(),
    jwksUrl: z.url({ protocol: /^https?$/ }).optional(),
    audience: z.string().min(1).optional(),
    issuer: z.string().min(1).optional(),
    clockToleranceSec: int(0, 300).default(DEFAULT_CLOCK_TOLERANCE_SEC),
    maxTokenLifetimeSec: int(1).optional(),
    jwksCooldownMs: int(0).default(DEFAULT_JWKS_COOLDOWN_MS),
    jwksCacheMaxAgeMs: int(0).default(DEFAULT_JWKS_CACHE_MAX_AGE_MS),
    jwksTimeoutMs: int(1, 60_000).default(DEFAULT_JWKS_TIMEOUT_MS),
  })
  .superRefine((c, ctx) => {
    if (c.mode !== "jwt") return;
    if (c.audience === undefined) ctx.addIssue({ code: "custom", path: ["audience"], message: "required in jwt mode" });
    if (c.issuer === undefined) ctx.addIssue({ code: "custom", path: ["issuer"], message: "required in jwt mode" });
    if (c.hs256Secret === undefined && (c.publicKeys ?? []).length === 0 && c.jwksUrl === undefined) {
      ctx.addIssue({ code: "custom", path: ["hs256Secret"], message: "jwt mode needs hs256Secret, publicKeys or jwksUrl" });
    }
  });

/** Validated authentication settings. */
export type AuthConfig = z.infer<typeof AuthConfigSchema>;
/** Authentication settings as written: any subset, defaults fill the rest. */
export type AuthConfigInput = z.input<typeof AuthConfigSchema>;

/** What the authenticator needs of a logger (a pino logger fits). It never logs tokens. */
export interface AuthLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Turns tokens into {@link Principal}s. */
export interface Authenticator {
  /**
   * Verifies a token.
   *
   * Resolves with the token's principal. Rejects with a {@link SignalingError}:
   * `SIG_ERR_TOKEN_EXPIRED` when `exp` passed; `SIG_ERR_AUTH_FAILED` for anything else wrong with
   * the token (missing, malformed, bad signature, wrong `alg`/`aud`/`iss`, unknown `kid`, not yet
   * valid, bad claims); `SIG_ERR_UNAVAILABLE` when the remote JWKS cannot be fetched;
   * `SIG_ERR_DRAINING` after {@link Authenticator.close}. Messages never contain the token.
   */
  verify(token: string): Promise<Principal>;
  /** Refuses new verifications and waits for those in flight. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link createAuthenticator} that tests use. */
export interface AuthenticatorOptions {
  /** Clock for `exp`/`nbf` checks (epoch ms). @default Date.now */
  readonly now?: () => number;
}

/**
 * Creates the authenticator for `config`.
 *
 * In `jwt` mode keys are parsed up front, so a bad key fails here rather than on the first token.
 * Each key only verifies the algorithms of its type: the HMAC secret only HS*, public keys only
 * their asymmetric algorithms (jose selects keys by `alg` and `kid`), so an HS256 token "signed"
 * with a public key's bytes is refused. In `insecure-dev` mode it logs a loud warning once.
 *
 * @throws {Error} when the configuration or a key is invalid (the message names the field, never
 *   a secret).
 */
export function createAuthenticator(config: AuthConfigInput, log: AuthLogger, options: AuthenticatorOptions = {}): Authenticator & AsyncDisposable {
  const parsed = AuthConfigSchema.safeParse(config);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `auth.${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid auth configuration: ${lines.join("; ")}`);
  }
  const verifyToken = parsed.data.mode === "insecure-dev" ? createDevVerifier(log) : createJwtVerifier(parsed.data, log, options.now);

  let closed = false;
  const inFlight = new Set<Promise<unknown>>();
  const close = async (): Promise<void> => {
    closed = true;
    await Promise.allSettled([...inFlight]);
  };
  return {
    verify(token: string): Promise<Principal> {
      if (closed) return Promise.reject(new SignalingError("SIG_ERR_DRAINING", "authenticator closed"));
      const pending = verifyToken(token);
      inFlight.add(pending);
      const forget = (): void => void inFlight.delete(pending);
      pending.then(forget, forget);
      return pending;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function authFailed(message: string, cause?: object, field?: string): SignalingError {
  return new SignalingError("SIG_ERR_AUTH_FAILED", message, {
    ...(cause === undefined ? {} : { cause }),
    ...(field === undefined ? {} : { field }),
  });
}

function createDevVerifier(log: AuthLogger): (token: string) => Promise<Principal> {
  log.warn({ authMode: "insecure-dev" }, "INSECURE DEV AUTH: anyone can connect as any user; never use in production");
  return async (token) => {
    if (typeof token !== "string" || token.length === 0) throw authFailed("token missing");
    if (!DEV_USER_ID.test(token)) throw authFailed("invalid dev user id (1-64 chars of A-Z a-z 0-9 . _ @ -)");
    return createPrincipal({ userId: token, roomPatterns: ["*"], grants: DEV_GRANTS, expiresAt: null });
  };
}

/** Marks a JWKS that could not be fetched: not the token's fault, so not `AUTH_FAILED`. */
class KeySetUnavailable extends Error {
  override readonly name = "KeySetUnavailable";
}

function joseCode(err: unknown): string | undefined {
  return err instanceof errors.JOSEError ? err.code : undefined;
}

type KeyResolver = (header: JWSHeaderParameters) => Promise<CryptoKey | Uint8Array>;

function createJwtVerifier(c: AuthConfig, log: AuthLogger, now: (() => number) | undefined): (token: string) => Promise<Principal> {
  const resolveKey = createKeyResolver(c, log);
  const baseOptions: JWTVerifyOptions = {
    algorithms: [...c.algorithms],
    audience: c.audience as string,
    issuer: c.issuer as string,
    clockTolerance: c.clockToleranceSec,
    ...(c.maxTokenLifetimeSec === undefined ? {} : { requiredClaims: ["exp"] }),
  };
  const logUnexpected = throttled(log, "token verification failed unexpectedly");

  return async (token) => {
    if (typeof token !== "string" || token.length === 0) throw authFailed("token missing");
    if (token.length > MAX_TOKEN_LENGTH) throw authFailed("token too large");
    const nowMs = now?.() ?? Date.now();
    const options: JWTVerifyOptions = now === undefined ? baseOptions : { ...baseOptions, currentDate: new Date(nowMs) };
    let payload: JWTPayload;
    try {
      payload = (await verifyWithCandidates(token, resolveKey, options)).payload;
    } catch (err) {
      const mapped = toAuthError(err);
      if (mapped !== undefined) throw mapped;
      logUnexpected({ err: describe(err) });
      throw authFailed("token invalid", { name: err instanceof Error ? err.name : typeof err });
    }
    if (c.maxTokenLifetimeSec !== undefined) checkLifetime(payload, c.maxTokenLifetimeSec + c.clockToleranceSec, nowMs);
    return principalFromClaims(payload);
  };
}

/**
 * Runs jose's verification; when several configured keys fit a token without `kid`, tries each
 * (jose's documented pattern for `JWKSMultipleMatchingKeys`), up to {@link MAX_CANDIDATE_KEYS}.
 */
async function verifyWithCandidates(token: string, resolveKey: KeyResolver, options: JWTVerifyOptions): Promise<{ payload: JWTPayload }> {
  try {
    return await jwtVerify(token, resolveKey, options);
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    let tried = 0;
    for await (const key of err) {
      if (++tried > MAX_CANDIDATE_KEYS) break;
      try {
        return await jwtVerify(token, key, options);
      } catch (inner) {
        if (joseCode(inner) !== "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

function checkLifetime(payload: JWTPayload, maxSec: number, nowMs: number): void {
  const exp = payload.exp as number; // required by jose when a lifetime limit is set
  const nowSec = Math.floor(nowMs / 1000);
  const issuedSec = payload.iat ?? payload.nbf ?? nowSec;
  if (exp - issuedSec > maxSec || exp - nowSec > maxSec) throw authFailed("token lifetime too long", undefined, "exp");
}

/**
 * Builds the key lookup jose calls with each token's protected header. jose has already refused
 * any `alg` outside `c.algorithms` (so `none` never gets here).
 *
 * - HS*: the configured secret, or no key. Public keys are never returned for HS*.
 * - Asymmetric with `kid`: a configured key with that `kid`, else the remote JWKS (refetched on an
 *   unknown `kid`, rate-limited by jose), else a configured key without a `kid`.
 * - Asymmetric without `kid`: any configured key of the right type, else the remote JWKS.
 */
function createKeyResolver(c: AuthConfig, log: AuthLogger): KeyResolver {
  const secret = c.hs256Secret === undefined ? undefined : new TextEncoder().encode(c.hs256Secret);
  const jwks = (c.publicKeys ?? []).map((entry, i) => parsePublicKey(entry, i));
  const kids = new Set<string>();
  for (const jwk of jwks) {
    if (jwk.kid === undefined) continue;
    if (kids.has(jwk.kid)) throw new Error(`invalid auth configuration: auth.publicKeys: duplicate kid "${jwk.kid}"`);
    kids.add(jwk.kid);
  }
  const unkeyed = jwks.filter((k) => k.kid === undefined);
  const localAll = localSet(jwks);
  const localUnkeyed = localSet(unkeyed);
  const remote = c.jwksUrl === undefined ? undefined : createRemote(c, log);

  return async (header) => {
    const alg = header.alg as string;
    if (HS_ALGORITHMS.has(alg)) {
      if (secret === undefined) throw new errors.JWKSNoMatchingKey();
      return secret;
    }
    const kid = typeof header.kid === "string" ? header.kid : undefined;
    const lookup: JWSHeaderParameters = kid === undefined ? { alg } : { alg, kid };
    if (localAll !== undefined) {
      try {
        return await localAll(lookup);
      } catch (err) {
        if (joseCode(err) !== "ERR_JWKS_NO_MATCHING_KEY") throw err;
      }
    }
    if (remote !== undefined) {
      try {
        return await remote(lookup);
      } catch (err) {
        if (!(kid !== undefined && localUnkeyed !== undefined && joseCode(err) === "ERR_JWKS_NO_MATCHING_KEY")) throw err;
      }
    }
    if (kid !== undefined && localUnkeyed !== undefined) return localUnkeyed({ alg });
    throw new errors.JWKSNoMatchingKey();
  };
}

function localSet(keys: JWK[]): LocalJWKSet | undefined {
  return keys.length === 0 ? undefined : createLocalJWKSet({ keys });
}

/**
 * The remote JWKS, with fetch failures told apart from unknown keys: a JWKS that cannot be fetched
 * (network, timeout, non-200, not a JWKS) rejects with {@link KeySetUnavailable} and is logged,
 * at most once per {@link ERROR_LOG_INTERVAL_MS}.
 */
function createRemote(c: AuthConfig, log: AuthLogger): KeyResolver {
  const url = new URL(c.jwksUrl as string);
  if (url.protocol !== "https:" && !isLoopbackOrCluster(url.hostname)) {
    log.warn({ jwksUrl: url.href }, "auth.jwksUrl is not https: keys fetched over plain http can be tampered with");
  }
  const remote: RemoteJWKSet = createRemoteJWKSet(url, {
    cooldownDuration: c.jwksCooldownMs,
    cacheMaxAge: c.jwksCacheMaxAgeMs,
    timeoutDuration: c.jwksTimeoutMs,
  });
  const logFailure = throttled(log, "JWKS fetch failed; tokens cannot be verified until it succeeds");
  return async (header) => {
    try {
      return await remote(header);
    } catch (err) {
      const code = joseCode(err);
      if (code === "ERR_JWKS_NO_MATCHING_KEY" || code === "ERR_JWKS_MULTIPLE_MATCHING_KEYS") throw err;
      logFailure({ jwksUrl: url.href, err: describe(err) });
      throw new KeySetUnavailable("JWKS unavailable", { cause: describe(err) });
    }
  };
}

/** Hosts where plain http is expected (loopback, Kubernetes service names). */
function isLoopbackOrCluster(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || hostname.startsWith("127.") || hostname.endsWith(".svc") || hostname.includes(".svc.");
}

/**
 * Maps a verification failure to the error the client gets, or undefined when it is not a known
 * failure. The message is a short fixed phrase; the cause keeps only jose's code and the claim
 * name, so nothing derived from the token reaches the client or the logs.
 */
function toAuthError(err: unknown): SignalingError | undefined {
  if (err instanceof KeySetUnavailable) return new SignalingError("SIG_ERR_UNAVAILABLE", "token signing keys unavailable", { cause: err.cause });
  if (!(err instanceof errors.JOSEError)) return undefined;
  const claim = (err as { claim?: unknown }).claim;
  const cause = { jose: err.code, ...(typeof claim === "string" ? { claim } : {}) };
  switch (err.code) {
    case "ERR_JWT_EXPIRED":
      return new SignalingError("SIG_ERR_TOKEN_EXPIRED", "token expired", { cause, field: "exp" });
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      switch (claim) {
        case "aud":
          return authFailed("token audience mismatch", cause, "aud");
        case "iss":
          return authFailed("token issuer mismatch", cause, "iss");
        case "nbf":
          return authFailed("token not yet valid", cause, "nbf");
        case "exp":
          return authFailed("token has no valid expiry", cause, "exp");
        default:
          return authFailed("token claims invalid", cause, typeof claim === "string" ? claim : undefined);
      }
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return authFailed("token signature invalid", cause);
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return authFailed("token algorithm not allowed", cause);
    case "ERR_JOSE_NOT_SUPPORTED":
      // The alg was already allowed, so this is an unrecognised `crit` extension or the like.
      return authFailed("token header not supported", cause);
    case "ERR_JWKS_NO_MATCHING_KEY":
      return authFailed("token signing key unknown", cause);
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return authFailed("token signing key ambiguous", cause);
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return authFailed("token malformed", cause);
    default:
      return authFailed("token invalid", cause);
  }
}

/**
 * A loggable summary of an error without its message: messages of parse errors can quote the
 * input (V8's JSON errors do), and the input here is the token.
 */
function describe(err: unknown): { name: string; code?: string; stack?: string } {
  if (!(err instanceof Error)) return { name: typeof err };
  const code = (err as { code?: unknown }).code;
  // Only the frames: a multi-line message would otherwise continue past the first line.
  const frames = err.stack
    ?.split("\n")
    .filter((line) => line.startsWith("    at "))
    .join("\n");
  return { name: err.name, ...(typeof code === "string" ? { code } : {}), ...(frames ? { stack: frames } : {}) };
}

/** An error logger that writes one line per interval and counts what it left out. */
function throttled(log: AuthLogger, msg: string): (obj: object) => void {
  let lastMs = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (obj) => {
    const nowMs = Date.now();
    if (nowMs - lastMs < ERROR_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    lastMs = nowMs;
    log.error({ ...obj, suppressed }, msg);
    suppressed = 0;
  };
}
