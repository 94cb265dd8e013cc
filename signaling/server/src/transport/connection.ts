import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import type { Session, SessionSocket } from "../sessions/session.ts";
import { TokenBucket } from "../limits/token-bucket.ts";
import { PING_FRAME, TEXT_PING_FRAME, encodeTextFrame, type TextFrame } from "./text-frame.ts";

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
  /**
   * The TCP socket under `ws`: frames encoded once (transport/text-frame.ts) are written to it
   * directly, in one `write` each; `ws` parses the inbound side and writes its control frames.
   */
  readonly #socket: Socket;
  readonly ip: string;
  /** Token from `Sec-WebSocket-Protocol: switchboard.v1, bearer.<token>`, if given. */
  readonly headerToken: string | undefined;
  readonly bucket: TokenBucket;
  state: ConnectionState = "handshake";
  session: Session | null = null;
  invalidMessages = 0;
  /** A message arrived since the last heartbeat check: the client is alive and needs no ping. */
  heard = false;
  /** The client answers a text `ping` with `pong` (`hello.textHeartbeat`); else it gets WebSocket pings. */
  textHeartbeat = false;
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
    socket: Socket;
    ip: string;
    headerToken: string | undefined;
    nowMs: number;
    ratePerSecond: number;
    rateBurst: number;
    heartbeatIntervalMs: number;
    shared: ConnectionShared;
  }) {
    this.ws = init.ws;
    this.#socket = init.socket;
    this.ip = init.ip;
    this.headerToken = init.headerToken;
    this.bucket = new TokenBucket(init.ratePerSecond, init.rateBurst, init.nowMs);
    this.nextPingAtMs = init.nowMs + init.heartbeatIntervalMs;
    this.#shared = init.shared;
  }

  send(frame: string | TextFrame): void {
    if (this.state === "closed" || this.ws.readyState !== 1) return;
    this.#socket.write(typeof frame === "string" ? encodeTextFrame(frame) : frame);
    if (this.#socket.writableLength > this.#shared.maxOutboundBytes) this.#shared.onOverflow(this);
  }

  /**
   * Sends a heartbeat ping: a text `ping` the client answers with `pong` (`textHeartbeat`), else a
   * WebSocket ping its WebSocket answers by itself.
   */
  ping(): void {
    if (this.state === "closed" || this.ws.readyState !== 1) return;
    this.#socket.write(this.textHeartbeat ? TEXT_PING_FRAME : PING_FRAME);
  }

  bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.ws.close(code, reason);
  }

  /** A message arrived: the client is alive, and the next heartbeat check needs no ping. */
  markHeard(): void {
    this.heard = true;
    this.markAlive();
  }

  /** A pong arrived. It does not count as `heard`: a client that only answers pings is pinged every period. */
  markAlive(): void {
    this.awaitingPong = false;
    this.missedPongs = 0;
  }
}
