/**
 * List+watch of one resource type into a store, with one restart path for every end and error.
 *
 * ```
 *            ┌───────────── relist (no resourceVersion: first start, or after 410 Gone) ──┐
 *   start ──►│ list (paged) → replace store → synthesise ADDED/MODIFIED/DELETED → synced │
 *            └──────────────────────────────────┬───────────────────────────────────────┘
 *                                               ▼
 *            watch from resourceVersion (allowWatchBookmarks, timeoutSeconds jittered,
 *            stall guard: silent > timeoutSeconds + slack → abort)
 *                                               │ ends / errors / stalls / 410
 *                                               ▼
 *            restart: restarts++, onRestart(reason), backoff with jitter (reset when the
 *            watch delivered something), then watch again (or relist after 410)
 * ```
 *
 * Unlike `@kubernetes/client-node` 1.x's informer it never stays stopped after an error, asks
 * for bookmarks (so quiet watches resume instead of relisting), and cannot stall silently.
 *
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import { OperatorError, hasCode, isOperatorError } from "../errors.ts";
import type { KubeHttp } from "./http.ts";
import { SILENT_LOGGER, errorFields, type KubeLogger } from "./logger.ts";
import { collectionPath, type ResourceType } from "./resources.ts";
import { objectKey, type KubeList, type KubeObject, type KubeStatus } from "./wire.ts";

/** What a subscriber is told: an object appeared, changed or went away. */
export type ReflectorEventType = "ADDED" | "MODIFIED" | "DELETED";

/**
 * A subscriber. For `DELETED`, `obj` is the object's last state (from the watch, or the store's
 * copy when a relist found it gone). Called synchronously, in order; a throw is logged and does
 * not stop the reflector.
 */
export type ReflectorListener<T extends KubeObject> = (type: ReflectorEventType, obj: T) => void;

/**
 * Why the watch was started again: the server ended it (`closed`, the normal end after
 * `timeoutSeconds`), `gone` (410: a full relist follows), `stalled` (the stall guard aborted a
 * silent watch), `list-error` or `watch-error` (anything else: refused, reset, a bad line).
 */
export type RestartReason = "closed" | "gone" | "stalled" | "list-error" | "watch-error";

/** The restart reasons, for metrics that pre-register their label values. */
export const RESTART_REASONS: readonly RestartReason[] = ["closed", "gone", "stalled", "list-error", "watch-error"];

/** Options of a {@link Reflector}. */
export interface ReflectorOptions {
  /** What to list and watch. */
  readonly resource: ResourceType;
  /** Only this namespace. @default all namespaces */
  readonly namespace?: string;
  /** Label selector (`app=x,tier!=y`). */
  readonly labelSelector?: string;
  /** Field selector (`metadata.name=x`). */
  readonly fieldSelector?: string;
  /** Server-side watch timeout, in seconds, jittered up to +20 % per watch. @default 300 */
  readonly watchTimeoutSeconds?: number;
  /** A watch silent for `watchTimeoutSeconds` plus this long is aborted, in ms. @default 30000 */
  readonly stallSlackMs?: number;
  /** First restart delay, in ms. @default 200 */
  readonly initialBackoffMs?: number;
  /** Longest restart delay, in ms. @default 30000 */
  readonly maxBackoffMs?: number;
  /** Timeout of each list page request, in ms. @default 60000 */
  readonly listTimeoutMs?: number;
  /** Items per list page (`limit`). @default 500 */
  readonly pageSize?: number;
  /** Called on every restart, before the backoff wait (for the operator's `watch restarts` metric). */
  readonly onRestart?: (reason: RestartReason, error: unknown) => void;
  /** @default silent */
  readonly logger?: KubeLogger;
  /** Random source in [0, 1) for jitter. @default Math.random */
  readonly random?: () => number;
}

/** @default server-side watch timeout in seconds */
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/** @default extra silence tolerated past the watch timeout, in ms */
export const DEFAULT_STALL_SLACK_MS = 30_000;
/** @default first restart delay in ms */
export const DEFAULT_INITIAL_BACKOFF_MS = 200;
/** @default longest restart delay in ms */
export const DEFAULT_MAX_BACKOFF_MS = 30_000;
/** @default timeout of one list page request in ms */
export const DEFAULT_LIST_TIMEOUT_MS = 60_000;
/** @default list page size */
export const DEFAULT_PAGE_SIZE = 500;

/**
 * The delay before restart number `attempt` (0-based): `min(max, initial · 2^attempt)` with
 * "equal jitter" (a uniform value between half of it and all of it), so that restarts of many
 * reflectors spread out yet never come back to back.
 */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return base / 2 + random() * (base / 2);
}

