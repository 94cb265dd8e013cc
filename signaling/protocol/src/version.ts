/** Protocol version spoken by this package. Bumped only for incompatible wire changes. */
export const PROTOCOL_VERSION = 1;

/** The WebSocket path of protocol v1 on every pod. */
export const WS_PATH_V1 = "/v1/ws";

/**
 * The `Sec-WebSocket-Protocol` value a client may offer. A client may also offer
 * `switchboard.v1, bearer.<token>` to carry its token in the upgrade instead of in `hello`.
 */
export const WS_SUBPROTOCOL_V1 = "switchboard.v1";

/** Prefix of the optional bearer-token subprotocol entry. */
export const WS_BEARER_SUBPROTOCOL_PREFIX = "bearer.";
