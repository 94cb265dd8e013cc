import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { POD_REPORT_PATH, type PodReport } from "@switchboard/ring";
import { handleAdmin } from "./admin/admin-api.ts";
import { createAuthenticator, type Authenticator } from "./auth/index.ts";
import { parseConfig, type Config, type ConfigInput } from "./config.ts";
import { sendJson } from "./http/json.ts";
import { serveStatic } from "./http/static.ts";
import type { ClusterHosts } from "./cluster/cluster-hosts.ts";
import type { ClusterNode } from "./cluster/cluster-node.ts";
import { Hub } from "./hub.ts";
import { createLogger, type Logger } from "./logger.ts";
import { PodMetrics, type LiveCounts } from "./observability/metrics.ts";
import { PeerJsGateway } from "./peerjs/peerjs-gateway.ts";
import { Gateway } from "./transport/gateway.ts";

/** Options of {@link createSignalingServer}. */
export interface SignalingServerOptions {
  /** Configuration (validated; defaults fill the rest). */
  readonly config: ConfigInput | Config;
  /** Logger; a JSON logger at the configured level by default. */
  readonly log?: Logger;
  /** Authenticator; built from `config.auth` by default. */
  readonly auth?: Authenticator;
  /** Collect Node's default metrics (off in tests that start many pods in one process). @default true */
  readonly defaultMetrics?: boolean;
  /**
   * The pod's metrics, when the caller built them first (main.ts, to hand their cluster part to
   * `connectCluster` before the server exists); the caller then closes them, and `defaultMetrics`
   * does not apply. Built (and closed) here by default.
   */
  readonly metrics?: PodMetrics;
  /**
   * Cluster mode: makes this pod's node for the hub's rooms and sessions (`connectCluster` gives one
   * from `config.cluster`; tests build it over shared in-memory adapters). It is started by
   * `listen()` and stopped by `close()`.
   */
  readonly cluster?: (hosts: ClusterHosts) => ClusterNode;
}

/** A running (or ready to run) signaling pod. */
export interface SignalingServer extends AsyncDisposable {
  readonly config: Config;
  readonly hub: Hub;
  readonly gateway: Gateway;
  /** The PeerJS-server-compatible face (docs/peerjs.md), or null when `peerjs.enabled` is off. */
  readonly peerjs: PeerJsGateway | null;
  readonly metrics: PodMetrics;
  /** This pod's cluster node in cluster mode. */
  readonly cluster: ClusterNode | undefined;
  readonly http: Server;
  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  listen(): Promise<AddressInfo>;
  /** `ws://host:port/v1/ws` once listening. */
  readonly wsUrl: string;
  /** `http://host:port` once listening. */
  readonly httpUrl: string;
  /** True while the pod accepts new sockets. */
  readonly ready: boolean;
  /** SIGTERM behaviour: not ready, paced reconnect hints, deadline, every socket closed. Once only: a second call returns undefined. */
  drain(): Promise<PodDrainOutcome | undefined>;
  /** Closes everything this server started. Idempotent. */
  close(): Promise<void>;
}

/** What a pod's drain did (logged as `drained`; a warning first when the deadline passed). */
export interface PodDrainOutcome {
  readonly durationMs: number;
  /** WebSocket clients told to reconnect elsewhere. */
  readonly hinted: number;
  /** WebSocket clients still connected at the deadline, closed by the pod (0: a clean drain). */
  readonly closedAtDeadline: number;
  /** PeerJS sockets closed (the close is PeerJS's drain hint). */
  readonly peerjsClosed: number;
}

/**
 * Builds a signaling pod: HTTP server (health, readiness, metrics, admin API, demo page) and the
 * WebSocket gateway on the same port. Nothing listens until `listen()`.
 */
