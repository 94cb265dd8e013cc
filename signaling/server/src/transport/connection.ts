import type { WebSocket } from "ws";
import type { Session, SessionSocket } from "../sessions/session.ts";
import { TokenBucket } from "../limits/token-bucket.ts";

/** What every connection of one gateway shares: kept once, not per socket. */
export interface ConnectionShared {
  /** Bytes buffered for one socket before it is closed as a slow consumer. */
  readonly maxOutboundBytes: number;
  /** Called when a send leaves more than `maxOutboundBytes` buffered. */
  readonly onOverflow: (c: Connection) => void;
}

/** Lifecycle of one socket. */
export type ConnectionState = "handshake" | "open" | "closed";

/**
 * One WebSocket and what the pod tracks about it: its session, rate-limit bucket, invalid-message
 * count and heartbeat state. Implements {@link SessionSocket} for the session layer.
 */
export class Connection implements SessionSocket {
  readonly ws: WebSocket;
  readonly ip: string;
  /** Token from `Sec-WebSocket-Protocol: switchboard.v1, bearer.<token>`, if given. */
  readonly headerToken: string | undefined;
  readonly bucket: TokenBucket;
  state: ConnectionState = "handshake";
  session: Session | null = null;
  invalidMessages = 0;
  /** A heartbeat ping is outstanding. */
  awaitingPong = false;
  missedPongs = 0;
  nextPingAtMs: number;
  handshakeTimer: ReturnType<typeof setTimeout> | null = null;
  /** Messages are handled one after another; this is the tail of the chain while one is async. */
  pending: Promise<void> | null = null;
  readonly #shared: ConnectionShared;

  constructor(init: {
    ws: WebSocket;
    ip: string;
    headerToken: string | undefined;
    nowMs: number;
    ratePerSecond: number;
    rateBurst: number;
    heartbeatIntervalMs: number;
    shared: ConnectionShared;
  }) {
    this.ws = init.ws;
    this.ip = init.ip;
    this.headerToken = init.headerToken;
    this.bucket = new TokenBucket(init.ratePerSecond, init.rateBurst, init.nowMs);
    this.nextPingAtMs = init.nowMs + init.heartbeatIntervalMs;
    this.#shared = init.shared;
  }

  send(frame: string): void {
    if (this.state === "closed") return;
    this.ws.send(frame);
    if (this.ws.bufferedAmount > this.#shared.maxOutboundBytes) this.#shared.onOverflow(this);
  }

  bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.ws.close(code, reason);
  }

  /** Any sign of life resets the heartbeat. */
  markAlive(): void {
    this.awaitingPong = false;
    this.missedPongs = 0;
  }
}
