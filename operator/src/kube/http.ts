/**
 * A small typed client for raw Kubernetes API requests with a kubeconfig's credentials: JSON
 * requests that reject with the API's status, reason and message, and watch streams parsed line
 * by line. It exists beside `@kubernetes/client-node` (whose 1.x watch swallows malformed lines
 * and never applies its own timeout) so that the operator sees every status code and every bad
 * line, and every request has a deadline.
 *
 * @module
 */
import http from "node:http";
import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";
import { OperatorError, isOperatorError } from "../errors.ts";
import { WATCH_EVENT_TYPES, type KubeObject, type KubeStatus, type WatchEvent } from "./wire.ts";

/** HTTP methods of the Kubernetes API. */
export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** Query parameters; `undefined` values are left out. */
export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

/** Options of one {@link KubeHttp.request}. */
export interface KubeRequestOptions {
  /** Query parameters appended to `path`. */
  readonly query?: Query;
  /** Request body: a string or bytes are sent as they are, anything else as JSON. */
  readonly body?: unknown;
  /** Content type of `body`. @default "application/json" */
  readonly contentType?: string;
  /** Aborts the request; it then rejects with `OP_ERR_ABORTED`. */
  readonly signal?: AbortSignal;
  /** Deadline for the whole exchange (connect, answer, body), in ms. @default the client's `defaultTimeoutMs` */
  readonly timeoutMs?: number;
}

/** Options of one {@link KubeHttp.watchStream}. */
export interface WatchStreamOptions {
  /** Deadline for the answer's headers, in ms. @default 30000 */
  readonly connectTimeoutMs?: number;
  /**
   * The stream is aborted with `OP_ERR_WATCH_STALLED` when nothing arrives for this long, in ms
   * (set it above the watch's `timeoutSeconds`: the server ends a healthy watch by then).
   * @default 330000
   */
  readonly idleTimeoutMs?: number;
  /** A line longer than this fails the stream with `OP_ERR_WATCH`. @default 16 MiB */
  readonly maxLineBytes?: number;
}

/** Options of {@link KubeHttp.fromKubeConfig}. */
export interface KubeHttpOptions {
  /** Timeout of a request that names none, in ms. @default 30000 */
  readonly defaultTimeoutMs?: number;
  /** `User-Agent` header. @default "switchboard-operator" */
  readonly userAgent?: string;
}

/** @default per-request timeout in ms */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** @default how long a watch may take to answer with its headers, in ms */
export const DEFAULT_WATCH_CONNECT_TIMEOUT_MS = 30_000;
/** @default how long a watch may stay silent before it counts as stalled, in ms (300 s + 30 s) */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 330_000;
/** @default longest watch line accepted, in bytes (etcd's largest object is 1.5 MiB) */
export const DEFAULT_MAX_WATCH_LINE_BYTES = 16 * 2 ** 20;
/** @default TCP keep-alive probe delay of pooled connections, in ms */
export const DEFAULT_TCP_KEEPALIVE_MS = 30_000;

/**
 * Raw Kubernetes API client over one kubeconfig context. TLS material (CA, client certificate)
 * is read once into a keep-alive agent; the `Authorization` header is computed for every request
 * through `kc.applyToHTTPSOptions`, so rotated token files and exec plugins keep working. Every
 * request has a deadline; {@link KubeHttp.close} aborts whatever is in flight.
 */
export class KubeHttp {
  /** The API server's base URL (a path prefix in it is kept). */
  readonly server: URL;
  readonly #kc: KubeConfig;
  readonly #agent: http.Agent;
  readonly #transport: typeof http | typeof https;
  readonly #defaultTimeoutMs: number;
  readonly #userAgent: string;
  readonly #closed = new AbortController();

  private constructor(kc: KubeConfig, server: URL, agent: http.Agent, options: KubeHttpOptions) {
    this.#kc = kc;
    this.server = server;
    this.#agent = agent;
    this.#transport = server.protocol === "https:" ? https : http;
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#userAgent = options.userAgent ?? "switchboard-operator";
  }

