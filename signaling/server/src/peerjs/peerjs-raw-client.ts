/**
 * A PeerJS protocol client on a real socket, for the face's tests: sends raw objects or text,
 * checks every frame it receives against {@link PeerJsServerMessageSchema}, and waits for the next
 * frame matching a predicate (with a timeout, never forever). Tests only.
 */
import { WebSocket } from "ws";
import { PeerJsServerMessageSchema, type PeerJsServerMessage } from "./peerjs-protocol.ts";

/** Builds `ws://…{path}/peerjs?key=&id=&token=` for a pod's HTTP base URL; `null` leaves a parameter out. */
export function peerJsUrl(httpUrl: string, params: { id?: string | null; token?: string | null; key?: string | null }, path = "/peerjs"): string {
  const url = new URL(`${httpUrl.replace(/^http/, "ws")}${path}/peerjs`);
  const { id = "peer", token = "secret-token", key = "peerjs" } = params;
  if (key !== null) url.searchParams.set("key", key);
  if (id !== null) url.searchParams.set("id", id);
  if (token !== null) url.searchParams.set("token", token);
  url.searchParams.set("version", "1.5.5");
  return url.href;
}

/** One PeerJS socket of a test. */
export class PeerJsRawClient {
  readonly ws: WebSocket;
  /** Every frame received, in order. */
  readonly received: PeerJsServerMessage[] = [];
  /** Frames that did not match the server schema (a test failure by itself). */
  readonly malformed: string[] = [];
  #cursor = 0;
  readonly #consumed = new Set<number>();
  #waiters: Array<() => void> = [];
  closeCode: number | null = null;
  closeReason = "";
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, options: { origin?: string } = {}) {
    this.ws = new WebSocket(url, options.origin ? { origin: options.origin } : {});
    this.ws.on("message", (data) => {
      const text = String(data);
      const parsed = PeerJsServerMessageSchema.safeParse(JSON.parse(text));
      if (parsed.success) this.received.push(parsed.data);
      else this.malformed.push(text);
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

  sendText(text: string): void {
    this.ws.send(text);
  }

  /** The next unconsumed frame for which `match` holds; rejects after `timeoutMs` or on close. */
  async next(match: (m: PeerJsServerMessage) => boolean = () => true, timeoutMs = 3000): Promise<PeerJsServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = this.#cursor; i < this.received.length; i++) {
        if (this.#consumed.has(i)) continue;
        const m = this.received[i] as PeerJsServerMessage;
        if (match(m)) {
          this.#consumed.add(i);
          while (this.#consumed.has(this.#cursor)) this.#consumed.delete(this.#cursor++);
          return m;
        }
      }
      if (this.closeCode !== null) throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) before the expected frame; got ${JSON.stringify(this.unconsumed())}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a frame; unconsumed: ${JSON.stringify(this.unconsumed()).slice(0, 500)}`);
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
  nextOf<T extends PeerJsServerMessage["type"]>(type: T, timeoutMs = 3000): Promise<PeerJsServerMessage & { type: T }> {
    return this.next((m) => m.type === type, timeoutMs) as Promise<PeerJsServerMessage & { type: T }>;
  }

  /** Frames received and not consumed yet. */
  unconsumed(): PeerJsServerMessage[] {
    return this.received.filter((_, i) => i >= this.#cursor && !this.#consumed.has(i));
  }

  /** Closes the socket with `code` and waits for the close. */
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
