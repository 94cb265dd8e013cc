import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import type { ServerMessage, ServerMessageOf } from "@switchboard/protocol";

/** Options of {@link CountingClient}. */
export interface CountingClientOptions {
  /**
   * How often the highest processed `seq` is acknowledged when no outgoing message carried it
   * (the SDK's scheme: piggyback `ack` on sends, plus a periodic `ack`). @default 500
   */
  readonly ackIntervalMs?: number;
  /**
   * Which events are queued for {@link CountingClient.next}; the rest are only counted and passed to
   * `onEvent`. @default every event except room relays, broadcasts, messages and presence
   */
  readonly keep?: (m: ServerMessage) => boolean;
  /** Called with every frame on arrival, with the arrival time (`performance.now()`). */
  readonly onEvent?: (m: ServerMessage, receivedAtMs: number) => void;
}

/** Error of a request answered with an `error` frame; `code` is the protocol error code. */
export class RequestError extends Error {
  override readonly name = "RequestError";
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

interface Pending {
  resolve(m: ServerMessage): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

const ROOM_TRAFFIC = new Set(["peer-joined", "peer-left", "peer-updated", "broadcast", "message"]);
const RELAY = new Set(["offer", "answer", "candidate", "end-of-candidates", "renegotiate"]);

function defaultKeep(m: ServerMessage): boolean {
  if (ROOM_TRAFFIC.has(m.type)) return false;
  return !(RELAY.has(m.type) && "room" in m && m.room !== undefined);
}

/**
 * A protocol-level load-test client for many sessions in one process: it checks the session
 * stream as it arrives (`seq` 1, 2, 3 … with no gap or repeat; every breach goes to `problems`),
 * acknowledges what it processed the way the SDK does, tracks requests by `id`, and queues only
 * the events a test waits for (calls by default), so that thousands of relayed messages cost a
 * counter rather than memory. Tests only.
 */
export class CountingClient {
  readonly url: string;
  welcome: ServerMessageOf<"welcome"> | null = null;
  /** Highest `seq` processed. */
  lastSeq = 0;
  /** Breaches of the stream contract, unexpected errors and closes, in the order seen. */
  readonly problems: string[] = [];
  /** Frames received, by type. */
  readonly counts = new Map<string, number>();
  /** Fire-and-forget sends (see {@link CountingClient.sendCounted}) answered `ok`. */
  okCount = 0;

  readonly #o: CountingClientOptions;
  #ws: WebSocket | null = null;
  #ackedSeq = 0;
  #ackTimer: ReturnType<typeof setInterval> | null = null;
  #closing = false;
  #nextId = 0;
  readonly #pending = new Map<string, Pending>();
  /** Ids of {@link CountingClient.sendCounted} messages not answered yet. */
  readonly #unanswered = new Set<string>();
  readonly #inbox: ServerMessage[] = [];
  #waiters: Array<() => void> = [];

  constructor(url: string, options: CountingClientOptions = {}) {
    this.url = url;
    this.#o = options;
  }

  /** The session's peer id (after {@link CountingClient.connect}). */
  get peerId(): string {
    if (!this.welcome) throw new Error("not connected");
    return this.welcome.peerId;
  }

  /** Fire-and-forget sends still waiting for their reply. */
  get unanswered(): number {
    return this.#unanswered.size;
  }

  /**
   * Opens the socket and the session (`hello` with `token`); a refused upgrade (429/503, the pod's
   * per-address upgrade rate) is retried with capped, jittered backoff up to `attempts` times.
   * Resolves the welcome; rejects when the socket or the handshake fails otherwise.
   */
  async connect(token: string, options: { timeoutMs?: number; attempts?: number } = {}): Promise<ServerMessageOf<"welcome">> {
    const attempts = options.attempts ?? 8;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#open(options.timeoutMs ?? 10_000);
        break;
      } catch (err) {
        const status = (err as { status?: number }).status;
        if (attempt >= attempts || (status !== 429 && status !== 503)) throw err;
        await sleep(Math.min(2000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2));
      }
    }
    const welcome = await this.request({ type: "hello", v: 1, token }, options.timeoutMs ?? 10_000);
    if (welcome.type !== "welcome") throw new Error(`hello answered with ${JSON.stringify(welcome)}`);
    this.welcome = welcome;
    this.#ackTimer = setInterval(() => this.#sendAck(), this.#o.ackIntervalMs ?? 500);
    return welcome;
  }

