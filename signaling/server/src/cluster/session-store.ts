import { createHash } from "node:crypto";
import type { Principal } from "../auth/index.ts";

/**
 * Where a cluster keeps every session, so that any pod can resume it (docs/cluster.md, "Resume on
 * any pod"): the session's identity, its edge and epoch, the rooms and calls it is in, and its log —
 * every sequenced frame not yet acknowledged by the client. Redis in cluster mode; memory in one
 * process. Writes carry the writer's epoch: once another pod claimed the session (epoch + 1), the old
 * edge's writes are refused, which fences it without a lock.
 */

/** What a pod needs to rebuild a session it does not hold. */
export interface StoredIdentity {
  readonly sessionId: string;
  readonly peerId: string;
  readonly userId: string;
  /** SHA-256 of the resume token (the token itself is never stored). */
  readonly resumeTokenHash: string;
  readonly device?: string | undefined;
  readonly face: "switchboard" | "peerjs";
  readonly principal: StoredPrincipal;
}

/** A principal in JSON form. */
export interface StoredPrincipal {
  readonly userId: string;
  readonly roomPatterns: readonly string[];
  readonly grants: readonly string[];
  readonly expiresAt: number | null;
  readonly tokenId?: string | undefined;
}

/** One write of an edge: frames appended in seq order, and the session's memberships when changed. */
export interface LogAppend {
  readonly sessionId: string;
  readonly epoch: number;
  /** Frames with consecutive seqs, continuing the log. */
  readonly frames: readonly string[];
  /** The highest bus stream sequence among the events the frames came from (0 if none). */
  readonly src: number;
  /** The client acknowledged everything up to this seq: the log may forget it. */
  readonly acked: number;
  /** Rooms and calls of the session, when they changed since the last write. */
  readonly rooms?: readonly string[];
  readonly calls?: readonly string[];
}

/** Outcome of one append. */
export type AppendResult = "stored" | "fenced" | "gone";

/** A session taken over by a new edge. */
export interface ClaimedSession {
  readonly identity: StoredIdentity;
  /** The new epoch (the previous edge is fenced). */
  readonly epoch: number;
  /** The edge that held the session before. */
  readonly previousEdge: string;
  /** Frames kept, in seq order, from seq `firstSeq`. */
  readonly frames: readonly string[];
  readonly firstSeq: number;
  /** The highest seq ever written (frames end there). */
  readonly lastSeq: number;
  /** The highest bus stream sequence the previous edge logged. */
  readonly src: number;
  readonly rooms: readonly string[];
  readonly calls: readonly string[];
}

export interface SessionStore {
  /** Records a new session held by `edge` (epoch 1). */
  create(identity: StoredIdentity, edge: string, ttlMs: number): Promise<void>;
  /**
   * Applies appends (one per session) in one round trip. Resolves, per append, "stored"; "fenced"
   * when another edge claimed the session (the writer must let it go); or "gone" when the store has
   * no record of it (expired, or lost with a restarted Redis: the session goes on unlogged here).
   */
  append(appends: readonly LogAppend[], ttlMs: number): Promise<AppendResult[]>;
  /**
   * Moves the session to `edge` with a new epoch (fencing its previous edge), if `resumeTokenHash`
   * matches; null when the session is unknown, "bad-token" (nothing changed) when it does not match.
   */
  claim(sessionId: string, edge: string, ttlMs: number, resumeTokenHash: string): Promise<ClaimedSession | null | "bad-token">;
  /** The current edge and epoch, or null. */
  locate(sessionId: string): Promise<{ edge: string; epoch: number } | null>;
  /** Extends the life of sessions still held (by their current epoch). */
  refresh(sessionIds: readonly string[], ttlMs: number): Promise<void>;
  /** Forgets a session ended for good, if `epoch` is still current. */
  remove(sessionId: string, epoch: number): Promise<void>;
  close(): Promise<void>;
}

export function hashResumeToken(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

export function storePrincipal(p: Principal): StoredPrincipal {
  return { userId: p.userId, roomPatterns: [...p.roomPatterns], grants: [...p.grants], expiresAt: p.expiresAt, ...(p.tokenId === undefined ? {} : { tokenId: p.tokenId }) };
}

/** Largest number of frames a session's log keeps (older frames are dropped; a resume from before them fails with `gap`). */
export const MAX_LOG_FRAMES = 4096;