/**
 * Keeps an up-to-date store of one resource type (by `namespace/name`) from a list and a watch,
 * and tells subscribers about every change. Call {@link Reflector.start}; `synced` resolves once
 * the first list is in; {@link Reflector.stop} aborts whatever is in flight.
 */
export class Reflector<T extends KubeObject = KubeObject> implements AsyncDisposable {
  /** Resolves once the first list is in the store (its ADDED events delivered); rejects with `OP_ERR_ABORTED` when stopped before. */
  readonly synced: Promise<void>;
  readonly #client: KubeHttp;
  readonly #path: string;
  readonly #options: ReflectorOptions;
  readonly #logger: KubeLogger;
  readonly #random: () => number;
  readonly #listeners = new Set<ReflectorListener<T>>();
  readonly #stop = new AbortController();
  readonly #resolveSynced: () => void;
  readonly #rejectSynced: (err: unknown) => void;
  #store = new Map<string, T>();
  #resourceVersion: string | undefined;
  #hasSynced = false;
  #restarts = 0;
  #delivered = false;
  #loop: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;

  constructor(client: KubeHttp, options: ReflectorOptions) {
    this.#client = client;
    this.#options = options;
    this.#path = collectionPath(options.resource, options.namespace);
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#random = options.random ?? Math.random;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.synced = promise;
    // Nobody may be waiting on it when stop() rejects it: that is not an unhandled error.
    promise.catch(() => undefined);
    this.#resolveSynced = resolve;
    this.#rejectSynced = reject;
  }

  /** Starts listing and watching. Idempotent; does nothing after `stop()`. */
  start(): void {
    if (this.#loop !== undefined || this.#stop.signal.aborted) return;
    this.#loop = this.#run();
  }

  /** Adds a subscriber; returns the function that removes it. */
  subscribe(listener: ReflectorListener<T>): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The stored object `namespace/name` (namespace `undefined` for a cluster-scoped type). */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.#store.get(namespace === undefined || namespace === "" ? name : `${namespace}/${name}`);
  }

