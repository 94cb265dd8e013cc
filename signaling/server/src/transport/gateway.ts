import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import {
  ERROR_CODES,
  WS_BEARER_SUBPROTOCOL_PREFIX,
  WS_PATH_V1,
  WS_SUBPROTOCOL_V1,
  decodeClientMessage,
  type ClientMessage,
  type ErrorCode,
} from "@switchboard/protocol";
import type { Config } from "../config.ts";
import { toSignalingError, type SignalingError } from "../errors.ts";
import type { Hub } from "../hub.ts";
import { IpLimiter } from "../limits/ip-limiter.ts";
import type { Logger } from "../logger.ts";
import type { PodMetrics } from "../observability/metrics.ts";
import type { DetachCause } from "../sessions/session.ts";
import { Connection, type ConnectionShared } from "./connection.ts";
import { BARE_PONG } from "./text-frame.ts";

/** Options of {@link Gateway}. */
export interface GatewayOptions {
  readonly config: Config;
  readonly hub: Hub;
  readonly metrics: PodMetrics;
  readonly log: Logger;
}

/** Timer runs per tick period over which the heartbeat pass is spread. */
const HEARTBEAT_SLICES = 10;

/** Close codes a client uses to end its session on purpose (anything else keeps it resumable). */
const ENDING_CLIENT_CLOSE_CODES = new Set([1000, 1001]);

/** What a drain did: sockets told to reconnect, and those still open when its deadline came. */
export interface DrainOutcome {
  readonly hinted: number;
  /** Sockets closed by the pod (1012) because the deadline passed before they left; 0 for a clean drain. */
  readonly closedAtDeadline: number;
  /** From the drain's start to the last socket gone, or to the deadline. */
  readonly durationMs: number;
}

/**
 * The WebSocket edge: vets upgrades (path, Origin, per-address and pod-wide caps, draining),
 * runs the handshake, parses every frame exactly once, applies the per-socket rate limit, hands
 * messages to the {@link Hub} one at a time per socket, and keeps every socket's heartbeat from
 * one shared timer.
 */
