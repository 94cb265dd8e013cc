/**
 * A TCP proxy on 127.0.0.1 port 0 in front of a real dependency (NATS, Redis), which a test can
 * cut and restore: an outage of one pod's dependency without stopping the shared server. Tests only.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";

/** A proxy to one target: forwards each connection until cut, refuses them while cut. */
export class TcpProxy implements AsyncDisposable {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #cut = false;
  #closed: Promise<void> | null = null;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Listens on 127.0.0.1 port 0 and forwards every connection to `target` (host and port). */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server);
    server.on("connection", (downstream) => proxy.#accept(downstream, target));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    return proxy;
  }

  /** The port clients connect to. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Closes every open connection; new ones are accepted and closed at once until {@link restore}. */
  cut(): void {
    this.#cut = true;
    for (const s of this.#sockets) s.destroy();
  }

  /** Forwards new connections again. */
  restore(): void {
    this.#cut = false;
  }

  /** Stops listening and closes every connection. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.cut();
      this.#server.close(() => resolve());
    });
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #accept(downstream: Socket, target: { host: string; port: number }): void {
    if (this.#cut) {
      downstream.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    for (const s of [downstream, upstream]) {
      this.#sockets.add(s);
      // A reset on one side ends both: the client sees a dropped connection, as in an outage.
      s.on("error", () => undefined);
      s.on("close", () => {
        this.#sockets.delete(s);
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  }
}
