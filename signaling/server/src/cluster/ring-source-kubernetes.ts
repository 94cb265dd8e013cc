/**
 * The ring from the operator's ConfigMap, read through the Kubernetes API: one GET, then a watch
 * of that one object, so a new version reaches the pod within one API server round trip (a mounted
 * ConfigMap file is refreshed only every kubelet sync, up to a minute or more: too slow).
 *
 * The watch is plain HTTP (`node:http`/`node:https` with the credentials of a `KubeConfig`), not
 * the client's `Watch` class: in client-node 1.4 that class drops its own timeout signal and
 * ignores lines it cannot parse, and this source needs its own stall guard and error path anyway.
 *
 * Lifecycle of the follower (one restart path for every end of a watch):
 *
 * | event                                           | then                                           |
 * |-------------------------------------------------|------------------------------------------------|
 * | the server ends the watch (`timeoutSeconds`)    | wait, watch again from the last resourceVersion |
 * | network error, HTTP error, ERROR event          | report it, wait, watch again from the last one |
 * | 410 Gone (HTTP status or ERROR event code 410)  | report it, wait, GET again (relist), then watch |
 * | nothing received for `timeoutSeconds` + slack   | abort, report a stall, wait, watch again       |
 * | `stop()`                                        | abort the request, cancel the wait, done       |
 *
 * "Wait" is capped exponential backoff with jitter: 250 ms doubling to 10 s, back to the start
 * after any event or bookmark, so a healthy watch that the server ends is renewed within 250 ms.
 *
 * @module
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { KubeConfig } from "@kubernetes/client-node";
import { RING_DOCUMENT_KEY, parseRingDocument, type RingDocument } from "@switchboard/ring";
import { monotonic, type RingSource } from "./ring-source.ts";

/** @default how long the API server keeps one watch open, in seconds */
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 240;
/** @default how long past its timeout a silent watch is presumed dead, in ms */
export const DEFAULT_WATCH_STALL_SLACK_MS = 30_000;
/** @default first restart delay, in ms */
export const DEFAULT_WATCH_BACKOFF_INITIAL_MS = 250;
/** @default longest restart delay, in ms */
export const DEFAULT_WATCH_BACKOFF_MAX_MS = 10_000;
/** @default timeout of a GET, and of a watch until its response headers, in ms */
export const DEFAULT_KUBE_REQUEST_TIMEOUT_MS = 10_000;

// A ConfigMap holds at most 1 MiB of data; its JSON escaping and metadata stay well under this.
const MAX_LINE_CHARS = 8 * 1024 * 1024;

/** Options of {@link KubernetesRingSource}. */
export interface KubernetesRingSourceOptions {
  /** The namespace of the ConfigMap. @default the namespace of the kubeconfig's current context (in a pod: its own) */
  readonly namespace?: string;
  /** The ConfigMap's name; the document is its key `ring.json`. */
  readonly name: string;
  /** API server and credentials. @default `new KubeConfig()` with `loadFromDefault()` (KUBECONFIG, else the in-cluster service account) */
  readonly kubeConfig?: KubeConfig;
  /** How long the API server keeps one watch open before ending it, in seconds. @default 240 */
  readonly watchTimeoutSeconds?: number;
  /** A watch that received nothing (no event, no bookmark) for its timeout plus this is aborted, in ms. @default 30000 */
  readonly stallSlackMs?: number;
  /** First restart delay, in ms; doubles with each restart that saw no event. @default 250 */
  readonly backoffInitialMs?: number;
  /** Longest restart delay, in ms. @default 10000 */
  readonly backoffMaxMs?: number;
  /** Timeout of a GET, and of a watch request until its response headers, in ms. @default 10000 */
  readonly requestTimeoutMs?: number;
  /** The jitter's source of randomness, in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/** Codes of {@link KubernetesRingSourceError}. */
export type KubernetesRingSourceErrorCode =
  /** The API answered with an HTTP error (`status` says which). */
  | "RING_ERR_KUBE_HTTP"
  /** 410 Gone: the resourceVersion is too old; the source relists. */
  | "RING_ERR_KUBE_GONE"
  /** A watch ERROR event other than 410. */
  | "RING_ERR_KUBE_WATCH"
  /** The watch received nothing for longer than its timeout plus slack. */
  | "RING_ERR_KUBE_STALLED"
  /** A request got no response headers in time. */
  | "RING_ERR_KUBE_TIMEOUT"
  /** The API sent something that is not what it documents (not JSON, unknown event type, no resourceVersion). */
  | "RING_ERR_KUBE_PROTOCOL"
  /** The ConfigMap has no key `ring.json`. */
  | "RING_ERR_KUBE_NO_DOCUMENT"
  /** No namespace was given and the kubeconfig's context has none. */
  | "RING_ERR_KUBE_NO_NAMESPACE"
  /** The ConfigMap was deleted; the last ring stays in force. */
  | "RING_ERR_KUBE_DELETED";

/** What the Kubernetes ring source reports through `onError` (and rejects `start` with). */
export class KubernetesRingSourceError extends Error {
  override readonly name = "KubernetesRingSourceError";
  /** Stable code to match on. */
  readonly code: KubernetesRingSourceErrorCode;
  /** The HTTP status or the ERROR event's code, when there is one. */
  readonly status: number | undefined;