  /** Every stored object (a snapshot). */
  list(): T[] {
    return [...this.#store.values()];
  }

  /** How many objects the store holds. */
  get size(): number {
    return this.#store.size;
  }

  /** Whether the first list is in. */
  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  /** Where the next watch resumes: the last list's or event's (bookmarks included) resourceVersion. */
  get resourceVersion(): string | undefined {
    return this.#resourceVersion;
  }

  /** How many times the watch was started again, for any reason (see {@link RestartReason}). */
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * Stops: aborts the list or watch in flight and the backoff wait, and resolves once the loop
   * has ended. Subscribers hear nothing after it resolves. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stop.abort();
      if (!this.#hasSynced) this.#rejectSynced(new OperatorError("OP_ERR_ABORTED", `reflector ${this.#path}: stopped before the first list`));
      await this.#loop;
      this.#listeners.clear();
    })();
    return this.#stopped;
  }

  /** Same as {@link Reflector.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #run(): Promise<void> {
    const initialMs = this.#options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    const maxMs = this.#options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
    let attempt = 0;
    while (!this.#stop.signal.aborted) {
      let reason: RestartReason = "closed";
      let error: unknown;
      let listing = false;
      this.#delivered = false;
      try {
        if (this.#resourceVersion === undefined) {
          listing = true;
          await this.#relist();
          listing = false;
        }
        await this.#watch();
      } catch (err) {
        error = err;
        if (isOperatorError(err) && err.status === 410) {
          reason = "gone";
          this.#resourceVersion = undefined;
        } else if (hasCode(err, "OP_ERR_WATCH_STALLED")) reason = "stalled";
        else reason = listing ? "list-error" : "watch-error";
      }
      if (this.#stop.signal.aborted) break;
      // One restart path for every end: count, tell, back off (from the start again once a
      // watch delivered something, so a flapping server cannot make us hammer it).
      if (this.#delivered) attempt = 0;
      const delayMs = backoffDelayMs(attempt, initialMs, maxMs, this.#random);
      attempt++;
      this.#restarts++;
      const fields = { resource: this.#path, reason, restarts: this.#restarts, delayMs: Math.round(delayMs), ...(error === undefined ? {} : errorFields(error)) };
      if (reason === "closed") this.#logger.debug(fields, "watch ended; watching again");
      else this.#logger.warn(fields, "watch restart");
      try {
        this.#options.onRestart?.(reason, error);
      } catch (err) {
        this.#logger.error({ resource: this.#path, ...errorFields(err) }, "onRestart hook threw");
      }
      try {
        await sleep(delayMs, undefined, { signal: this.#stop.signal });
      } catch {
        break; // stopped
      }
    }
  }

  async #relist(): Promise<void> {
    const items: T[] = [];
    let next: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.#client.request<KubeList<T>>("GET", this.#path, {
        query: {
          labelSelector: this.#options.labelSelector,
          fieldSelector: this.#options.fieldSelector,
          limit: this.#options.pageSize ?? DEFAULT_PAGE_SIZE,
          continue: next,
        },
        signal: this.#stop.signal,
        timeoutMs: this.#options.listTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS,
      });
      if (page === undefined || !Array.isArray(page.items)) {
        throw new OperatorError("OP_ERR_KUBE_RESPONSE", `list ${this.#path}: the answer is not a list`);
      }
      // List items carry no apiVersion/kind; watch events do. Give them the same shape.
      const kind = page.kind?.replace(/List$/, "");
      for (const item of page.items) {
        items.push(item.kind === undefined && kind !== undefined ? ({ apiVersion: page.apiVersion, kind, ...item } as T) : item);
      }
      next = page.metadata.continue === undefined || page.metadata.continue === "" ? undefined : page.metadata.continue;
      resourceVersion = page.metadata.resourceVersion;
    } while (next !== undefined);
    if (resourceVersion === undefined || resourceVersion === "") {
      throw new OperatorError("OP_ERR_KUBE_RESPONSE", `list ${this.#path}: the answer has no resourceVersion`);
    }
    if (this.#stop.signal.aborted) return;
    this.#replace(items);
    this.#resourceVersion = resourceVersion;
    if (!this.#hasSynced) {
      this.#hasSynced = true;
      this.#resolveSynced();
    }
  }

  /**
   * Swaps the store for a fresh list and tells subscribers the difference: DELETED for objects
   * that vanished (or were replaced by a new object of the same name: new uid), ADDED for new
   * ones, MODIFIED for those whose resourceVersion changed.
   */
  #replace(items: readonly T[]): void {
    const old = this.#store;
    const fresh = new Map<string, T>();
    for (const item of items) fresh.set(objectKey(item), item);
    this.#store = fresh;
    const changes: [ReflectorEventType, T][] = [];
    for (const [key, before] of old) {
      const now = fresh.get(key);
      if (now === undefined || now.metadata.uid !== before.metadata.uid) changes.push(["DELETED", before]);
    }
    for (const [key, now] of fresh) {
      const before = old.get(key);
      if (before === undefined || before.metadata.uid !== now.metadata.uid) changes.push(["ADDED", now]);
      else if (before.metadata.resourceVersion !== now.metadata.resourceVersion) changes.push(["MODIFIED", now]);
    }
    this.#logger.debug({ resource: this.#path, items: items.length, changes: changes.length }, "listed");
    for (const [type, obj] of changes) this.#emit(type, obj);
  }

  async #watch(): Promise<void> {
    const timeoutSeconds = Math.round((this.#options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS) * (1 + 0.2 * this.#random()));
    const query = {
      resourceVersion: this.#resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
      labelSelector: this.#options.labelSelector,
      fieldSelector: this.#options.fieldSelector,
    };
    const idleTimeoutMs = timeoutSeconds * 1000 + (this.#options.stallSlackMs ?? DEFAULT_STALL_SLACK_MS);
    for await (const event of this.#client.watchStream<T>(this.#path, query, this.#stop.signal, { idleTimeoutMs })) {
      if (event.type === "ERROR") throw watchErrorEvent(this.#path, event.object);
      const rv = event.object.metadata?.resourceVersion;
      if (typeof rv !== "string" || rv === "") {
        throw new OperatorError("OP_ERR_WATCH", `watch ${this.#path}: a ${event.type} event without metadata.resourceVersion`);
      }
      this.#delivered = true;
      if (event.type === "ADDED" || event.type === "MODIFIED") {
        this.#store.set(objectKey(event.object), event.object);
        this.#emit(event.type, event.object);
      } else if (event.type === "DELETED") {
        this.#store.delete(objectKey(event.object));
        this.#emit("DELETED", event.object);
      }
      // BOOKMARK: only the resourceVersion moves on.
      this.#resourceVersion = rv;
    }
  }

  #emit(type: ReflectorEventType, obj: T): void {
    for (const listener of this.#listeners) {
      try {
        listener(type, obj);
      } catch (err) {
        this.#logger.error({ resource: this.#path, type, key: objectKey(obj), ...errorFields(err) }, "reflector subscriber threw");
      }
    }
  }
}

/** The error for a watch ERROR event; a 410 (resourceVersion too old) keeps its status for the relist. */
function watchErrorEvent(path: string, status: KubeStatus): OperatorError {
  return new OperatorError("OP_ERR_WATCH", `watch ${path}: ERROR event ${status.code ?? "?"} ${status.reason ?? ""}: ${status.message ?? ""}`.trim(), {
    ...(status.code === undefined ? {} : { status: status.code }),
    ...(status.reason === undefined ? {} : { reason: status.reason }),
    ...(status.message === undefined ? {} : { apiMessage: status.message }),
  });
}
