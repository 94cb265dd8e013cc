/**
 * Authentication and authorization of the pod: token verification (jose), principals with their
 * room patterns and grants, the token issuer used by tests/demo/benchmarks, and ephemeral TURN
 * credentials.
 */
export {
  GRANTS,
  GrantSchema,
  MAX_ROOM_PATTERNS,
  MAX_ROOM_PATTERN_LENGTH,
  TokenClaimsSchema,
  assertGrant,
  assertRoomAccess,
  createPrincipal,
  hasGrant,
  matchesRoomPattern,
  mayAccessRoom,
  principalFromClaims,
} from "./principal.ts";
export type { Grant, Principal, TokenClaims } from "./principal.ts";
export {
  AuthConfigSchema,
  DEFAULT_ALGORITHMS,
  DEFAULT_CLOCK_TOLERANCE_SEC,
  DEFAULT_JWKS_CACHE_MAX_AGE_MS,
  DEFAULT_JWKS_COOLDOWN_MS,
  DEFAULT_JWKS_TIMEOUT_MS,
  DEV_GRANTS,
  DEV_USER_ID,
  JWS_ALGORITHMS,
  MAX_TOKEN_LENGTH,
  MIN_HS_SECRET_BYTES,
  createAuthenticator,
} from "./authenticator.ts";
export type { AuthConfig, AuthConfigInput, AuthLogger, Authenticator, AuthenticatorOptions, JwsAlgorithm } from "./authenticator.ts";
export { DEFAULT_TOKEN_TTL_SEC, issueToken } from "./token-issuer.ts";
export type { IssueTokenOptions } from "./token-issuer.ts";
export { DEFAULT_TURN_TTL_SEC, TurnConfigSchema, mintTurnCredentials } from "./turn-credentials.ts";
export type { MintTurnCredentialsOptions, TurnConfig, TurnCredentials } from "./turn-credentials.ts";
