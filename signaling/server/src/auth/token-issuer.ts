import { importPKCS8, SignJWT, type CryptoKey, type JWK, type KeyObject } from "jose";
import type { JwsAlgorithm } from "./authenticator.ts";
import type { Grant } from "./principal.ts";

/** Lifetime of issued tokens when `expiresInSec` is not given, in seconds. @default 3600 */
export const DEFAULT_TOKEN_TTL_SEC = 3600;

/** Options of {@link issueToken}. */
export interface IssueTokenOptions {
  /**
   * Signing key. For HS* a secret (a string is used as its UTF-8 bytes). For the asymmetric
   * algorithms a PKCS#8 PEM private key, or a key object / JWK.
   */
  readonly key: string | Uint8Array | CryptoKey | KeyObject | JWK;
  readonly alg: JwsAlgorithm;
  /** Put into the protected header. */
  readonly kid?: string;
  readonly sub: string;
  /** Room glob patterns. @default [] (the claim is omitted) */
  readonly rooms?: readonly string[] | undefined;
  /** @default [] (the claim is omitted) */
  readonly grants?: readonly Grant[] | undefined;
  readonly aud: string | readonly string[];
  readonly iss: string;
  /** Seconds from now until `exp`; negative gives an expired token; null omits `exp`. @default 3600 */
  readonly expiresInSec?: number | null;
  /** Seconds from now until `nbf`; omitted when not given. */
  readonly notBeforeInSec?: number;
  readonly jti?: string;
  /** Issue time (epoch ms), for `iat`, `exp` and `nbf`. @default Date.now() */
  readonly nowMs?: number;
  /** Extra claims, applied last: they may override (or, set to undefined, remove) any claim above. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/**
 * Signs a Switchboard token (compact JWS) for tests, the demo and benchmarks. Production tokens
 * come from the application's own issuer; this is the reference for their claims.
 *
 * Resolves with the token string; rejects when the key does not fit `alg`.
 */
export async function issueToken(opts: IssueTokenOptions): Promise<string> {
  const nowSec = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  const ttlSec = opts.expiresInSec === undefined ? DEFAULT_TOKEN_TTL_SEC : opts.expiresInSec;
  const payload: Record<string, unknown> = {
    sub: opts.sub,
    aud: typeof opts.aud === "string" ? opts.aud : [...opts.aud],
    iss: opts.iss,
    iat: nowSec,
    ...(ttlSec === null ? {} : { exp: nowSec + ttlSec }),
    ...(opts.notBeforeInSec === undefined ? {} : { nbf: nowSec + opts.notBeforeInSec }),
    ...(opts.rooms === undefined ? {} : { rooms: [...opts.rooms] }),
    ...(opts.grants === undefined ? {} : { grants: [...opts.grants] }),
    ...(opts.jti === undefined ? {} : { jti: opts.jti }),
    ...opts.claims,
  };
  const header = { alg: opts.alg, typ: "JWT", ...(opts.kid === undefined ? {} : { kid: opts.kid }) };
  return new SignJWT(payload).setProtectedHeader(header).sign(await signingKey(opts.key, opts.alg));
}

async function signingKey(key: IssueTokenOptions["key"], alg: JwsAlgorithm): Promise<CryptoKey | KeyObject | JWK | Uint8Array> {
  if (typeof key !== "string") return key;
  return alg.startsWith("HS") ? new TextEncoder().encode(key) : importPKCS8(key, alg);
}
