import {
  DEFAULT_ACK_AFTER_BYTES,
  DEFAULT_ACK_AFTER_EVENTS,
  DEFAULT_ACK_INTERVAL_MS,
  PROTOCOL_VERSION,
  decodeServerMessage,
  type AppData,
  type ClientMessage,
  type IceCandidate,
  type Meta,
  type ServerMessage,
  type ServerMessageOf,
  type ServerMessageType,
} from "@switchboard/protocol";
import { Emitter } from "./emitter.ts";
import { SwitchboardError } from "./errors.ts";

/**
 * The subset of the standard WebSocket API the SDK uses. Browsers' and Node's global `WebSocket`
 * and the `ws` package's class fit as they are, without a cast. The SDK only assigns the `on*`
 * handlers and never calls them itself, so their event parameter is typed `never`: any
 * implementation's own event type fits.
 */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  onopen: ((ev: never) => unknown) | null;
  /** Receives `{ data }`; the SDK reads `data` as text. */
  onmessage: ((ev: never) => unknown) | null;
  /** Receives `{ code, reason }`. */
  onclose: ((ev: never) => unknown) | null;
  onerror: ((ev: never) => unknown) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
/**
 * A WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` from the `ws` package on a
 * runtime without one (Node 20).
 */
export type WebSocketFactory = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Options of {@link SwitchboardClient}. */
export interface ClientOptions {
  /** `wss://host/v1/ws`; several URLs are tried in turn on reconnect. */
  readonly url: string | readonly string[];
  /** The token, or a function returning a fresh one (called on connect, refresh and expiry). */
  readonly token: string | (() => string | Promise<string>);
  /** A stable device id (e.g. kept in localStorage). */
  readonly device?: string;
  /**
   * WebSocket implementation. Browsers and Node 22+ have one; on Node 20 pass the `ws` package's
   * `WebSocket`. @default globalThis.WebSocket
   */
  readonly WebSocket?: WebSocketFactory;
  /** Reply timeout of requests. @default 10000 */
  readonly requestTimeoutMs?: number;
  /** First reconnect delay; doubles per attempt up to `reconnectMaxDelayMs`, with jitter. @default 250 */
  readonly reconnectInitialDelayMs?: number;
  /** Longest reconnect delay. @default 10000 */
  readonly reconnectMaxDelayMs?: number;
  /**
   * Acknowledgements ride on the next request; without one, an `ack` is sent at most this often
   * when events arrived. @default 5000 (DEFAULT_ACK_INTERVAL_MS)
   */
  readonly ackIntervalMs?: number;
  /** An `ack` is sent at once when this many events are unacknowledged. @default 64 */
  readonly ackAfterEvents?: number;
  /** …or when their frames add up to this many characters. @default 65536 */
  readonly ackAfterBytes?: number;
  /** Rejoin rooms automatically when a session could not be resumed. @default true */
  readonly autoRejoin?: boolean;
}

/** Connection state of the client. */
export type ClientState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

type Welcome = ServerMessageOf<"welcome">;
type Joined = ServerMessageOf<"joined">;

/** Events of {@link SwitchboardClient}: one per server event type, plus lifecycle events. */
export type ClientEvents = { [K in ServerMessageType]: ServerMessageOf<K> } & {
  state: ClientState;
  /** A new session started (first connect, or after the old one could not be resumed). */
  session: Welcome;
  /** The session was resumed after a reconnect; `replayCount` missed events were replayed. */
  resumed: ServerMessageOf<"resumed">;
  /** The old session could not be resumed; rooms are rejoined (when autoRejoin) with fresh snapshots. */
  "session-lost": { reason: string };
  /** A room was rejoined after the session was lost. */
  rejoined: Joined;
  /** The socket closed; `willReconnect` tells whether the client goes on. */
  disconnected: { code: number; reason: string; willReconnect: boolean };
  /** An error not tied to a request (e.g. rate limiting of a fire-and-forget message). */
  "server-error": ServerMessageOf<"error">;
};

/** Relay target: a peer in a room, or the other party of a call. */
export type RelayTarget = { readonly room: string; readonly to: string } | { readonly callId: string };

