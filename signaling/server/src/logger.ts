import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Paths redacted from every log line. Tokens (JWT, resume tokens, admin tokens) never reach the
 * logs, whatever object a caller passes.
 */
export const REDACTED_PATHS = [
  "token",
  "*.token",
  "resumeToken",
  "*.resumeToken",
  "adminToken",
  "*.adminToken",
  "authorization",
  "*.authorization",
  "headers.authorization",
  'headers["sec-websocket-protocol"]',
  "*.hs256Secret",
  "*.secret",
];

/** Creates the pod's JSON logger. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base, redact: { paths: REDACTED_PATHS, censor: "[redacted]" } });
}
