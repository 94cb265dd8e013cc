/**
 * Switchboard protocol v1: every wire message as a zod schema with its inferred type, the error
 * code table, default limits and the version. Shared by the pod and the SDK; nothing else defines
 * wire shapes. No `node:*` imports: this package runs in browsers too.
 *
 * @module @switchboard/protocol
 */
export * from "./version.ts";
export * from "./limits.ts";
export * from "./errors.ts";
export * from "./common.ts";
export * from "./client-messages.ts";
export * from "./server-messages.ts";
export * from "./decode.ts";
