import { WebSocket } from "ws";
import type { ServerMessage, ServerMessageOf, ServerMessageType } from "@switchboard/protocol";

/**
 * A protocol-level test client on a real socket: sends raw objects or text, records every frame it
 * receives, and waits for the next frame matching a predicate (with a timeout, never forever).
 * Tests only; applications use the SDK.
 */
export class RawClient {
  readonly ws: WebSocket;
  /** Every parsed frame received, in order. */
  readonly received: ServerMessage[] = [];
  #cursor = 0;
  readonly #consumed = new Set<number>();
  #waiters: Array<() => void> = [];
  closeCode: number | null = null;
  closeReason = "";
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, options: { protocols?: string[]; headers?: Record<string, string>; origin?: string } = {}) {
    this.ws = new WebSocket(url, options.protocols ?? [], {
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.origin ? { origin: options.origin } : {}),
    });
    this.ws.on("message", (data) => {
      this.received.push(JSON.parse(String(data)) as ServerMessage);
      this.#wake();
    });
    this.closed = new Promise((resolve) => {
      this.ws.on("close", (code, reason) => {
        this.closeCode = code;
        this.closeReason = String(reason);
        this.#wake();
        resolve({ code, reason: String(reason) });
      });
    });
    this.ws.on("error", () => this.#wake());
  }

  /** Resolves when the socket is open; rejects with the HTTP status on a refused upgrade. */
  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState === WebSocket.OPEN) return resolve();
      this.ws.once("open", () => resolve());
      this.ws.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
      this.ws.once("error", reject);
    });
  }

  send(message: object): void {
    this.ws.send(JSON.stringify(message));
  }

  sendText(text: string | Buffer): void {
    this.ws.send(text);
  }

  /**
   * The next not-yet-consumed frame for which `match` holds (frames before it stay queued).
   * Rejects after `timeoutMs` or when the socket closes first.
   */
  async next<T extends ServerMessage = ServerMessage>(match: (m: ServerMessage) => boolean = () => true, timeoutMs = 3000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = this.#cursor; i < this.received.length; i++) {
        if (this.#consumed.has(i)) continue;
        const m = this.received[i] as ServerMessage;
        if (match(m)) {
          this.#consumed.add(i);
          while (this.#consumed.has(this.#cursor)) this.#consumed.delete(this.#cursor++);
          return m as T;
        }
      }
      if (this.closeCode !== null) throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) before the expected frame`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a frame; unconsumed: ${JSON.stringify(this.received.filter((_, i) => i >= this.#cursor && !this.#consumed.has(i))).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next unconsumed frame of `type`. */
  nextOf<T extends ServerMessageType>(type: T, timeoutMs = 3000): Promise<ServerMessageOf<T>> {
    return this.next<ServerMessageOf<T>>((m) => m.type === type, timeoutMs);
  }

  /** Sends a request with `id` and resolves its reply (any frame echoing the id). */
  async request(message: Record<string, unknown>, timeoutMs = 3000): Promise<ServerMessage> {
    const id = (message["id"] as string | undefined) ?? `r${Math.random().toString(36).slice(2)}`;
    this.send({ ...message, id });
    return this.next((m) => "id" in m && m.id === id, timeoutMs);
  }

  /** Opens a session with `hello`; resolves the welcome. */
  async hello(token: string, extra: Record<string, unknown> = {}): Promise<ServerMessageOf<"welcome">> {
    await this.opened();
    this.send({ type: "hello", v: 1, token, ...extra });
    return this.nextOf("welcome");
  }

  /** Closes the socket and waits for the close. */
  async close(code = 1000): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close(code);
    await this.closed;
  }

  /** Destroys the TCP connection without a close frame (a network drop). */
  drop(): void {
    this.ws.terminate();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