interface Pending {
  readonly message: ClientMessage & { id: string };
  readonly resolve: (m: ServerMessage) => void;
  readonly reject: (e: SwitchboardError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  /** The socket generation it was last written to (0 = not yet written). */
  sentOn: number;
}

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSE_CODES = new Set([4001, 4002, 4004, 4009, 4012, 4013]);
/** A connection that stayed up this long resets the reconnect backoff. */
const STABLE_CONNECTION_MS = 5000;
/** The close code the client uses when it drops a socket to reconnect (keeps the session). */
export const CLIENT_RECONNECT_CLOSE_CODE = 4000;

/**
 * The Switchboard SDK: one session over a WebSocket that survives network drops. Requests return
 * promises settled by the server's reply (or a timeout); events arrive in order, exactly once,
 * across reconnects (the client acknowledges what it processed and resumes from there). Uses only
 * the standard WebSocket API, so it runs in browsers and in Node 22+ as it is, and on Node 20 with
 * `options.WebSocket` from the `ws` package.
 */
export class SwitchboardClient extends Emitter<ClientEvents> {
  readonly #o: ClientOptions;
  readonly #WS: WebSocketFactory;
  #ws: WebSocketLike | null = null;
  #generation = 0;
  #state: ClientState = "idle";
  #welcome: Welcome | null = null;
  #lastSeq = 0;
  #ackedSeq = 0;
  /** Characters of the event frames received since the last acknowledgement. */
  #unackedChars = 0;
  #replayLeft = 0;
  #nextId = 1;
  readonly #pending = new Map<string, Pending>();
  /** Rooms joined, with their metadata, for rejoining after a lost session. */
  readonly #rooms = new Map<string, Meta>();
  #attempt = 0;
  /** When the current socket went live; the backoff resets only after a connection that lasted. */
  #liveSinceMs = 0;
  #urlIndex = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  #ackTimer: ReturnType<typeof setInterval> | null = null;
  #pingTimer: ReturnType<typeof setInterval> | null = null;
  #lastFrameAtMs = 0;
  /** Set between a failed resume and the next welcome: rooms must be rejoined. */
  #sessionLost = false;
  #connectWaiters: Array<{ resolve: (w: Welcome) => void; reject: (e: SwitchboardError) => void }> = [];