  constructor(code: KubernetesRingSourceErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
  }
}

/**
 * The restart delay after `failures` restarts in a row without an event: `initialMs · 2^failures`
 * capped at `maxMs`, then jittered into its upper half ("equal jitter"), so pods that lost the API
 * server together do not come back in step.
 *
 * @param failures restarts since the last event (0 for the first)
 * @param random a number in [0, 1)
 * @returns the delay in ms, in [d/2, d) where d is the capped delay
 */
export function watchBackoffMs(failures: number, initialMs: number, maxMs: number, random: number): number {
  const capped = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 30));
  return capped / 2 + (capped / 2) * random;
}

interface ConfigMapObject {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly data?: Readonly<Record<string, string>>;
}

interface WatchEvent {
  readonly type?: string;
  readonly object?: ConfigMapObject & { readonly code?: number; readonly message?: string; readonly reason?: string };
}

/**
 * The ring from a ConfigMap key `ring.json`, read and watched through the Kubernetes API; see the
 * module comment for the watch's restart rules.
 *
 * Every new version is delivered once, in order, never an older one (an older document written to
 * the ConfigMap is ignored). An invalid document, a missing key or the ConfigMap's deletion are
 * reported through `onError` and the last good version stays in force.
 */
export class KubernetesRingSource implements RingSource {
  readonly #namespace: string;
  readonly #name: string;
  readonly #kc: KubeConfig;
  readonly #watchTimeoutSeconds: number;
  readonly #stallMs: number;
  readonly #backoffInitialMs: number;
  readonly #backoffMaxMs: number;
  readonly #requestTimeoutMs: number;
  readonly #random: () => number;
  #resourceVersion: string | undefined;
  #failures = 0;
  #stopped = false;
  #lists = 0;
  #watches = 0;
  /** Aborts the request in flight (GET or watch). */
  #attempt: AbortController | null = null;
  /** The backoff wait in progress: its timer and how to end it early. */
  #wait: { timer: ReturnType<typeof setTimeout>; wake: () => void } | null = null;
  #following: Promise<void> | null = null;

  /**
   * @throws when no `kubeConfig` is given and the default one cannot be loaded (a bad KUBECONFIG
   *   file), or {@link KubernetesRingSourceError} `RING_ERR_KUBE_NO_NAMESPACE`
   */
  constructor(options: KubernetesRingSourceOptions) {
    this.#kc = options.kubeConfig ?? loadDefaultKubeConfig();
    const namespace = options.namespace ?? this.#kc.getContextObject(this.#kc.getCurrentContext())?.namespace;
    if (!namespace) throw new KubernetesRingSourceError("RING_ERR_KUBE_NO_NAMESPACE", `no namespace for ConfigMap ${options.name}: set one (the kubeconfig's context has none)`);
    this.#namespace = namespace;
    this.#name = options.name;
    this.#watchTimeoutSeconds = options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS;
    this.#stallMs = this.#watchTimeoutSeconds * 1000 + (options.stallSlackMs ?? DEFAULT_WATCH_STALL_SLACK_MS);
    this.#backoffInitialMs = options.backoffInitialMs ?? DEFAULT_WATCH_BACKOFF_INITIAL_MS;
    this.#backoffMaxMs = options.backoffMaxMs ?? DEFAULT_WATCH_BACKOFF_MAX_MS;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_KUBE_REQUEST_TIMEOUT_MS;
    this.#random = options.random ?? Math.random;
  }

