import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { createPrincipal, hasGrant, type Authenticator, type Principal } from "../auth/index.ts";
import type { Config } from "../config.ts";
import { toSignalingError } from "../errors.ts";
import type { Hub } from "../hub.ts";
import { IpLimiter } from "../limits/ip-limiter.ts";
import { TokenBucket } from "../limits/token-bucket.ts";
import type { Logger } from "../logger.ts";
import type { PodMetrics } from "../observability/metrics.ts";
import { Session } from "../sessions/session.ts";
import { handlePeerJsHttp } from "./peerjs-http.ts";
import { PEERJS_ERRORS, PeerJsQuerySchema, decodePeerJsMessage, errorFrame, type PeerJsErrorText } from "./peerjs-protocol.ts";
import { PeerJsRealm, sameSecret, type PeerJsClient, type PeerJsSessionHost, type PeerJsSocket } from "./peerjs-realm.ts";
import type { TextFrame } from "../transport/text-frame.ts";

/** Options of {@link PeerJsGateway}. */
export interface PeerJsGatewayOptions {
  readonly config: Config;
  readonly hub: Hub;
  readonly auth: Authenticator;
  readonly metrics: PodMetrics;
  readonly log: Logger;
  /** Sockets of the pod's own gateway, so that both faces together respect `limits.maxConnections`. */
  readonly otherConnections?: () => number;
  /** Clock (epoch ms). @default Date.now */
  readonly now?: () => number;
}

/** Frames kept while a socket's JWT is being checked; more are dropped. */
const MAX_EARLY_FRAMES = 32;
/** A socket the pod closed is terminated if its close handshake has not finished by then. */
const TERMINATE_AFTER_MS = 2_000;

/**
 * One PeerJS socket: its rate-limit bucket and invalid-frame count, and the {@link PeerJsSocket}
 * the realm and the session layer write to.
 */
class PeerJsConnection implements PeerJsSocket {
  readonly ws: WebSocket;
  readonly bucket: TokenBucket;
  /** `admitting` until the query (and any JWT) is checked and the id registered. */
  state: "admitting" | "open" | "closed" = "admitting";
  client: PeerJsClient | null = null;
  invalidFrames = 0;
  early: Buffer[] = [];
  readonly #maxOutboundBytes: number;
  readonly #onOverflow: (c: PeerJsConnection) => void;
  readonly #onClosed: (c: PeerJsConnection, code: number) => void;

  constructor(init: {
    ws: WebSocket;
    nowMs: number;
    ratePerSecond: number;
    rateBurst: number;
    maxOutboundBytes: number;
    onOverflow: (c: PeerJsConnection) => void;
    onClosed: (c: PeerJsConnection, code: number) => void;
  }) {
    this.ws = init.ws;
    this.bucket = new TokenBucket(init.ratePerSecond, init.rateBurst, init.nowMs);
    this.#maxOutboundBytes = init.maxOutboundBytes;
    this.#onOverflow = init.onOverflow;
    this.#onClosed = init.onClosed;
  }

  deliver(frame: string): void {
    if (this.state === "closed") return;
    this.ws.send(frame);
    if (this.ws.bufferedAmount > this.#maxOutboundBytes) this.#onOverflow(this);
  }

  /**
   * A Switchboard event for the session behind this id (a call ringing every device of a user,
   * for one): PeerJS clients cannot read it, so it is not written. It stays in the session's
   * replay buffer, which is bounded.
   */
  send(_frame: string | TextFrame): void {}

  bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.ws.close(code, reason);
    this.closed(code);
  }

  /** Marks the socket closed and tells the owner once, whoever closed it. */
  closed(code: number): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.early = [];
    this.#onClosed(this, code);
  }
}

/**
 * The PeerJS-server-compatible face of the pod (docs/peerjs.md): the WebSocket at
 * `{path}/peerjs?key=&id=&token=` and the HTTP API under `{path}`, in front of a
 * {@link PeerJsRealm} whose ids are Switchboard sessions of the pod's {@link Hub} (user id = PeerJS
 * id), so they count in the pod's sessions, limits and metrics.
 *
 * The edge applies the pod's rules: Origin allowlist, per-address caps, the pod-wide socket cap,
 * message size, per-socket rate limit, outbound queue bound, drain. Every frame is parsed once
 * ({@link decodePeerJsMessage}). Queue expiry, liveness, token expiry and leave notices run from
 * one shared timer.
 */
