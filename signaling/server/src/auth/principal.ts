import { z } from "zod";
import { SignalingError } from "../errors.ts";

/** Every grant a Switchboard token can carry, in a stable order. */
export const GRANTS = ["join", "signal", "broadcast", "call", "admin"] as const;

/**
 * One permission carried by a token: `join` rooms, `signal` peers (offer/answer/ICE), `broadcast`
 * to a room, place and answer `call`s, and `admin` actions. Grants are independent: `admin` does
 * not imply the others.
 */
export type Grant = (typeof GRANTS)[number];

/** Schema of one grant string; unknown strings fail. */
export const GrantSchema = z.enum(GRANTS);

/**
 * Who a verified token speaks for, and what it allows. Built only by the authenticator (or
 * {@link createPrincipal} in tests and tools); never from unverified input.
 */
export interface Principal {
  /** The token's `sub`. */
  readonly userId: string;
  /** Glob patterns of the rooms the token may join (see {@link matchesRoomPattern}). */
  readonly roomPatterns: readonly string[];
  readonly grants: ReadonlySet<Grant>;
  /** Token expiry (epoch ms), or null for a token without `exp`. */
  readonly expiresAt: number | null;
  /** The token's `jti`, when it has one. */
  readonly tokenId?: string;
}

/** Largest number of room patterns a token may carry. @default 256 */
export const MAX_ROOM_PATTERNS = 256;
/** Longest room pattern, in UTF-16 code units. @default 256 */
export const MAX_ROOM_PATTERN_LENGTH = 256;

/**
 * The Switchboard claims of a token, checked after the signature and the registered claims
 * (`aud`, `iss`, `exp`, `nbf`) were verified by jose. Other claims pass through untouched.
 *
 * - `sub`: the user id, 1–256 characters (required).
 * - `rooms`: room glob patterns; absent means no rooms.
 * - `grants`: {@link Grant}s; absent means none; an unknown grant fails the whole token.
 * - `jti`: optional token id.
 */
export const TokenClaimsSchema = z.looseObject({
  sub: z.string().min(1).max(256),
  rooms: z.array(z.string().min(1).max(MAX_ROOM_PATTERN_LENGTH)).max(MAX_ROOM_PATTERNS).optional(),
  grants: z.array(GrantSchema).max(GRANTS.length * 4).optional(),
  jti: z.string().min(1).max(256).optional(),
  exp: z.number().finite().optional(),
  nbf: z.number().finite().optional(),
  iat: z.number().finite().optional(),
});

/** Switchboard token claims after validation. */
export type TokenClaims = z.infer<typeof TokenClaimsSchema>;

/**
 * Builds a frozen {@link Principal}. Used by the authenticator and by tests or tools that need a
 * principal without a token.
 */
export function createPrincipal(input: {
  userId: string;
  roomPatterns?: readonly string[];
  grants?: Iterable<Grant>;
  expiresAt?: number | null;
  tokenId?: string | undefined;
}): Principal {
  const principal: Principal = {
    userId: input.userId,
    roomPatterns: Object.freeze([...(input.roomPatterns ?? [])]),
    grants: new Set(input.grants ?? []),
    expiresAt: input.expiresAt ?? null,
    ...(input.tokenId === undefined ? {} : { tokenId: input.tokenId }),
  };
  return Object.freeze(principal);
}

/**
 * Validates verified claims into a {@link Principal}.
 *
 * @throws {SignalingError} `SIG_ERR_AUTH_FAILED` with `field` naming the first bad claim. The
 *   message names the claim only, never its value (values are part of the token).
 */
export function principalFromClaims(claims: unknown): Principal {
  const parsed = TokenClaimsSchema.safeParse(claims);
  if (!parsed.success) {
    const field = parsed.error.issues[0]?.path.join(".") ?? "";
    return throwClaims(field);
  }
  const c = parsed.data;
  return createPrincipal({
    userId: c.sub,
    roomPatterns: c.rooms ?? [],
    grants: c.grants ?? [],
    expiresAt: c.exp === undefined ? null : c.exp * 1000,
    tokenId: c.jti,
  });
}

function throwClaims(field: string): never {
  throw new SignalingError("SIG_ERR_AUTH_FAILED", field ? `token claims invalid: ${field}` : "token claims invalid", {
    field,
  });
}

/**
 * A compiled room pattern: the literal pieces between `*`s. Matching walks the room once per
 * piece with `indexOf`, so it is O(pattern × room) at worst and never backtracks exponentially;
 * no regular expression is built, so pattern characters are always literal.
 */
interface CompiledPattern {
  readonly exact: boolean;
  readonly pieces: readonly string[];
}

/** Compiled patterns, bounded so hostile tokens cannot grow it without limit. */
const compiled = new Map<string, CompiledPattern>();
const MAX_COMPILED = 4096;

function compile(pattern: string): CompiledPattern {
  let c = compiled.get(pattern);
  if (c === undefined) {
    const pieces = pattern.split("*");
    c = { exact: pieces.length === 1, pieces };
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(pattern, c);
  }
  return c;
}

/**
 * Whether `room` matches the glob `pattern`: `*` matches any run of characters (including none);
 * every other character, regex metacharacters included, matches only itself.
 *
 * @example matchesRoomPattern("team-*", "team-red") // true
 */
export function matchesRoomPattern(pattern: string, room: string): boolean {
  const { exact, pieces } = compile(pattern);
  if (exact) return pattern === room;
  const first = pieces[0] as string;
  const last = pieces[pieces.length - 1] as string;
  // The prefix and suffix are anchored and must not overlap.
  if (room.length < first.length + last.length) return false;
  if (!room.startsWith(first) || !room.endsWith(last)) return false;
  let at = first.length;
  const end = room.length - last.length;
  // Middle pieces float: leftmost placement is optimal, since a `*` follows each of them.
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i] as string;
    if (piece === "") continue;
    const found = room.indexOf(piece, at);
    if (found === -1 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

/** Whether the principal's room patterns allow `room`. */
export function mayAccessRoom(p: Principal, room: string): boolean {
  return p.roomPatterns.some((pattern) => matchesRoomPattern(pattern, room));
}

/** Whether the principal holds grant `g`. */
export function hasGrant(p: Principal, g: Grant): boolean {
  return p.grants.has(g);
}

/**
 * Throws unless the principal holds `g`.
 *
 * @throws {SignalingError} `SIG_ERR_FORBIDDEN`.
 */
export function assertGrant(p: Principal, g: Grant): void {
  if (!hasGrant(p, g)) throw new SignalingError("SIG_ERR_FORBIDDEN", `token does not grant "${g}"`);
}

/**
 * Throws unless one of the principal's room patterns matches `room` (grants are checked
 * separately with {@link assertGrant}).
 *
 * @throws {SignalingError} `SIG_ERR_FORBIDDEN` with `field: "room"`.
 */
export function assertRoomAccess(p: Principal, room: string): void {
  if (!mayAccessRoom(p, room)) {
    throw new SignalingError("SIG_ERR_FORBIDDEN", "token does not allow this room", { field: "room" });
  }
}