  /**
   * Builds a client for the kubeconfig's current context. Rejects with `OP_ERR_CONFIG` when it
   * has no current cluster, names a proxy (not supported here), or uses plain `http:` without
   * `insecure-skip-tls-verify` (the rule of `@kubernetes/client-node`).
   */
  static async fromKubeConfig(kc: KubeConfig, options: KubeHttpOptions = {}): Promise<KubeHttp> {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new OperatorError("OP_ERR_CONFIG", "the kubeconfig has no current cluster");
    if (cluster.proxyUrl !== undefined && cluster.proxyUrl !== "") {
      throw new OperatorError("OP_ERR_CONFIG", `cluster ${cluster.name}: proxy-url is not supported by the operator's client`);
    }
    let server: URL;
    try {
      server = new URL(cluster.server);
    } catch (err) {
      throw new OperatorError("OP_ERR_CONFIG", `cluster ${cluster.name}: bad server URL ${cluster.server}`, { cause: err });
    }
    if (server.protocol === "http:" && cluster.skipTLSVerify !== true) {
      throw new OperatorError("OP_ERR_CONFIG", `cluster ${cluster.name}: plain http needs insecure-skip-tls-verify`);
    }
    if (server.protocol !== "http:" && server.protocol !== "https:") {
      throw new OperatorError("OP_ERR_CONFIG", `cluster ${cluster.name}: unsupported scheme ${server.protocol}`);
    }
    const opts: https.RequestOptions = { headers: {} };
    try {
      await kc.applyToHTTPSOptions(opts);
    } catch (err) {
      throw new OperatorError("OP_ERR_CONFIG", `cluster ${cluster.name}: cannot apply the kubeconfig's credentials: ${(err as Error).message}`, { cause: err });
    }
    const pooled = { keepAlive: true, keepAliveMsecs: DEFAULT_TCP_KEEPALIVE_MS, scheduling: "lifo" as const };
    const agent =
      server.protocol === "https:"
        ? new https.Agent({
            ...pooled,
            ...(opts.ca === undefined ? {} : { ca: opts.ca }),
            ...(opts.cert === undefined ? {} : { cert: opts.cert }),
            ...(opts.key === undefined ? {} : { key: opts.key }),
            ...(opts.pfx === undefined ? {} : { pfx: opts.pfx }),
            ...(opts.passphrase === undefined ? {} : { passphrase: opts.passphrase }),
            ...(opts.servername === undefined ? {} : { servername: opts.servername }),
            ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
          })
        : new http.Agent(pooled);
    return new KubeHttp(kc, server, agent, options);
  }