export class PeerJsGateway {
  readonly realm: PeerJsRealm;
  /** The WebSocket path, `{path}/peerjs`. */
  readonly wsPath: string;
  readonly #o: PeerJsGatewayOptions;
  readonly #now: () => number;
  readonly #wss: WebSocketServer;
  readonly #ipLimiter: IpLimiter;
  readonly #connections = new Set<PeerJsConnection>();
  readonly #terminateAt = new Map<PeerJsConnection, number>();
  /** In `jwt` auth with `peerjs.auth = "pod"`, the token must be a JWT for the id. */
  readonly #jwt: boolean;
  #timer: ReturnType<typeof setInterval> | null = null;
  #ticks = 0;
  #draining = false;

  constructor(options: PeerJsGatewayOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    const { config } = options;
    this.wsPath = `${config.peerjs.path}/peerjs`;
    this.#jwt = config.peerjs.auth === "pod" && config.auth.mode === "jwt";
    this.#ipLimiter = new IpLimiter(config.limits);
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: config.limits.maxMessageBytes, perMessageDeflate: false, clientTracking: false });
    this.realm = new PeerJsRealm({ config: config.peerjs, host: this.#sessionHost(), metrics: options.metrics });
  }

  /** Open PeerJS sockets (registered or still being admitted). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** True for the WebSocket path of the face. */
  handlesUpgrade(path: string): boolean {
    return path === this.wsPath;
  }

  /** True for every HTTP path under the face's prefix. */
  handlesRequest(path: string): boolean {
    const prefix = this.#o.config.peerjs.path;
    return path === prefix || path.startsWith(`${prefix}/`);
  }

  /** Serves `GET {path}/`, `GET {path}/{key}/id`, `GET {path}/{key}/peers` (with CORS). */
  handleRequest(req: IncomingMessage, res: ServerResponse, path: string): void {
    const { config } = this.#o;
    handlePeerJsHttp(req, res, path, {
      config: config.peerjs,
      allowedOrigins: config.allowedOrigins,
      ids: () => this.realm.ids(),
      newId: () => this.realm.newId(),
    });
  }

  /** Starts the shared timer (queue expiry, leave notices, liveness, token expiry). */
  start(): void {
    if (this.#timer) return;
    const { expireTimeoutMs, aliveTimeoutMs, leaveGraceMs } = this.#o.config.peerjs;
    const shortest = Math.min(expireTimeoutMs, aliveTimeoutMs, leaveGraceMs > 0 ? leaveGraceMs : Infinity);
    // A fifth of the shortest timeout: expiry lands within 20 % of its deadline (PeerJS server
    // sweeps every 1 s for its 5 s default, the same).
    const tickMs = Math.max(10, Math.min(1000, Math.floor(shortest / 5)));
    this.#timer = setInterval(() => this.tick(this.#now()), tickMs);
    this.#timer.unref();
  }

  /** One housekeeping pass (normally from the shared timer; tests call it with their own clock). */
  tick(nowMs: number): void {
    this.realm.sweep(nowMs);
    for (const [conn, at] of this.#terminateAt) {
      if (at > nowMs) continue;
      this.#terminateAt.delete(conn);
      conn.ws.terminate();
    }
    if (++this.#ticks % 60 === 0) this.#ipLimiter.sweep(nowMs);
  }

  /**
   * Handles an upgrade on {@link wsPath}. Pod-level refusals (draining, Origin, per-address caps)
   * answer with an HTTP status like the Switchboard gateway; PeerJS-level ones (parameters, key,
   * token, limits, ID-TAKEN) happen on the open socket with PeerJS's own messages, as in PeerJS
   * server, so the client can show them.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#draining) return rejectUpgrade(socket, 503, "SIG_ERR_DRAINING", "pod is draining");
    const { config, metrics } = this.#o;
    const origin = req.headers.origin;
    if (config.allowedOrigins.length > 0 && !config.allowedOrigins.includes("*") && !(origin && config.allowedOrigins.includes(origin))) {
      metrics.error("SIG_ERR_ORIGIN_FORBIDDEN");
      return rejectUpgrade(socket, 403, "SIG_ERR_ORIGIN_FORBIDDEN", "origin not allowed");
    }
    const ip = req.socket.remoteAddress ?? "unknown";
    const verdict = this.#ipLimiter.admit(ip, this.#now());
    if (verdict !== "ok") {
      metrics.error("SIG_ERR_TOO_MANY_CONNECTIONS");
      return rejectUpgrade(socket, 429, "SIG_ERR_TOO_MANY_CONNECTIONS", verdict);
    }
    // Read the query now: the URL carries the token and is never logged.
    const query = Object.fromEntries(new URL(req.url ?? "/", "http://localhost").searchParams);
    let released = false;
    const release = (): void => {
      if (!released) this.#ipLimiter.release(ip);
      released = true;
    };
    socket.once("close", release);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off("close", release);
      this.#onConnection(ws, query, release);
    });
  }

  /**
   * Refuses new sockets and closes the open ones with 1012 in paced batches over
   * `drain.spreadMs` (PeerJS has no reconnect hint: the close is the hint), so that their apps do
   * not all reconnect at once.
   *
   * @returns the sockets it closed (every one: for PeerJS the close is the drain)
   */
  async drain(): Promise<{ closed: number }> {
    this.#draining = true;
    const { timeoutMs, spreadMs, batchSize } = this.#o.config.drain;
    const ids = this.realm.ids();
    const closed = this.#connections.size;
    const batches = Math.max(1, Math.ceil(ids.length / batchSize));
    const batchGapMs = Math.min(spreadMs, timeoutMs / 2) / batches;
    for (let b = 0; b < batches; b++) {
      for (const id of ids.slice(b * batchSize, (b + 1) * batchSize)) this.realm.disconnect(id, 1012, "SIG_ERR_DRAINING", this.#now());
      if (b < batches - 1) await sleep(batchGapMs);
    }
    for (const conn of [...this.#connections]) conn.close(1012, "SIG_ERR_DRAINING");
    return { closed };
  }

  /** Stops the timer, closes every socket and ends every PeerJS session. Idempotent. */
  async close(): Promise<void> {
    this.#draining = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    // Registered ids go first and quietly: on shutdown nobody needs a LEAVE from this pod.
    this.realm.clear();
    const closing = [...this.#connections].map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.ws.readyState === conn.ws.CLOSED) return resolve();
          conn.ws.once("close", () => resolve());
          conn.close(1001, "SIG_ERR_DRAINING");
          setTimeout(() => conn.ws.terminate(), TERMINATE_AFTER_MS).unref();
        }),
    );
    await Promise.all(closing);
    this.#wss.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #sessionHost(): PeerJsSessionHost {
    const { hub, config } = this.#o;
    // The realm enforces JWT expiry itself (a PeerJS ERROR, then close); the session's principal
    // carries none, so the Switchboard gateway's expiry sweep never touches a PeerJS socket.
    const withoutExpiry = (p: Principal): Principal => (p.expiresAt === null ? p : createPrincipal({ ...p, expiresAt: null }));
    return {
      open: (principal, socket) => {
        const session = new Session(withoutExpiry(principal), { device: "peerjs", face: "peerjs", maxReplayBytes: config.limits.maxReplayBytes });
        session.attach(socket);
        hub.sessions.add(session);
        return session;
      },
      attach: (session, principal, socket) => {
        session.principal = withoutExpiry(principal);
        session.attach(socket);
      },
      detach: (session, nowMs) => hub.detach(session, "dropped", nowMs),
      end: (session) => hub.endSession(session, "closed"),
    };
  }

  #onConnection(ws: WebSocket, query: Record<string, string>, release: () => void): void {
    const { config, metrics, log } = this.#o;
    const conn = new PeerJsConnection({
      ws,
      nowMs: this.#now(),
      ratePerSecond: config.limits.ratePerSecond,
      rateBurst: config.limits.rateBurst,
      maxOutboundBytes: config.limits.maxOutboundBytes,
      // Not from inside the write: the realm may be walking its peers when a socket overflows.
      onOverflow: (c) =>
        queueMicrotask(() => {
          if (c.state === "closed") return;
          metrics.error("SIG_ERR_SLOW_CONSUMER");
          c.close(4010, "SIG_ERR_SLOW_CONSUMER");
        }),
      onClosed: (c, code) => this.#closed(c, code),
    });
    this.#connections.add(conn);
    ws.on("message", (data: Buffer) => this.#onFrame(conn, data));
    ws.on("error", (err) => {
      const code = (err as Error & { code?: string }).code;
      if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") metrics.error("SIG_ERR_MESSAGE_TOO_BIG");
      log.debug({ err: { message: err.message, code } }, "peerjs socket error");
    });
    ws.on("close", (code) => {
      release();
      this.#connections.delete(conn);
      this.#terminateAt.delete(conn);
      metrics.closes.labels(String(code)).inc();
      conn.closed(code);
    });
    void this.#admit(conn, query).catch((err: unknown) => {
      log.error({ err }, "peerjs admission failed");
      conn.close(1011, "SIG_ERR_INTERNAL");
    });
  }

  /** Checks the query, the key and any JWT, then registers the id (PeerJS server's order). */
  async #admit(conn: PeerJsConnection, rawQuery: Record<string, string>): Promise<void> {
    const { config, hub, metrics } = this.#o;
    const query = PeerJsQuerySchema.safeParse(rawQuery);
    if (!query.success) return this.#refuse(conn, PEERJS_ERRORS.INVALID_WS_PARAMETERS, 1008, "SIG_ERR_BAD_MESSAGE");
    const { key, id, token } = query.data;
    if (!sameSecret(key, config.peerjs.key)) return this.#refuse(conn, PEERJS_ERRORS.INVALID_KEY, 1008, "SIG_ERR_AUTH_FAILED");
    const own = this.#connections.size;
    if (own + (this.#o.otherConnections?.() ?? 0) > config.limits.maxConnections) {
      return this.#refuse(conn, PEERJS_ERRORS.CONNECTION_LIMIT_EXCEED, 1013, "SIG_ERR_TOO_MANY_CONNECTIONS");
    }
    let principal: Principal;
    if (this.#jwt) {
      try {
        principal = await this.#o.auth.verify(token);
      } catch (err) {
        const e = toSignalingError(err);
        if (e.code === "SIG_ERR_INTERNAL") this.#o.log.error({ err: e.cause }, "peerjs token check failed");
        if (e.code === "SIG_ERR_UNAVAILABLE") return this.#refuse(conn, PEERJS_ERRORS.AUTH_UNAVAILABLE, 1013, e.code);
        return this.#refuse(conn, PEERJS_ERRORS.INVALID_TOKEN, e.code === "SIG_ERR_TOKEN_EXPIRED" ? 4003 : 4001, e.code);
      }
      if (principal.userId !== id || !hasGrant(principal, "signal")) return this.#refuse(conn, PEERJS_ERRORS.INVALID_TOKEN, 4001, "SIG_ERR_AUTH_FAILED");
    } else {
      principal = createPrincipal({ userId: id, grants: ["signal"] });
    }
    if (conn.state === "closed") return;
    if (hub.isBanned(id)) return this.#refuse(conn, PEERJS_ERRORS.BANNED, 4013, "SIG_ERR_BANNED");
    const result = this.realm.register({ id, token, principal, proven: this.#jwt, socket: conn }, this.#now());
    if (!result.ok) {
      metrics.messageOut(result.outcome === "id-taken" ? "peerjs.ID-TAKEN" : "peerjs.ERROR");
      return;
    }
    metrics.messageOut("peerjs.OPEN");
    conn.client = result.client;
    conn.state = "open";
    const early = conn.early;
    conn.early = [];
    for (const frame of early) this.#handleFrame(conn, frame);
  }

  #refuse(conn: PeerJsConnection, msg: PeerJsErrorText, closeCode: number, metricCode: string): void {
    this.#o.metrics.error(metricCode);
    this.#o.metrics.messageOut("peerjs.ERROR");
    conn.deliver(errorFrame(msg));
    conn.close(closeCode, metricCode);
  }

  #onFrame(conn: PeerJsConnection, data: Buffer): void {
    if (conn.state === "closed") return;
    if (!conn.bucket.take(this.#now())) {
      // Dropped without a reply: a PeerJS client turns any ERROR into a fatal error.
      this.#o.metrics.error("SIG_ERR_RATE_LIMITED");
      return;
    }
    if (conn.state === "admitting") {
      if (conn.early.length < MAX_EARLY_FRAMES) conn.early.push(data);
      else this.#o.metrics.error("SIG_ERR_RATE_LIMITED");
      return;
    }
    this.#handleFrame(conn, data);
  }

  #handleFrame(conn: PeerJsConnection, data: Buffer): void {
    const client = conn.client;
    if (conn.state !== "open" || !client) return;
    const receivedAt = performance.now();
    const decoded = decodePeerJsMessage(data.toString("utf8"));
    const { metrics, config } = this.#o;
    if (!decoded.ok) {
      // PeerJS server ignores such frames; so does this face, up to the pod's invalid-frame limit.
      metrics.error(decoded.code);
      conn.invalidFrames += 1;
      if (conn.invalidFrames > config.limits.maxInvalidMessages) {
        metrics.error("SIG_ERR_ABUSE");
        conn.close(4009, "SIG_ERR_ABUSE");
      }
      return;
    }
    const msg = decoded.message;
    metrics.messageIn(`peerjs.${msg.type}`);
    this.realm.receive(client, msg, this.#now());
    if (msg.type !== "HEARTBEAT") metrics.relayLatency.observe((performance.now() - receivedAt) / 1000);
  }

  #closed(conn: PeerJsConnection, code: number): void {
    const nowMs = this.#now();
    if (conn.ws.readyState !== conn.ws.CLOSED && this.#connections.has(conn)) this.#terminateAt.set(conn, nowMs + TERMINATE_AFTER_MS);
    if (conn.client) this.realm.socketClosed(conn.client, conn, code, nowMs);
  }
}

const STATUS_TEXT: Record<number, string> = { 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable" };

function rejectUpgrade(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
