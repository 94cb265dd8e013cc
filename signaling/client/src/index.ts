/**
 * The Switchboard SDK for browsers and Node: a resumable signaling session over the standard
 * WebSocket API, typed requests and events, and a perfect-negotiation helper for
 * RTCPeerConnection.
 *
 * @module @switchboard/client
 */
export { SwitchboardClient, CLIENT_RECONNECT_CLOSE_CODE, type ClientOptions, type ClientState, type ClientEvents, type RelayTarget, type WebSocketLike, type WebSocketFactory } from "./client.ts";
export { SwitchboardError, type ClientErrorCode } from "./errors.ts";
export { PerfectNegotiator, negotiateWith, type NegotiatorOptions, type NegotiationSignals, type PeerConnectionLike, type SessionDescriptionInit, type IceCandidateInit } from "./negotiation.ts";
export type * from "@switchboard/protocol";