export function createSignalingServer(options: SignalingServerOptions): SignalingServer {
  const config = parseConfig(options.config);
  const log = options.log ?? createLogger(config.logLevel, { pod: config.podName });
  const metrics = options.metrics ?? new PodMetrics(config.podName, { defaultMetrics: options.defaultMetrics ?? true });
  const ownsMetrics = options.metrics === undefined;
  const auth = options.auth ?? createAuthenticator(config.auth, log);
  const ownsAuth = options.auth === undefined;
  const makeNode = options.cluster;
  let cluster: ClusterNode | undefined;
  const hub = new Hub({ config, auth, metrics, log, ...(makeNode ? { cluster: (hosts: ClusterHosts) => (cluster = makeNode(hosts)) } : {}) });
  cluster?.onRingVersion((version) => metrics.ringVersion.set(version));
  const gateway = new Gateway({ config, hub, metrics, log });
  const peerjs = config.peerjs.enabled ? new PeerJsGateway({ config, hub, auth, metrics, log, otherConnections: () => gateway.connectionCount }) : null;
  const counts: LiveCounts = {
    connections: () => gateway.connectionCount + (peerjs?.connectionCount ?? 0),
    sessions: () => hub.sessions.size,
    rooms: () => hub.rooms.size,
    calls: () => hub.calls.size,
  };
  metrics.observe(counts);
  const http = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 });
  let address: AddressInfo | null = null;
  let closing: Promise<void> | null = null;
  let drained = false;

  http.on("upgrade", (req, socket, head) => {
    if (peerjs?.handlesUpgrade(new URL(req.url ?? "/", "http://localhost").pathname)) return peerjs.handleUpgrade(req, socket, head);
    gateway.handleUpgrade(req, socket, head);
  });
  http.on("request", (req, res) => {
    void route(req, res).catch((err: unknown) => {
      log.error({ err }, "http handler failed");
      if (!res.headersSent) sendJson(res, 500, { code: "SIG_ERR_INTERNAL", message: "internal error" });
      else res.destroy();
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (path === "/readyz") {
      const ok = server.ready;
      // A missing NATS (bus) or Redis (directory, session store) degrades the pod: cross-pod
      // operations fail fast, but rooms with every member here still work, so readiness reports
      // the breakers without turning the pod away.
      const breakers = cluster ? { bus: cluster.breaker.state, directory: cluster.storeBreaker.state } : undefined;
      return sendJson(res, ok ? 200 : 503, {
        status: ok ? "ready" : "not-ready",
        draining: gateway.draining,
        ...(breakers ? { cluster: { ...breakers, degraded: breakers.bus !== "closed" || breakers.directory !== "closed" } } : {}),
      });
    }
    if (path === POD_REPORT_PATH) return sendJson(res, 200, podReport());
    if (path === "/metrics") {
      metrics.ready.set(server.ready ? 1 : 0);
      const { contentType, body } = await metrics.render();
      res.writeHead(200, { "content-type": contentType });
      res.end(body);
      return;
    }
    if (peerjs?.handlesRequest(path)) return peerjs.handleRequest(req, res, path);
    if (await handleAdmin(req, res, path, hub, config.adminToken, log)) return;
    if (config.demoPage && (await serveStatic(req, res, path))) return;
    sendJson(res, 404, { code: "NOT_FOUND", message: "not found" });
  }

  /** What this pod tells the operator about itself (`GET /status`). */
  function podReport(): PodReport {
    return {
      pod: config.podName,
      ready: server.ready,
      draining: gateway.draining,
      ring: cluster?.ringStatus ?? { version: -1, state: null },
      connections: counts.connections(),
      sessions: counts.sessions(),
      rooms: counts.rooms(),
      eventLoopLagP99Ms: metrics.eventLoopLagP99Ms(),
    };
  }

  const server: SignalingServer = {
    config,
    hub,
    gateway,
    peerjs,
    metrics,
    cluster,
    http,
    get wsUrl() {
      return `ws://${hostOf(address)}:${address?.port ?? 0}/v1/ws`;
    },
    get httpUrl() {
      return `http://${hostOf(address)}:${address?.port ?? 0}`;
    },
    get ready() {
      return address !== null && !gateway.draining;
    },
    async listen() {
      await cluster?.start();
      return new Promise<AddressInfo>((resolve, reject) => {
        http.once("error", reject);
        http.listen(config.port, config.host, () => {
          http.off("error", reject);
          address = http.address() as AddressInfo;
          gateway.start();
          peerjs?.start();
          metrics.ready.set(1);
          log.info({ host: address.address, port: address.port }, "listening");
          resolve(address);
        });
      });
    },
    async drain() {
      if (drained) return undefined;
      drained = true;
      metrics.ready.set(0);
      log.info({ connections: gateway.connectionCount }, "draining");
      const [ws, pj] = await Promise.all([gateway.drain(), peerjs?.drain()]);
      const outcome = { durationMs: ws.durationMs, hinted: ws.hinted, closedAtDeadline: ws.closedAtDeadline, peerjsClosed: pj?.closed ?? 0 };
      // A drain past its deadline still ends (the pod closed the sockets left): said as a warning.
      if (ws.closedAtDeadline > 0) log.warn(outcome, "drain deadline passed: the sockets left were closed");
      log.info(outcome, "drained");
      return outcome;
    },
    close() {
      closing ??= (async () => {
        metrics.ready.set(0);
        await gateway.close();
        await peerjs?.close();
        hub.close();
        await cluster?.stop();
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
        if (ownsAuth) await auth.close();
        if (ownsMetrics) metrics.close();
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return server.close();
    },
  };
  return server;
}

function hostOf(address: AddressInfo | null): string {
  if (!address) return "127.0.0.1";
  if (address.family === "IPv6") return address.address === "::" ? "[::1]" : `[${address.address}]`;
  return address.address === "0.0.0.0" ? "127.0.0.1" : address.address;
}