  /**
   * Makes a client; nothing is sent before {@link SwitchboardClient.connect}.
   * @throws {@link SwitchboardError} `SIG_CLIENT_NO_WEBSOCKET` when the runtime has no global
   * `WebSocket` and `options.WebSocket` is not given.
   */
  constructor(options: ClientOptions) {
    super();
    this.#o = options;
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketFactory }).WebSocket;
    if (!WS) {
      throw new SwitchboardError("SIG_CLIENT_NO_WEBSOCKET", "this runtime has no global WebSocket (Node 20): pass options.WebSocket, e.g. WebSocket from the ws package", { retryable: false });
    }
    this.#WS = WS;
  }

  /** The connection state; every change is also emitted as a `state` event. */
  get state(): ClientState {
    return this.#state;
  }

  /** The session's welcome (ids, limits, ICE servers), once connected. */
  get session(): Welcome | null {
    return this.#welcome;
  }

  /** The highest event seq processed. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /**
   * Connects and opens a session. Resolves with the welcome (at once when already open); rejects
   * with a {@link SwitchboardError} when the pod refuses the session (e.g. `SIG_ERR_AUTH_FAILED`,
   * `SIG_ERR_UNSUPPORTED_VERSION`) or the client is closed first (`SIG_CLIENT_CLOSED`). Network
   * failures do not reject: the client keeps reconnecting with backoff.
   */
  connect(): Promise<Welcome> {
    if (this.#state === "open" && this.#welcome) return Promise.resolve(this.#welcome);
    const p = new Promise<Welcome>((resolve, reject) => this.#connectWaiters.push({ resolve, reject }));
    if (this.#state === "idle" || this.#state === "closed") {
      this.#setState("connecting");
      this.#open();
    }
    return p;
  }

  /** Ends the session (`bye`) and closes the socket; pending requests reject. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    const ws = this.#ws;
    if (ws && ws.readyState === 1 && this.#state === "open") {
      try {
        ws.send(JSON.stringify({ type: "bye" }));
      } catch {
        // the socket is going away anyway
      }
    }
    this.#shutdown(new SwitchboardError("SIG_CLIENT_CLOSED", "client closed", { retryable: false }));
    ws?.close(1000, "bye");
  }

  /**
   * Sends any client message with a fresh `id`. Resolves the server's reply to it; rejects with a
   * {@link SwitchboardError}: the server's error code, `SIG_CLIENT_TIMEOUT` after
   * `requestTimeoutMs`, `SIG_CLIENT_SESSION_LOST` or `SIG_CLIENT_CLOSED`. Requests made while
   * reconnecting wait for the session and are sent once.
   */
  request<R extends ServerMessage = ServerMessage>(message: ClientMessage): Promise<R> {
    if (this.#state === "closed") return Promise.reject(new SwitchboardError("SIG_CLIENT_CLOSED", "client closed", { retryable: false }));
    const id = `c${this.#nextId++}`;
    const msg = { ...message, id } as ClientMessage & { id: string };
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SwitchboardError("SIG_CLIENT_TIMEOUT", `no reply to ${msg.type} in time`));
      }, this.#o.requestTimeoutMs ?? 10_000);
      const pending: Pending = { message: msg, resolve: resolve as (m: ServerMessage) => void, reject, timer, sentOn: 0 };
      this.#pending.set(id, pending);
      if (this.#state === "open" && this.#replayLeft === 0) this.#write(pending);
    });
  }

  /** Joins a room; resolves the snapshot (self and the other peers). */
  async join(room: string, meta: Meta = {}): Promise<Joined> {
    const joined = await this.request<Joined>({ type: "join", room, meta });
    this.#rooms.set(room, meta);
    return joined;
  }

  /** Leaves a room; resolves once the pod confirmed. */
  async leave(room: string): Promise<void> {
    await this.request({ type: "leave", room });
    this.#rooms.delete(room);
  }

  /** Replaces this peer's metadata in a room (the others get `peer-updated`). */
  async update(room: string, meta: Meta): Promise<void> {
    await this.request({ type: "update", room, meta });
    if (this.#rooms.has(room)) this.#rooms.set(room, meta);
  }

  /** Relays an SDP offer; resolves once the server has delivered it to the target's stream. */
  async sendOffer(target: RelayTarget, sdp: string): Promise<void> {
    await this.request({ type: "offer", ...target, sdp });
  }

  /** Relays an SDP answer; resolves once delivered to the target's stream. */
  async sendAnswer(target: RelayTarget, sdp: string): Promise<void> {
    await this.request({ type: "answer", ...target, sdp });
  }

  /** Relays one trickled ICE candidate. */
  async sendCandidate(target: RelayTarget, candidate: IceCandidate): Promise<void> {
    await this.request({ type: "candidate", ...target, candidate });
  }

  /** Tells the target that no more candidates follow. */
  async sendEndOfCandidates(target: RelayTarget): Promise<void> {
    await this.request({ type: "end-of-candidates", ...target });
  }

  /** Asks the other side to make a new offer (e.g. an ICE restart from the polite side). */
  async requestRenegotiation(target: RelayTarget, iceRestart = false): Promise<void> {
    await this.request({ type: "renegotiate", ...target, iceRestart });
  }

  /** Sends app data to every other peer of a room (`broadcast` event). */
  async broadcast(room: string, data: AppData): Promise<void> {
    await this.request({ type: "broadcast", room, data });
  }

  /** Sends app data to one peer of a room (`message` event). */
  async message(room: string, to: string, data: AppData): Promise<void> {
    await this.request({ type: "message", room, to, data });
  }

  /** Calls a user: every live device of theirs rings. Resolves the call id and device count. */
  async invite(userId: string, meta: Meta = {}): Promise<{ callId: string; devices: number }> {
    const r = await this.request<ServerMessageOf<"call-trying">>({ type: "call-invite", to: userId, meta });
    return { callId: r.callId, devices: r.devices };
  }

  /** Callee: tells the caller this device is ringing. */
  async ringing(callId: string): Promise<void> {
    await this.request({ type: "call-ringing", callId });
  }

  /** Callee: accepts the call on this device (first accept wins; the caller then offers). */
  async accept(callId: string): Promise<void> {
    await this.request({ type: "call-accept", callId });
  }

  /** Caller: confirms the accepted device (`call-accepted`); the call becomes active. */
  async confirm(callId: string): Promise<void> {
    await this.request({ type: "call-confirm", callId });
  }

  /** Callee: declines the call everywhere, or reports this device busy (only its leg ends). */
  async reject(callId: string, reason: "declined" | "busy" = "declined"): Promise<void> {
    await this.request({ type: "call-reject", callId, reason });
  }

  /** Callee: stops ringing on this device only; the others keep ringing. */
  async dismiss(callId: string): Promise<void> {
    await this.request({ type: "call-dismiss", callId });
  }

  /** Caller: cancels before an accept (a hangup after one). */
  async cancel(callId: string): Promise<void> {
    await this.request({ type: "call-cancel", callId });
  }

  /** Either party: ends an answered or active call. */
  async hangup(callId: string): Promise<void> {
    await this.request({ type: "call-hangup", callId });
  }

  /** Sends a fresh token (from `options.token` when not given); resolves the new ICE servers. */
  async refresh(token?: string): Promise<ServerMessageOf<"refreshed">> {
    return this.request<ServerMessageOf<"refreshed">>({ type: "refresh", token: token ?? (await this.#token()) });
  }

  /** Drops the socket (as a network failure would) to exercise resume. For tests and demos. */
  simulateDrop(): void {
    this.#ws?.close(CLIENT_RECONNECT_CLOSE_CODE, "simulated drop");
  }

  #open(): void {
    const urls = typeof this.#o.url === "string" ? [this.#o.url] : this.#o.url;
    const url = urls[this.#urlIndex % urls.length] as string;
    const generation = ++this.#generation;
    let ws: WebSocketLike;
    try {
      ws = new this.#WS(url, "switchboard.v1");
    } catch (err) {
      this.#scheduleReconnect(new SwitchboardError("SIG_CLIENT_CLOSED", `cannot open ${url}`, { cause: err }));
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (generation !== this.#generation) return;
      void this.#handshake(ws);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (generation !== this.#generation) return;
      this.#lastFrameAtMs = Date.now();
      const text = String(ev.data);
      this.#onFrame(text);
      if (this.#lastSeq > this.#ackedSeq) {
        this.#unackedChars += text.length;
        if (this.#lastSeq - this.#ackedSeq >= (this.#o.ackAfterEvents ?? DEFAULT_ACK_AFTER_EVENTS) || this.#unackedChars >= (this.#o.ackAfterBytes ?? DEFAULT_ACK_AFTER_BYTES)) this.#sendAck();
      }
    };
    ws.onclose = (ev: { code: number; reason: string }) => {
      if (generation !== this.#generation) return;
      this.#onClose(ev.code, ev.reason);
    };
    ws.onerror = () => {
      // onclose follows and decides what to do
    };
  }

  async #handshake(ws: WebSocketLike): Promise<void> {
    const token = await this.#token().catch(() => undefined);
    if (ws !== this.#ws) return;
    const w = this.#welcome;
    if (w) {
      ws.send(JSON.stringify({ type: "resume", v: PROTOCOL_VERSION, sessionId: w.sessionId, resumeToken: w.resumeToken, lastSeq: this.#lastSeq, textHeartbeat: true, ...(token ? { token } : {}) }));
    } else {
      ws.send(JSON.stringify({ type: "hello", v: PROTOCOL_VERSION, textHeartbeat: true, ...(token ? { token } : {}), ...(this.#o.device ? { device: this.#o.device } : {}) }));
    }
  }

  async #token(): Promise<string> {
    const t = this.#o.token;
    return typeof t === "string" ? t : await t();
  }

  #onFrame(text: string): void {
    const decoded = decodeServerMessage(text);
    if (!decoded.ok) {
      // A newer server may send types this SDK does not know: skip them, but keep their place in
      // the stream, or the next event would look like a gap and the resume would replay it forever.
      const seq = seqOf(text);
      if (seq !== undefined && this.#takeSeq(seq) && this.#replayLeft > 0 && --this.#replayLeft === 0) this.#afterReplay();
      return;
    }
    const m = decoded.message;
    if ("seq" in m && typeof m.seq === "number" && !this.#takeSeq(m.seq)) return;
    switch (m.type) {
      case "welcome":
        return this.#onWelcome(m);
      case "resumed":
        return this.#onResumed(m);
      case "resume-failed":
        return this.#onResumeFailed(m.reason);
      case "pong":
        return;
      case "ping":
        return this.#answerHeartbeat();
      case "reconnect":
        setTimeout(() => this.#ws?.close(CLIENT_RECONNECT_CLOSE_CODE, "server asked to reconnect"), m.afterMs);
        break;
      case "token-expiring":
        void this.refresh().catch(() => undefined);
        break;
      default:
        break;
    }
    if ("id" in m && typeof m.id === "string") {
      const pending = this.#pending.get(m.id);
      if (pending) {
        this.#pending.delete(m.id);
        clearTimeout(pending.timer);
        if (m.type === "error") pending.reject(new SwitchboardError(m.code as never, m.message, { retryable: m.retryable, field: m.field }));
        else pending.resolve(m);
      }
    } else if (m.type === "error") {
      if (this.#state !== "open" && this.#state !== "reconnecting") this.#failConnect(new SwitchboardError(m.code as never, m.message, { retryable: m.retryable }));
      else this.emit("server-error", m);
    }
    this.emit(m.type, m as never);
    if (this.#replayLeft > 0 && "seq" in m && --this.#replayLeft === 0) this.#afterReplay();
  }

  /** Advances the stream to `seq`; false for a repeat or a gap (the socket is then dropped to resume). */
  #takeSeq(seq: number): boolean {
    if (seq <= this.#lastSeq) return false;
    if (seq !== this.#lastSeq + 1) {
      // A hole in the stream must never be papered over: reconnect and resume from what we have.
      this.#ws?.close(CLIENT_RECONNECT_CLOSE_CODE, "sequence gap");
      return false;
    }
    this.#lastSeq = seq;
    return true;
  }

  #onWelcome(w: Welcome): void {
    const lostSession = this.#sessionLost;
    this.#sessionLost = false;
    this.#welcome = w;
    this.#lastSeq = 0;
    this.#ackedSeq = 0;
    this.#unackedChars = 0;
    this.#liveSinceMs = Date.now();
    this.#goLive(w.heartbeatIntervalMs);
    this.emit("session", w);
    for (const { resolve } of this.#connectWaiters.splice(0)) resolve(w);
    if (lostSession && this.#o.autoRejoin !== false) {
      for (const [room, meta] of [...this.#rooms]) {
        this.request<Joined>({ type: "join", room, meta }).then(
          (joined) => this.emit("rejoined", joined),
          () => this.#rooms.delete(room),
        );
      }
    }
    this.#flushUnsent();
  }

  #onResumed(r: ServerMessageOf<"resumed">): void {
    this.#liveSinceMs = Date.now();
    this.#replayLeft = r.replayCount;
    const welcome = this.#welcome as Welcome;
    this.#goLive(welcome.heartbeatIntervalMs);
    this.emit("resumed", r);
    // connect() called while reconnecting waits for the session to be back, resumed or new.
    for (const { resolve } of this.#connectWaiters.splice(0)) resolve(welcome);
    if (r.replayCount === 0) this.#afterReplay();
  }

  /** After the replay, requests written to an older socket that got no reply never reached the server: send them again. */
  #afterReplay(): void {
    for (const p of this.#pending.values()) if (p.sentOn !== this.#generation) this.#write(p);
  }

  #onResumeFailed(reason: string): void {
    this.#sessionLost = true;
    this.emit("session-lost", { reason });
    for (const p of [...this.#pending.values()]) {
      if (p.sentOn !== 0) {
        this.#pending.delete(p.message.id);
        clearTimeout(p.timer);
        p.reject(new SwitchboardError("SIG_CLIENT_SESSION_LOST", `session lost (${reason}) before the reply`));
      }
    }
    this.#welcome = null;
    this.#lastSeq = 0;
    void this.#handshakeAfterLoss();
  }

  async #handshakeAfterLoss(): Promise<void> {
    const ws = this.#ws;
    if (!ws) return;
    const token = await this.#token().catch(() => undefined);
    if (ws !== this.#ws) return;
    // The rooms are rejoined when the new welcome arrives.
    ws.send(JSON.stringify({ type: "hello", v: PROTOCOL_VERSION, textHeartbeat: true, ...(token ? { token } : {}), ...(this.#o.device ? { device: this.#o.device } : {}) }));
  }

  #goLive(heartbeatIntervalMs: number): void {
    this.#setState("open");
    this.#lastFrameAtMs = Date.now();
    this.#stopTimers();
    this.#ackTimer = setInterval(() => this.#sendAck(), this.#o.ackIntervalMs ?? DEFAULT_ACK_INTERVAL_MS);
    // The pod sends a silent client a text `ping` every heartbeat period (answered in #onFrame),
    // so a live connection is never silent much longer than a period. The pod skips the ping when
    // the client talked during the period; after 1.5 periods without a frame the client pings
    // (`pong` comes back), after 2.5 it gives the connection up and resumes on a new one.
    this.#pingTimer = setInterval(() => {
      const ws = this.#ws;
      if (!ws || ws.readyState !== 1) return;
      const silentMs = Date.now() - this.#lastFrameAtMs;
      if (silentMs > heartbeatIntervalMs * 2.5) {
        this.#ws = null;
        this.#generation++;
        ws.close(CLIENT_RECONNECT_CLOSE_CODE, "no traffic");
        this.#onClose(1006, "no traffic");
        return;
      }
      if (silentMs > heartbeatIntervalMs * 1.5) ws.send(JSON.stringify({ type: "ping", ts: Date.now() }));
    }, heartbeatIntervalMs / 2);
    unref(this.#ackTimer);
    unref(this.#pingTimer);
  }

  #sendAck(): void {
    if (this.#lastSeq > this.#ackedSeq && this.#ws?.readyState === 1 && this.#state === "open") {
      this.#ackedSeq = this.#lastSeq;
      this.#unackedChars = 0;
      this.#ws.send(JSON.stringify({ type: "ack", seq: this.#lastSeq }));
    }
  }

  /** Answers the pod's heartbeat `ping`, with the acknowledgement when one is due. */
  #answerHeartbeat(): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) return;
    const ack = this.#lastSeq > this.#ackedSeq ? this.#lastSeq : undefined;
    if (ack !== undefined) {
      this.#ackedSeq = ack;
      this.#unackedChars = 0;
    }
    ws.send(ack === undefined ? '{"type":"pong"}' : JSON.stringify({ type: "pong", ack }));
  }

  #flushUnsent(): void {
    for (const p of this.#pending.values()) if (p.sentOn === 0) this.#write(p);
  }

  #write(p: Pending): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) return;
    p.sentOn = this.#generation;
    const ack = this.#lastSeq > this.#ackedSeq ? this.#lastSeq : undefined;
    if (ack !== undefined) {
      this.#ackedSeq = ack;
      this.#unackedChars = 0;
    }
    ws.send(JSON.stringify(ack === undefined ? p.message : { ...p.message, ack }));
  }

  #onClose(code: number, reason: string): void {
    this.#stopTimers();
    this.#ws = null;
    if (this.#state === "closed") return;
    const fatal = FATAL_CLOSE_CODES.has(code);
    this.emit("disconnected", { code, reason, willReconnect: !fatal });
    if (fatal) {
      const err = new SwitchboardError("SIG_CLIENT_CLOSED", `closed by server: ${code} ${reason}`, { retryable: false });
      this.#shutdown(err);
      return;
    }
    this.#scheduleReconnect(null);
  }

  #scheduleReconnect(_cause: SwitchboardError | null): void {
    this.#setState("reconnecting");
    // A pod that accepts and then drops us at once must not get a tight reconnect loop.
    if (this.#liveSinceMs > 0 && Date.now() - this.#liveSinceMs >= STABLE_CONNECTION_MS) this.#attempt = 0;
    this.#liveSinceMs = 0;
    const initial = this.#o.reconnectInitialDelayMs ?? 250;
    const max = this.#o.reconnectMaxDelayMs ?? 10_000;
    const capped = Math.min(max, initial * 2 ** this.#attempt);
    // Jitter spreads a crowd of clients that lost the same pod (no reconnect storm).
    const delay = this.#attempt === 0 ? Math.random() * initial : capped / 2 + (Math.random() * capped) / 2;
    this.#attempt += 1;
    this.#urlIndex += 1;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#open();
    }, delay);
  }

  #failConnect(err: SwitchboardError): void {
    if (this.#connectWaiters.length === 0) return;
    for (const { reject } of this.#connectWaiters.splice(0)) reject(err);
  }

  #shutdown(err: SwitchboardError): void {
    this.#setState("closed");
    this.#stopTimers();
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
    this.#failConnect(err);
  }

  #stopTimers(): void {
    if (this.#ackTimer) clearInterval(this.#ackTimer);
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#ackTimer = null;
    this.#pingTimer = null;
  }

  #setState(state: ClientState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit("state", state);
  }
}

/** The `seq` of a frame the SDK could not decode, when it has one. */
function seqOf(text: string): number | undefined {
  try {
    const seq = (JSON.parse(text) as { seq?: unknown } | null)?.seq;
    return typeof seq === "number" && Number.isSafeInteger(seq) ? seq : undefined;
  } catch {
    return undefined;
  }
}

function unref(timer: unknown): void {
  (timer as { unref?: () => void }).unref?.();
}