  /** Sends `message` as is, with the pending acknowledgement piggybacked. */
  send(message: Record<string, unknown>): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) throw new Error(`socket not open (${this.url})`);
    const ack = this.lastSeq > this.#ackedSeq ? this.lastSeq : undefined;
    if (ack !== undefined) this.#ackedSeq = ack;
    ws.send(JSON.stringify(ack === undefined ? message : { ...message, ack }));
  }

  /**
   * Sends `message` with a fresh `id` and resolves the reply that echoes it. Rejects with
   * {@link RequestError} on an error reply, or after `timeoutMs` without a reply.
   */
  request(message: Record<string, unknown>, timeoutMs = 10_000): Promise<ServerMessage> {
    const id = `q${++this.#nextId}`;
    return new Promise<ServerMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no reply to ${String(message["type"])} ${id} within ${timeoutMs} ms (${this.url})`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      try {
        this.send({ ...message, id });
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(err as Error);
      }
    });
  }

  /**
   * Sends `message` with a fresh `id` without waiting: an `ok` reply counts in `okCount`, any other
   * reply is a problem. {@link CountingClient.settled} waits for every reply.
   */
  sendCounted(message: Record<string, unknown>): void {
    const id = `c${++this.#nextId}`;
    this.#unanswered.add(id);
    this.send({ ...message, id });
  }

  /** Resolves once every {@link CountingClient.sendCounted} message was answered; false on timeout. */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.#unanswered.size > 0) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await this.#wait(left);
    }
    return true;
  }

  /**
   * The next queued event (see `keep`) for which `match` holds; events before it stay queued.
   * Rejects after `timeoutMs`, or when the socket closes first.
   */
  async next<T extends ServerMessage = ServerMessage>(match: (m: ServerMessage) => boolean, timeoutMs = 10_000): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const at = this.#inbox.findIndex(match);
      if (at >= 0) return this.#inbox.splice(at, 1)[0] as T;
      if (this.#ws === null || this.#ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed before the expected event (${this.url})`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for an event; queued: ${JSON.stringify(this.#inbox).slice(0, 400)}`);
      await this.#wait(left);
    }
  }

  /** The queued events nobody consumed (a test's leftovers are usually a bug). */
  queued(): readonly ServerMessage[] {
    return this.#inbox;
  }

  /** Closes with 1000 (the session ends) and waits for the close. */
  async close(code = 1000): Promise<void> {
    this.#closing = true;
    this.#stopAck();
    const ws = this.#ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
    ws.close(code);
    await closed;
  }

  /** Drops the TCP connection without a close frame. */
  drop(): void {
    this.#closing = true;
    this.#stopAck();
    this.#ws?.terminate();
  }

  #open(timeoutMs: number): Promise<void> {
    const ws = new WebSocket(this.url, ["switchboard.v1"]);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`socket to ${this.url} did not open within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once("open", () => {
        clearTimeout(timer);
        this.#ws = ws;
        ws.on("message", (data) => this.#onFrame(String(data)));
        ws.on("close", (code, reason) => {
          this.#stopAck();
          if (!this.#closing) this.problems.push(`socket closed by the pod: ${code} ${String(reason)}`);
          for (const p of this.#pending.values()) {
            clearTimeout(p.timer);
            p.reject(new Error(`socket closed (${code})`));
          }
          this.#pending.clear();
          this.#wake();
        });
        resolve();
      });
      ws.once("unexpected-response", (_req, res) => {
        clearTimeout(timer);
        ws.terminate();
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
      });
      // One listener for the socket's life: before the open an error fails the open, after it the
      // error is a problem (and the close that follows wakes the waiters).
      ws.on("error", (err) => {
        clearTimeout(timer);
        if (this.#ws === ws) this.problems.push(`socket error: ${err.message}`);
        else reject(err);
      });
    });
  }

  #onFrame(text: string): void {
    const at = performance.now();
    const m = JSON.parse(text) as ServerMessage;
    this.counts.set(m.type, (this.counts.get(m.type) ?? 0) + 1);
    if ("seq" in m && typeof m.seq === "number") {
      if (m.seq !== this.lastSeq + 1) this.problems.push(`seq ${m.seq} after ${this.lastSeq} (${m.type})`);
      if (m.seq > this.lastSeq) this.lastSeq = m.seq;
    }
    this.#o.onEvent?.(m, at);
    const id = "id" in m ? m.id : undefined;
    if (id !== undefined) {
      const pending = this.#pending.get(id);
      if (pending) {
        this.#pending.delete(id);
        clearTimeout(pending.timer);
        if (m.type === "error") pending.reject(new RequestError(m.code, m.message));
        else pending.resolve(m);
        return;
      }
      if (this.#unanswered.delete(id)) {
        if (m.type === "ok") this.okCount++;
        else this.problems.push(`reply to ${id}: ${JSON.stringify(m)}`);
        if (this.#unanswered.size === 0) this.#wake();
        return;
      }
    }
    if (m.type === "error") {
      this.problems.push(`unexpected error: ${JSON.stringify(m)}`);
      return;
    }
    if ((this.#o.keep ?? defaultKeep)(m)) {
      this.#inbox.push(m);
      this.#wake();
    }
  }

  #sendAck(): void {
    if (this.lastSeq <= this.#ackedSeq || this.#ws?.readyState !== WebSocket.OPEN) return;
    this.#ackedSeq = this.lastSeq;
    this.#ws.send(JSON.stringify({ type: "ack", seq: this.lastSeq }));
  }

  #stopAck(): void {
    if (this.#ackTimer) clearInterval(this.#ackTimer);
    this.#ackTimer = null;
  }

  #wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