export class Gateway {
  readonly #o: GatewayOptions;
  readonly #wss: WebSocketServer;
  readonly #ipLimiter: IpLimiter;
  /** Open sockets and their connections (the listeners below find a socket's connection here). */
  readonly #connections = new Map<WebSocket, Connection>();
  /**
   * One set of socket listeners for every socket (`this` is the socket): per-socket closures and
   * their captured scopes cost a few hundred bytes per connection.
   */
  readonly #listeners: {
    readonly message: (this: WebSocket, data: RawData, isBinary: boolean) => void;
    readonly pong: (this: WebSocket) => void;
    readonly error: (this: WebSocket, err: Error) => void;
    readonly close: (this: WebSocket, code: number) => void;
  };
  readonly #connectionShared: ConnectionShared;
  /** Sockets closed for being dead or slow: terminated if they have not closed by the deadline. */
  readonly #terminateAt = new Map<Connection, number>();
  #tickTimer: ReturnType<typeof setInterval> | null = null;
  /** Where the timer's heartbeat round is in `#connections` (null: start a new round). */
  #sliceIterator: Iterator<Connection> | null = null;
  #sliceRuns = 0;
  #ticks = 0;
  #draining = false;

  constructor(options: GatewayOptions) {
    this.#o = options;
    const { limits } = options.config;
    this.#ipLimiter = new IpLimiter(limits);
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: limits.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL_V1) ? WS_SUBPROTOCOL_V1 : false),
    });
    this.#connectionShared = {
      maxOutboundBytes: limits.maxOutboundBytes,
      onOverflow: (c) => this.#closeFor(c, "SIG_ERR_SLOW_CONSUMER", "slow-consumer", Date.now()),
    };
    const onMessage = (ws: WebSocket, data: RawData, isBinary: boolean): void => {
      const conn = this.#connections.get(ws);
      if (conn) this.#onMessage(conn, data as Buffer, isBinary);
    };
    const onPong = (ws: WebSocket): void => this.#connections.get(ws)?.markAlive();
    const onError = (err: Error): void => {
      // ws reports protocol violations here (e.g. a frame over maxPayload, then closes with 1009).
      const code = (err as Error & { code?: string }).code;
      if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") this.#o.metrics.error("SIG_ERR_MESSAGE_TOO_BIG");
      this.#o.log.debug({ err: { message: err.message, code } }, "socket error");
    };
    const onClose = (ws: WebSocket, code: number): void => {
      const conn = this.#connections.get(ws);
      if (conn) this.#onClose(conn, code);
    };
    this.#listeners = {
      message(data, isBinary) {
        onMessage(this, data, isBinary);
      },
      pong() {
        onPong(this);
      },
      error(err) {
        onError(err);
      },
      close(code) {
        onClose(this, code);
      },
    };
  }

  /** Open sockets. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Starts the shared heartbeat and housekeeping timer. Each tick period (1 s, or the heartbeat
   * interval when shorter) is cut in up to {@link HEARTBEAT_SLICES} runs, each checking the next
   * slice of the sockets: every socket is still visited once per period, but the pings due in a
   * period go out in small batches. At 19 000 sockets one pass sends ~760 pings, and their pongs
   * come back together; in one go that blocks the loop for milliseconds every second.
   */
  start(): void {
    if (this.#tickTimer) return;
    const tickMs = Math.min(1000, this.#o.config.heartbeatIntervalMs);
    const slices = Math.max(1, Math.min(HEARTBEAT_SLICES, Math.floor(tickMs / 10)));
    this.#tickTimer = setInterval(() => this.#tickSlice(Date.now(), slices), tickMs / slices);
    this.#tickTimer.unref();
  }

  /**
   * Handles an HTTP upgrade. Refusals answer with an HTTP status and a JSON body carrying the error
   * code, before any WebSocket exists.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path !== WS_PATH_V1) return rejectUpgrade(socket, 404, null, "no WebSocket endpoint at this path");
    if (this.#draining) return rejectUpgrade(socket, 503, "SIG_ERR_DRAINING", "pod is draining");
    const { config } = this.#o;
    const origin = req.headers.origin;
    if (config.allowedOrigins.length > 0 && !config.allowedOrigins.includes("*") && !(origin && config.allowedOrigins.includes(origin))) {
      this.#o.metrics.error("SIG_ERR_ORIGIN_FORBIDDEN");
      return rejectUpgrade(socket, 403, "SIG_ERR_ORIGIN_FORBIDDEN", "origin not allowed");
    }
    if (this.#connections.size >= config.limits.maxConnections) {
      return rejectUpgrade(socket, 503, "SIG_ERR_TOO_MANY_CONNECTIONS", "pod is at its connection limit");
    }
    const ip = req.socket.remoteAddress ?? "unknown";
    const verdict = this.#ipLimiter.admit(ip, Date.now());
    if (verdict !== "ok") {
      this.#o.metrics.error("SIG_ERR_TOO_MANY_CONNECTIONS");
      return rejectUpgrade(socket, 429, "SIG_ERR_TOO_MANY_CONNECTIONS", verdict);
    }
    const headerToken = bearerFromProtocols(req.headers["sec-websocket-protocol"]);
    // Until the upgrade completes, the slot is given back when the socket closes; after it, when
    // the WebSocket closes (#onClose), exactly once either way.
    const release = () => this.#ipLimiter.release(ip);
    socket.once("close", release);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off("close", release);
      this.#onConnection(ws, socket as Socket, ip, headerToken);
    });
  }

  /** One full heartbeat and housekeeping pass over every socket (tests drive it with their clock). */
  tick(nowMs: number): void {
    for (const conn of this.#connections.values()) this.#heartbeat(conn, nowMs);
    this.#housekeep(nowMs);
  }

  /** One timer run: the heartbeat of the next 1/`slices` of the sockets; housekeeping every `slices` runs. */
  #tickSlice(nowMs: number, slices: number): void {
    const n = Math.ceil(this.#connections.size / slices);
    // A Map iterator stays valid while entries come and go; sockets added mid-round are visited in
    // this round or the next, and each one's own deadline decides whether it is pinged.
    const it = (this.#sliceIterator ??= this.#connections.values());
    for (let i = 0; i < n; i++) {
      const next = it.next();
      if (next.done) {
        this.#sliceIterator = null;
        break;
      }
      this.#heartbeat(next.value, nowMs);
    }
    if (++this.#sliceRuns % slices === 0) this.#housekeep(nowMs);
  }

  /**
   * Once per heartbeat period of each socket: nothing to do when a message arrived during the
   * period (the client is alive, and its traffic keeps proxies from timing the socket out);
   * otherwise a ping — a text `ping` the SDK answers with `pong` and sees (its own liveness check),
   * or a WebSocket ping for other clients — and the socket is closed after too many periods without
   * a pong or a message. The pings of one period go out in slices of the sockets (`#tickSlice`), so
   * their answers come back together and are read a batch per wakeup.
   */
  #heartbeat(conn: Connection, nowMs: number): void {
    if (conn.state !== "open" || nowMs < conn.nextPingAtMs) return;
    const { heartbeatIntervalMs, heartbeatMissedLimit } = this.#o.config;
    if (conn.heard) {
      conn.heard = false;
      conn.nextPingAtMs = nowMs + heartbeatIntervalMs;
      return;
    }
    if (conn.awaitingPong) {
      conn.missedPongs += 1;
      if (conn.missedPongs >= heartbeatMissedLimit) {
        this.#closeFor(conn, "SIG_ERR_HEARTBEAT_TIMEOUT", "heartbeat", nowMs);
        return;
      }
    }
    conn.awaitingPong = true;
    conn.nextPingAtMs = nowMs + heartbeatIntervalMs;
    conn.ping();
  }

  /** Terminates sockets past their close deadline, sweeps sessions (resume windows, token expiry). */
  #housekeep(nowMs: number): void {
    for (const [conn, at] of this.#terminateAt) {
      if (at <= nowMs) {
        this.#terminateAt.delete(conn);
        conn.ws.terminate();
      }
    }
    this.#o.hub.sweep(nowMs, (session) => {
      const conn = session.socket as Connection | null;
      if (conn) this.#closeFor(conn, "SIG_ERR_TOKEN_EXPIRED", "token-expired", nowMs);
    });
    if (++this.#ticks % 60 === 0) this.#ipLimiter.sweep(nowMs);
  }

  /**
   * Drains the pod: refuses new sockets, tells every client to reconnect in paced batches with
   * jitter, waits until they have gone or the deadline passes, then closes the rest with 1012.
   *
   * @returns how many sockets were hinted and how many were still open at the deadline
   */
  async drain(): Promise<DrainOutcome> {
    this.#draining = true;
    const { timeoutMs, spreadMs, batchSize } = this.#o.config.drain;
    const started = Date.now();
    const deadline = started + timeoutMs;
    let hinted = 0;
    const conns = [...this.#connections.values()];
    const batches = Math.max(1, Math.ceil(conns.length / batchSize));
    const batchGapMs = Math.min(spreadMs, timeoutMs / 2) / batches;
    for (let b = 0; b < batches; b++) {
      for (const conn of conns.slice(b * batchSize, (b + 1) * batchSize)) {
        if (conn.state !== "open" || !conn.session) continue;
        conn.session.push({ type: "reconnect", afterMs: Math.floor(Math.random() * batchGapMs), reason: "draining" });
        hinted += 1;
      }
      if (b < batches - 1) await sleep(batchGapMs);
    }
    while (this.#connections.size > 0 && Date.now() < deadline) await sleep(Math.min(100, Math.max(1, deadline - Date.now())));
    const closedAtDeadline = this.#connections.size;
    const left = Date.now() - started;
    for (const conn of [...this.#connections.values()]) this.#closeFor(conn, "SIG_ERR_DRAINING", "draining", Date.now());
    // Resolve only once every socket is gone (closed, or terminated by the tick 2 s after the close).
    const gone = Date.now() + 3000;
    while (this.#connections.size > 0 && Date.now() < gone) {
      this.tick(Date.now());
      await sleep(50);
    }
    return { hinted, closedAtDeadline, durationMs: left };
  }

  /** Stops the timer and closes every socket at once (after a drain, or in tests). */
  async close(): Promise<void> {
    this.#draining = true;
    if (this.#tickTimer) clearInterval(this.#tickTimer);
    this.#tickTimer = null;
    const closing = [...this.#connections.values()].map((conn) => new Promise<void>((resolve) => {
      if (conn.ws.readyState === conn.ws.CLOSED) return resolve();
      conn.ws.once("close", () => resolve());
      conn.close(1001, "SIG_ERR_DRAINING");
      setTimeout(() => conn.ws.terminate(), 2000).unref();
    }));
    await Promise.all(closing);
    this.#wss.close();
  }

  #onConnection(ws: WebSocket, socket: Socket, ip: string, headerToken: string | undefined): void {
    const { config } = this.#o;
    const conn = new Connection({
      ws,
      socket,
      ip,
      headerToken,
      nowMs: Date.now(),
      ratePerSecond: config.limits.ratePerSecond,
      rateBurst: config.limits.rateBurst,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      shared: this.#connectionShared,
    });
    this.#connections.set(ws, conn);
    this.#armHandshakeTimer(conn);
    const l = this.#listeners;
    ws.on("message", l.message);
    ws.on("pong", l.pong);
    ws.on("error", l.error);
    ws.on("close", l.close);
  }

  #onClose(conn: Connection, code: number): void {
    this.#ipLimiter.release(conn.ip);
    this.#connections.delete(conn.ws);
    this.#terminateAt.delete(conn);
    if (conn.handshakeTimer) clearTimeout(conn.handshakeTimer);
    this.#o.metrics.closes.labels(String(code)).inc();
    const wasOpen = conn.state !== "closed";
    conn.state = "closed";
    const session = conn.session;
    if (!session || session.socket !== conn) return;
    if (wasOpen && ENDING_CLIENT_CLOSE_CODES.has(code)) this.#o.hub.endSession(session, "closed");
    else this.#o.hub.detach(session, "dropped", Date.now());
  }

  #armHandshakeTimer(conn: Connection): void {
    if (conn.handshakeTimer) clearTimeout(conn.handshakeTimer);
    conn.handshakeTimer = setTimeout(() => {
      conn.handshakeTimer = null;
      if (conn.state === "handshake") this.#closeWithError(conn, "SIG_ERR_HANDSHAKE_TIMEOUT", "no hello or resume in time");
    }, this.#o.config.limits.handshakeTimeoutMs);
  }

  #onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
    if (conn.state === "closed") return;
    const receivedAt = performance.now();
    // The answer to a heartbeat: no decode, no rate limit (the pod paces pings). A pong is a sign
    // of life but not "heard": a client that only answers pings is pinged every period.
    if (!isBinary && data.length === BARE_PONG.length && data.equals(BARE_PONG) && conn.state === "open") return conn.markAlive();
    if (isBinary) return this.#invalid(conn, "SIG_ERR_BINARY_FRAME", "binary frames are not supported", undefined, undefined);
    const decoded = decodeClientMessage(data.toString("utf8"));
    // Limited after parsing (a frame is at most maxMessageBytes) so the error can echo the request
    // id and the SDK's promise rejects with SIG_ERR_RATE_LIMITED instead of timing out.
    if (!conn.bucket.take(Date.now())) {
      this.#sendError(conn, "SIG_ERR_RATE_LIMITED", "rate limit exceeded; message dropped", decoded.ok ? decoded.message.id : decoded.id);
      return;
    }
    if (!decoded.ok) return this.#invalid(conn, decoded.code, decoded.message, decoded.field, decoded.id);
    const msg = decoded.message;
    if (msg.type === "pong") conn.markAlive();
    else conn.markHeard();
    this.#o.metrics.messageIn(msg.type);
    if (conn.pending) {
      const next: Promise<void> = conn.pending.then(() => this.#dispatch(conn, msg, receivedAt));
      this.#chain(conn, next);
      return;
    }
    const result = this.#dispatch(conn, msg, receivedAt);
    if (result) this.#chain(conn, result);
  }

  #chain(conn: Connection, p: Promise<void>): void {
    conn.pending = p;
    void p.then(() => {
      if (conn.pending === p) conn.pending = null;
    });
  }

  /** Handles one decoded message; returns a promise only when the work is asynchronous. Never rejects. */
  #dispatch(conn: Connection, msg: ClientMessage, receivedAt: number): void | Promise<void> {
    if (conn.state === "closed") return;
    if (conn.state === "handshake") return this.#handshake(conn, msg);
    const session = conn.session;
    if (!session || session.socket !== conn) return;
    try {
      const r = this.#o.hub.handle(session, msg, receivedAt);
      if (r) return r.catch((err: unknown) => this.#fail(conn, msg.id, err));
    } catch (err) {
      this.#fail(conn, msg.id, err);
    }
  }

  async #handshake(conn: Connection, msg: ClientMessage): Promise<void> {
    const { hub } = this.#o;
    if (msg.type !== "hello" && msg.type !== "resume") {
      this.#invalid(conn, "SIG_ERR_HANDSHAKE_REQUIRED", "send hello or resume first", undefined, msg.id);
      return;
    }
    conn.textHeartbeat = msg.textHeartbeat === true;
    try {
      if (msg.type === "hello") {
        const session = await hub.hello(msg, conn, conn.headerToken);
        if (conn.state === "closed") {
          hub.endSession(session, "closed");
          return;
        }
        this.#opened(conn, session);
        return;
      }
      const outcome = await hub.resume(msg, conn, Date.now());
      if (outcome.ok) {
        if (conn.state === "closed") {
          hub.detach(outcome.session, "dropped", Date.now());
          return;
        }
        this.#opened(conn, outcome.session);
        return;
      }
      conn.send(
        JSON.stringify({
          type: "resume-failed",
          ...(msg.id === undefined ? {} : { id: msg.id }),
          code: "SIG_ERR_RESUME_FAILED",
          reason: outcome.reason,
          message: `session cannot be resumed (${outcome.reason}); send hello and rejoin`,
        }),
      );
      this.#o.metrics.error("SIG_ERR_RESUME_FAILED");
      // The handshake deadline is not re-armed: a socket cannot stay unauthenticated by sending
      // one failing resume after another.
    } catch (err) {
      const e = toSignalingError(err);
      if (e.code === "SIG_ERR_INTERNAL") this.#o.log.error({ err: e.cause }, "handshake failed");
      this.#closeWithError(conn, e.code, e.message, msg.id);
    }
  }

  #opened(conn: Connection, session: NonNullable<Connection["session"]>): void {
    conn.session = session;
    conn.state = "open";
    if (conn.handshakeTimer) clearTimeout(conn.handshakeTimer);
    conn.handshakeTimer = null;
  }

  #fail(conn: Connection, id: string | undefined, err: unknown): void {
    const e: SignalingError = toSignalingError(err);
    if (e.code === "SIG_ERR_INTERNAL") this.#o.log.error({ err: e.cause }, "internal error handling a message");
    this.#sendError(conn, e.code, e.message, id, e.field);
  }

  #invalid(conn: Connection, code: ErrorCode, message: string, field: string | undefined, id: string | undefined): void {
    conn.invalidMessages += 1;
    if (conn.invalidMessages > this.#o.config.limits.maxInvalidMessages) {
      this.#closeWithError(conn, "SIG_ERR_ABUSE", `more than ${this.#o.config.limits.maxInvalidMessages} invalid messages`);
      return;
    }
    this.#sendError(conn, code, message, id, field);
  }

  /** Sends an error: in the session's stream (replayed on resume) when there is one, else raw. */
  #sendError(conn: Connection, code: ErrorCode, message: string, id: string | undefined, field?: string): void {
    this.#o.metrics.error(code);
    const body = {
      type: "error" as const,
      ...(id === undefined ? {} : { id }),
      code,
      message,
      retryable: ERROR_CODES[code].retryable,
      ...(field === undefined ? {} : { field }),
    };
    const session = conn.session;
    if (session && session.socket === conn) session.push(body);
    else conn.send(JSON.stringify(body));
  }

  /** Sends the error and closes the socket with the error's close code (handshake failures, abuse). */
  #closeWithError(conn: Connection, code: ErrorCode, message: string, id?: string): void {
    this.#sendError(conn, code, message, id);
    conn.close(ERROR_CODES[code].close ?? 1008, code);
  }

  /**
   * Closes the socket of a live session for a reason that keeps the session resumable (dead, slow,
   * token expired, draining): the session detaches now, so later events only go to its replay
   * buffer; the socket is terminated if it has not closed within 2 s.
   */
  #closeFor(conn: Connection, code: ErrorCode, cause: DetachCause, nowMs: number): void {
    if (conn.state === "closed") return;
    const session = conn.session;
    this.#o.metrics.error(code);
    if (cause !== "slow-consumer" && cause !== "heartbeat") {
      conn.send(JSON.stringify({ type: "error", code, message: ERROR_CODES[code].summary, retryable: ERROR_CODES[code].retryable }));
    }
    if (session && session.socket === conn) this.#o.hub.detach(session, cause, nowMs);
    conn.close(ERROR_CODES[code].close ?? 1008, code);
    this.#terminateAt.set(conn, nowMs + 2000);
  }
}

function bearerFromProtocols(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const p of header.split(",")) {
    const v = p.trim();
    if (v.startsWith(WS_BEARER_SUBPROTOCOL_PREFIX)) return v.slice(WS_BEARER_SUBPROTOCOL_PREFIX.length);
  }
  return undefined;
}

const STATUS_TEXT: Record<number, string> = { 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable" };

function rejectUpgrade(socket: Duplex, status: number, code: ErrorCode | null, message: string): void {
  const body = JSON.stringify({ code: code ?? "NOT_FOUND", message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
