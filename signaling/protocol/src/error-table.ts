import { ERROR_CODES } from "./errors.ts";

/**
 * Renders the error-code table as Markdown (docs/errors.md is this text; a test keeps them equal).
 */
export function renderErrorTable(): string {
  const rows = Object.entries(ERROR_CODES).map(
    ([code, spec]) => `| \`${code}\` | ${spec.close ?? "stays open"} | ${spec.retryable ? "yes" : "no"} | ${spec.http ?? "—"} | ${spec.summary} |`,
  );
  return [
    "# Error codes",
    "",
    "Every error the pod sends is `{type: \"error\", id?, seq?, code, message, retryable, field?}`. Clients match on",
    "`code`; `message` is for people and never contains a token. Errors that answer a request echo its `id`",
    "and travel in the session's stream (they carry `seq` and are replayed on resume). HTTP statuses apply to",
    "refusals before the WebSocket upgrade and to the admin API.",
    "",
    "Generated from `signaling/protocol/src/errors.ts` by `npm run docs:errors`; do not edit by hand.",
    "",
    "| code | WebSocket close | retryable | HTTP | meaning |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    "Close codes the client itself uses: `1000` (end the session, like `bye`), `1001` (page going away: also",
    "ends the session), `4000` (reconnecting: the session stays resumable). Any other drop keeps the session",
    "for the resume window.",
    "",
  ].join("\n");
}
