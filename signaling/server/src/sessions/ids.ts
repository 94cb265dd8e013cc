import { randomBytes } from "node:crypto";

/** A new session id (unguessable, 128 bits). */
export function newSessionId(): string {
  return `s_${randomBytes(16).toString("base64url")}`;
}

/** A new resume token (the secret that lets a socket take over a session; 256 bits). */
export function newResumeToken(): string {
  return randomBytes(32).toString("base64url");
}

/** A new public peer id. */
export function newPeerId(): string {
  return `p_${randomBytes(9).toString("base64url")}`;
}

let lastCallMs = 0;
let callCounter = 0;

/**
 * A new call id: time-ordered (so "lower call id wins" favours the older call in glare) and unique
 * (a per-process counter and random suffix).
 */
export function newCallId(nowMs: number = Date.now()): string {
  if (nowMs === lastCallMs) callCounter += 1;
  else {
    lastCallMs = nowMs;
    callCounter = 0;
  }
  return `c_${nowMs.toString(36).padStart(9, "0")}${callCounter.toString(36).padStart(3, "0")}_${randomBytes(6).toString("hex")}`;
}