  /**
   * Sends one request and resolves with the parsed JSON answer (`undefined` for an empty body).
   * Rejects with an {@link OperatorError}: `OP_ERR_KUBE_STATUS` for a non-2xx answer (with
   * `status`, the Status `reason` and `apiMessage`), `OP_ERR_KUBE_TIMEOUT` past `timeoutMs`,
   * `OP_ERR_ABORTED` when `signal` aborts or the client closes, `OP_ERR_KUBE_REQUEST` when no
   * answer came (refused, reset, TLS), `OP_ERR_KUBE_RESPONSE` when a 2xx body is not JSON.
   */
  async request<T>(method: HttpMethod, path: string, options: KubeRequestOptions = {}): Promise<T> {
    const what = `${method} ${path}`;
    const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signals = [timeout, this.#closed.signal, ...(options.signal === undefined ? [] : [options.signal])];
    const signal = AbortSignal.any(signals);
    const failure = (err: unknown): OperatorError => {
      if (isOperatorError(err)) return err;
      if (options.signal?.aborted === true || this.#closed.signal.aborted) {
        return new OperatorError("OP_ERR_ABORTED", `${what}: aborted`, { cause: err });
      }
      if (timeout.aborted) return new OperatorError("OP_ERR_KUBE_TIMEOUT", `${what}: no answer within ${timeoutMs} ms`, { cause: err });
      return new OperatorError("OP_ERR_KUBE_REQUEST", `${what}: ${(err as Error).message}`, { cause: err });
    };
    let status: number;
    let text: string;
    try {
      signal.throwIfAborted();
      const payload = encodeBody(options.body);
      const headers = await this.#headers(what);
      if (payload !== undefined) {
        headers["content-type"] = options.contentType ?? "application/json";
        headers["content-length"] = String(payload.byteLength);
      }
      const res = await this.#exchange(method, this.#url(path, options.query), headers, payload, signal);
      status = res.statusCode ?? 0;
      text = await readBody(res);
    } catch (err) {
      throw failure(err);
    }
    if (status < 200 || status > 299) throw statusError(what, status, text);
    if (text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new OperatorError("OP_ERR_KUBE_RESPONSE", `${what}: answer is not JSON: ${excerpt(text)}`, { cause: err, status });
    }
  }

  /**
   * Opens a watch on `path` (`watch=true` is added to `query`) and yields its events in order,
   * parsed line by line. Ends (returns) when the server ends the stream or `signal` aborts.
   * Throws `OP_ERR_KUBE_STATUS` when the watch is refused (410 Gone included),
   * `OP_ERR_KUBE_TIMEOUT` when no answer came within `connectTimeoutMs`, `OP_ERR_KUBE_REQUEST`
   * when it could not connect, `OP_ERR_WATCH` when the stream breaks or a line is not a watch
   * event (never skipped), and `OP_ERR_WATCH_STALLED` after `idleTimeoutMs` of silence. `ERROR`
   * events are yielded, not thrown: the caller decides (a 410 means relist).
   */
  async *watchStream<T extends KubeObject = KubeObject>(
    path: string,
    query: Query,
    signal: AbortSignal,
    options: WatchStreamOptions = {},
  ): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const what = `watch ${path}`;
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_WATCH_CONNECT_TIMEOUT_MS;
    const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_WATCH_LINE_BYTES;
    if (signal.aborted || this.#closed.signal.aborted) return;
    const ac = new AbortController();
    const abort = () => ac.abort();
    signal.addEventListener("abort", abort, { once: true });
    this.#closed.signal.addEventListener("abort", abort, { once: true });
    let timedOut = false;
    let stalled = false;
    let idleTimer: NodeJS.Timeout | undefined;
    const connectTimer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, connectTimeoutMs);
    const stopped = () => signal.aborted || this.#closed.signal.aborted;
    let res: http.IncomingMessage | undefined;
    try {
      try {
        const headers = await this.#headers(what);
        res = await this.#exchange("GET", this.#url(path, { ...query, watch: true }), headers, undefined, ac.signal);
        if (res.statusCode !== 200) throw statusError(what, res.statusCode ?? 0, await readBody(res));
      } catch (err) {
        if (stopped()) return;
        if (isOperatorError(err)) throw err;
        if (timedOut) throw new OperatorError("OP_ERR_KUBE_TIMEOUT", `${what}: no answer within ${connectTimeoutMs} ms`, { cause: err });
        throw new OperatorError("OP_ERR_KUBE_REQUEST", `${what}: ${(err as Error).message}`, { cause: err });
      }
      clearTimeout(connectTimer);
      const body = res;
      const armIdle = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => {
          stalled = true;
          ac.abort();
          body.destroy();
        }, idleTimeoutMs);
      };
      armIdle();
      body.setEncoding("utf8");
      let buffered = "";
      try {
        for await (const chunk of body as AsyncIterable<string>) {
          armIdle();
          buffered += chunk;
          let nl: number;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (line !== "") yield parseWatchLine<T>(line, what);
          }
          if (buffered.length > maxLineBytes) {
            throw new OperatorError("OP_ERR_WATCH", `${what}: a line exceeds ${maxLineBytes} bytes`);
          }
        }
      } catch (err) {
        if (isOperatorError(err)) throw err;
        if (stalled) throw new OperatorError("OP_ERR_WATCH_STALLED", `${what}: silent for ${idleTimeoutMs} ms`, { cause: err });
        if (stopped()) return;
        throw new OperatorError("OP_ERR_WATCH", `${what}: stream broke: ${(err as Error).message}`, { cause: err });
      }
      if (stalled) throw new OperatorError("OP_ERR_WATCH_STALLED", `${what}: silent for ${idleTimeoutMs} ms`);
      if (stopped()) return;
      const last = buffered.trim();
      if (last !== "") yield parseWatchLine<T>(last, what);
    } finally {
      clearTimeout(connectTimer);
      clearTimeout(idleTimer);
      signal.removeEventListener("abort", abort);
      this.#closed.signal.removeEventListener("abort", abort);
      // The consumer may leave the loop early: the request goes with it.
      ac.abort();
      res?.destroy();
    }
  }

  /** Aborts every request and watch in flight and closes pooled connections. Idempotent. */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    this.#agent.destroy();
  }

  /** Same as {@link KubeHttp.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #url(path: string, query: Query | undefined): URL {
    const base = this.server.pathname.replace(/\/+$/, "");
    const url = new URL(this.server.origin + base + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  async #headers(what: string): Promise<Record<string, string>> {
    const opts: https.RequestOptions = { headers: {} };
    try {
      await this.#kc.applyToHTTPSOptions(opts);
    } catch (err) {
      throw new OperatorError("OP_ERR_KUBE_REQUEST", `${what}: credentials: ${(err as Error).message}`, { cause: err });
    }
    const headers: Record<string, string> = { accept: "application/json", "user-agent": this.#userAgent };
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (typeof v === "string" || typeof v === "number") headers[k.toLowerCase()] = String(v);
      else if (Array.isArray(v)) headers[k.toLowerCase()] = v.join(", ");
    }
    if (typeof opts.auth === "string") headers["authorization"] = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    return headers;
  }

  #exchange(method: HttpMethod, url: URL, headers: Record<string, string>, payload: Buffer | undefined, signal: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.#transport.request(url, { method, headers, agent: this.#agent, signal }, resolve);
      req.on("error", reject);
      req.end(payload);
    });
  }
}

function encodeBody(body: unknown): Buffer | undefined {
  if (body === undefined) return undefined;
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body);
  return Buffer.from(JSON.stringify(body));
}

async function readBody(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function excerpt(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** The error for a non-2xx answer, with the Status object's reason and message when it has one. */
function statusError(what: string, status: number, text: string): OperatorError {
  let parsed: KubeStatus | undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null) parsed = value as KubeStatus;
  } catch {
    // Not a Status object (a proxy's or a dying server's answer): its text is the message below.
  }
  const reason = parsed?.reason;
  const apiMessage = parsed?.message ?? (parsed === undefined && text !== "" ? excerpt(text) : undefined);
  return new OperatorError("OP_ERR_KUBE_STATUS", `${what}: ${status}${reason === undefined ? "" : ` ${reason}`}${apiMessage === undefined ? "" : `: ${apiMessage}`}`, {
    status,
    ...(reason === undefined ? {} : { reason }),
    ...(apiMessage === undefined ? {} : { apiMessage }),
  });
}

/** Parses one line of a watch stream; throws `OP_ERR_WATCH` for anything that is not an event. */
function parseWatchLine<T extends KubeObject>(line: string, what: string): WatchEvent<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new OperatorError("OP_ERR_WATCH", `${what}: a line is not JSON: ${excerpt(line)}`, { cause: err });
  }
  const ev = parsed as { type?: unknown; object?: unknown };
  if (typeof ev !== "object" || ev === null || typeof ev.type !== "string" || !WATCH_EVENT_TYPES.has(ev.type) || typeof ev.object !== "object" || ev.object === null) {
    throw new OperatorError("OP_ERR_WATCH", `${what}: a line is not a watch event: ${excerpt(line)}`);
  }
  return ev as WatchEvent<T>;
}