  /** GETs made so far (the first, and one per relist after a 410). */
  get lists(): number {
    return this.#lists;
  }

  /** Watch requests made so far. */
  get watches(): number {
    return this.#watches;
  }

  /**
   * GETs the ConfigMap and starts watching it.
   *
   * @returns the current document
   * @throws {KubernetesRingSourceError} when the GET fails, the ConfigMap or its key is missing
   * @throws {RingDocumentError} when the document is invalid
   */
  async start(onChange: (doc: RingDocument) => void, onError: (err: Error) => void): Promise<RingDocument> {
    if (this.#following || this.#stopped) throw new Error("KubernetesRingSource: start() may be called once, before stop()");
    const m = monotonic(onChange);
    const first = documentOf(await this.#get(), this.#where());
    m.deliver(first);
    this.#following = this.#follow(m.deliver, m.last, onError).catch((err: unknown) => onError(err as Error));
    return first;
  }

  /** Aborts the request in flight and the wait between watches; resolves once the follower ended. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#attempt?.abort(new Error("ring source stopped"));
    if (this.#wait) {
      clearTimeout(this.#wait.timer);
      this.#wait.wake();
    }
    await this.#following;
  }

  #where(): string {
    return `ConfigMap ${this.#namespace}/${this.#name}`;
  }

  /** Watches until stopped; every end of a watch, normal or not, comes back here. */
  async #follow(deliver: (doc: RingDocument) => void, last: () => number, onError: (err: Error) => void): Promise<void> {
    while (!this.#stopped) {
      try {
        if (this.#resourceVersion === undefined) {
          const cm = await this.#get();
          try {
            deliver(documentOf(cm, this.#where()));
          } catch (err) {
            onError(err as Error);
          }
        }
        await this.#watch((event) => this.#event(event, deliver, last, onError));
      } catch (err) {
        if (this.#stopped) break;
        // 410: the resourceVersion fell out of the server's history; start over from a GET.
        if (err instanceof KubernetesRingSourceError && err.code === "RING_ERR_KUBE_GONE") this.#resourceVersion = undefined;
        onError(err as Error);
      }
      if (this.#stopped) break;
      const delayMs = watchBackoffMs(this.#failures, this.#backoffInitialMs, this.#backoffMaxMs, this.#random());
      this.#failures += 1;
      await new Promise<void>((wake) => {
        this.#wait = { timer: setTimeout(wake, delayMs), wake };
      });
      this.#wait = null;
    }
  }

  #event(event: WatchEvent, deliver: (doc: RingDocument) => void, last: () => number, onError: (err: Error) => void): void {
    const { type, object } = event;
    if (type === "ERROR") {
      const code = object?.code;
      const message = `watch of ${this.#where()} failed: ${code ?? "?"} ${object?.reason ?? ""} ${object?.message ?? ""}`.trim();
      throw new KubernetesRingSourceError(code === 410 ? "RING_ERR_KUBE_GONE" : "RING_ERR_KUBE_WATCH", message, code === undefined ? {} : { status: code });
    }
    if (type !== "ADDED" && type !== "MODIFIED" && type !== "DELETED" && type !== "BOOKMARK") {
      throw new KubernetesRingSourceError("RING_ERR_KUBE_PROTOCOL", `watch of ${this.#where()}: unknown event type ${JSON.stringify(type)}`);
    }
    const resourceVersion = object?.metadata?.resourceVersion;
    if (typeof resourceVersion !== "string" || resourceVersion === "") {
      throw new KubernetesRingSourceError("RING_ERR_KUBE_PROTOCOL", `watch of ${this.#where()}: ${type} event without a resourceVersion`);
    }
    this.#resourceVersion = resourceVersion;
    this.#failures = 0;
    if (type === "BOOKMARK") return;
    if (type === "DELETED") {
      onError(new KubernetesRingSourceError("RING_ERR_KUBE_DELETED", `${this.#where()} was deleted; ring version ${last()} stays in force`));
      return;
    }
    try {
      deliver(documentOf(object ?? {}, this.#where()));
    } catch (err) {
      onError(err as Error);
    }
  }

  /** GETs the ConfigMap; remembers its resourceVersion. */
  async #get(): Promise<ConfigMapObject> {
    this.#lists += 1;
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/configmaps/${encodeURIComponent(this.#name)}`;
    const attempt = new AbortController();
    this.#attempt = attempt;
    const timer = setTimeout(() => attempt.abort(this.#timeout("GET")), this.#requestTimeoutMs);
    try {
      const res = await this.#request(path, attempt.signal);
      const text = await readBody(res);
      if (res.statusCode !== 200) throw httpError(res.statusCode ?? 0, text, `GET ${this.#where()}`);
      let cm: ConfigMapObject;
      try {
        cm = JSON.parse(text) as ConfigMapObject;
      } catch (err) {
        throw new KubernetesRingSourceError("RING_ERR_KUBE_PROTOCOL", `GET ${this.#where()}: the answer is not JSON`, { cause: err });
      }
      const resourceVersion = cm.metadata?.resourceVersion;
      if (typeof resourceVersion !== "string" || resourceVersion === "") {
        throw new KubernetesRingSourceError("RING_ERR_KUBE_PROTOCOL", `GET ${this.#where()}: no metadata.resourceVersion`);
      }
      this.#resourceVersion = resourceVersion;
      return cm;
    } catch (err) {
      throw attempt.signal.aborted ? attempt.signal.reason : err;
    } finally {
      clearTimeout(timer);
      attempt.abort();
      if (this.#attempt === attempt) this.#attempt = null;
    }
  }

  /**
   * One watch request from the last resourceVersion, each event handed to `onEvent` (which throws
   * to end the watch). Resolves when the server ends the watch; rejects on any error.
   */
  async #watch(onEvent: (event: WatchEvent) => void): Promise<void> {
    this.#watches += 1;
    const query = new URLSearchParams({
      watch: "true",
      fieldSelector: `metadata.name=${this.#name}`,
      resourceVersion: this.#resourceVersion ?? "",
      allowWatchBookmarks: "true",
      timeoutSeconds: String(this.#watchTimeoutSeconds),
    });
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/configmaps?${query.toString()}`;
    const attempt = new AbortController();
    this.#attempt = attempt;
    // Until the response headers: the request timeout. Then: the stall guard, re-armed by every chunk.
    let timer = setTimeout(() => attempt.abort(this.#timeout("watch")), this.#requestTimeoutMs);
    try {
      const res = await this.#request(path, attempt.signal, true);
      if (res.statusCode !== 200) throw httpError(res.statusCode ?? 0, await readBody(res), `watch of ${this.#where()}`);
      clearTimeout(timer);
      const stalled = new KubernetesRingSourceError(
        "RING_ERR_KUBE_STALLED",
        `watch of ${this.#where()} received nothing for ${this.#stallMs} ms (its timeout is ${this.#watchTimeoutSeconds} s): restarting it`,
      );
      timer = setTimeout(() => attempt.abort(stalled), this.#stallMs);
      res.setEncoding("utf8");
      let pending = "";
      for await (const chunk of res as AsyncIterable<string>) {
        timer.refresh();
        pending += chunk;
        let newline = pending.indexOf("\n");
        while (newline >= 0) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          if (line !== "") onEvent(parseEvent(line, this.#where()));
          newline = pending.indexOf("\n");
        }
        if (pending.length > MAX_LINE_CHARS) {
          throw new KubernetesRingSourceError("RING_ERR_KUBE_PROTOCOL", `watch of ${this.#where()}: an event longer than ${MAX_LINE_CHARS} characters`);
        }
      }
      if (pending.trim() !== "") onEvent(parseEvent(pending.trim(), this.#where()));
    } catch (err) {
      throw attempt.signal.aborted ? attempt.signal.reason : err;
    } finally {
      clearTimeout(timer);
      // Destroys the socket if the response was not read to its end (an event handler threw).
      attempt.abort();
      if (this.#attempt === attempt) this.#attempt = null;
    }
  }

  #timeout(what: string): KubernetesRingSourceError {
    return new KubernetesRingSourceError("RING_ERR_KUBE_TIMEOUT", `${what} of ${this.#where()}: no answer within ${this.#requestTimeoutMs} ms`);
  }

  /** Sends a GET to the API server with the kubeconfig's credentials; resolves with the response (headers read). */
  async #request(path: string, signal: AbortSignal, keepAlive = false): Promise<IncomingMessage> {
    const cluster = this.#kc.getCurrentCluster();
    if (!cluster) throw new KubernetesRingSourceError("RING_ERR_KUBE_HTTP", "the kubeconfig has no current cluster");
    // Certificates, bearer token (re-read from the service account's file as it rotates) and a
    // fresh agent without keep-alive, so nothing of a request outlives it.
    const options: RequestOptions = {};
    await this.#kc.applyToHTTPSOptions(options);
    signal.throwIfAborted();
    const url = new URL(cluster.server.replace(/\/+$/, "") + path);
    const send = url.protocol === "http:" ? httpRequest : httpsRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { ...options, method: "GET", headers: { ...options.headers, accept: "application/json" }, signal });
      // A watch is quiet for minutes: TCP keep-alive finds a dead peer before the stall guard does.
      if (keepAlive) req.once("socket", (socket) => socket.setKeepAlive(true, 30_000));
      req.once("response", resolve);
      // Kept for the request's whole life: aborting it, even once answered, emits an error.
      req.on("error", reject);
      req.end();
    });
  }
}

/** KUBECONFIG (or ~/.kube/config), else the in-cluster service account. */
function loadDefaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** The document of a ConfigMap object. */
function documentOf(cm: ConfigMapObject, where: string): RingDocument {
  const text = cm.data?.[RING_DOCUMENT_KEY];
  if (typeof text !== "string") throw new KubernetesRingSourceError("RING_ERR_KUBE_NO_DOCUMENT", `${where} has no key ${RING_DOCUMENT_KEY}`);
  return parseRingDocument(text);
}

function parseEvent(line: string, where: string): WatchEvent {
  try {
    const event: unknown = JSON.parse(line);
    if (typeof event === "object" && event !== null) return event as WatchEvent;
  } catch (err) {
    throw new KubernetesRingSourceError("RING_ERR_KUBE_PROTOCOL", `watch of ${where}: an event that is not JSON`, { cause: err });
  }
  throw new KubernetesRingSourceError("RING_ERR_KUBE_PROTOCOL", `watch of ${where}: an event that is not an object`);
}

/** The error of a non-200 answer; 410 is {@link KubernetesRingSourceError} code `RING_ERR_KUBE_GONE`. */
function httpError(status: number, body: string, what: string): KubernetesRingSourceError {
  let message = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === "string") message = parsed.message;
  } catch {
    // Not a Status object: the raw text (cut) is the message.
  }
  return new KubernetesRingSourceError(status === 410 ? "RING_ERR_KUBE_GONE" : "RING_ERR_KUBE_HTTP", `${what}: HTTP ${status}: ${message}`, { status });
}

/** Reads a (small) response body as text. */
async function readBody(res: IncomingMessage): Promise<string> {
  res.setEncoding("utf8");
  let text = "";
  for await (const chunk of res as AsyncIterable<string>) {
    text += chunk;
    if (text.length > MAX_LINE_CHARS) throw new KubernetesRingSourceError("RING_ERR_KUBE_PROTOCOL", "an answer longer than the largest ConfigMap");
  }
  return text;
}
