import { createHmac } from "node:crypto";
import type { IceServer } from "@switchboard/protocol";
import { z } from "zod";

/** Lifetime of TURN credentials, in seconds. @default 3600 */
export const DEFAULT_TURN_TTL_SEC = 3600;

/**
 * TURN settings (`config.turn`), for the TURN REST API scheme (coturn `use-auth-secret`).
 *
 * - `secret`: the secret shared with the TURN servers (≥ 16 characters); required when `urls` is
 *   not empty.
 * - `urls`: `turn:`/`turns:` URLs that get credentials. @default []
 * - `ttlSec`: credential lifetime, 60 s to 1 day. @default 3600
 * - `stunUrls`: `stun:`/`stuns:` URLs passed to clients without credentials. @default []
 */
export const TurnConfigSchema = z
  .object({
    secret: z.string().min(16).optional(),
    urls: z.array(z.string().regex(/^turns?:\S+$/, "must be a turn: or turns: URL")).default([]),
    ttlSec: z.coerce.number().int().min(60).max(86_400).default(DEFAULT_TURN_TTL_SEC),
    stunUrls: z.array(z.string().regex(/^stuns?:\S+$/, "must be a stun: or stuns: URL")).default([]),
  })
  .superRefine((c, ctx) => {
    if (c.urls.length > 0 && c.secret === undefined) {
      ctx.addIssue({ code: "custom", path: ["secret"], message: "required when turn.urls is set" });
    }
  });

/** Validated TURN settings. */
export type TurnConfig = z.infer<typeof TurnConfigSchema>;

/** Input of {@link mintTurnCredentials}. */
export interface MintTurnCredentialsOptions {
  /** The secret shared with the TURN servers. */
  readonly secret: string;
  readonly userId: string;
  /** Credential lifetime, in seconds. */
  readonly ttlSec: number;
  /** TURN URLs that get the credentials. */
  readonly urls: readonly string[];
  /** STUN URLs, passed through without credentials (first in the list). @default [] */
  readonly stunUrls?: readonly string[];
  /** Current time (epoch ms). */
  readonly now: number;
}

/** ICE servers for one user and how long their credentials last. */
export interface TurnCredentials {
  readonly iceServers: IceServer[];
  readonly ttlSec: number;
}

/**
 * Mints ephemeral TURN credentials (TURN REST API, draft-uberti-behave-turn-rest-00):
 * `username = "<expiry unix seconds>:<userId>"` and `credential = base64(HMAC-SHA1(secret,
 * username))`. The TURN server recomputes the HMAC and refuses the username after its expiry, so
 * the pod needs no state and the secret never leaves it.
 *
 * Returns the STUN entry (when `stunUrls` is not empty) followed by the TURN entry (when `urls`
 * is not empty).
 */
export function mintTurnCredentials(opts: MintTurnCredentialsOptions): TurnCredentials {
  const iceServers: IceServer[] = [];
  const stunUrls = opts.stunUrls ?? [];
  if (stunUrls.length > 0) iceServers.push({ urls: [...stunUrls] });
  if (opts.urls.length > 0) {
    const expirySec = Math.floor(opts.now / 1000) + opts.ttlSec;
    const username = `${expirySec}:${opts.userId}`;
    const credential = createHmac("sha1", opts.secret).update(username).digest("base64");
    iceServers.push({ urls: [...opts.urls], username, credential });
  }
  return { iceServers, ttlSec: opts.ttlSec };
}
