/**
 * The Switchboard signaling pod as a library: build a server, configure it, reach its parts in
 * tests and benchmarks.
 */
export { createSignalingServer, type SignalingServer, type SignalingServerOptions } from "./app.ts";
export { ConfigSchema, parseConfig, loadConfig, ConfigError, ENV_VARS, type Config, type ConfigInput } from "./config.ts";
export { SignalingError, isSignalingError, toSignalingError } from "./errors.ts";
export { createLogger, type Logger } from "./logger.ts";
export { issueToken, mintTurnCredentials } from "./auth/index.ts";
