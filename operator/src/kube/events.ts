/**
 * Kubernetes Events about the objects the operator manages (what `kubectl describe` shows).
 *
 * Written as core/v1 Events, not events.k8s.io/v1: the fields this recorder needs (`count`,
 * `firstTimestamp`/`lastTimestamp`, `reportingComponent`, `source.component`) are core/v1's, and
 * `kubectl describe` and `kubectl get events` show exactly those; events.k8s.io/v1 would add
 * required `action`/`eventTime` and a `series` that only starts at the second occurrence, for no
 * gain here. Both APIs are views of the same stored objects, so readers of either see them.
 *
 * Like client-go's event correlator, a repeat of the same (object, type, reason, message) within
 * the dedupe window bumps the first Event's `count` and `lastTimestamp` instead of creating
 * another. Writes are asynchronous; a failure is logged, never thrown into the reconcile.
 *
 * @module
 */
import { isKubeStatus } from "../errors.ts";
import type { KubeHttp } from "./http.ts";
import { SILENT_LOGGER, errorFields, type KubeLogger } from "./logger.ts";

/** The object an Event is about. */
export interface InvolvedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  /** @default "default" (where Events about cluster-scoped objects go) */
  readonly namespace?: string;
  readonly uid: string;
  readonly resourceVersion?: string;
  /** A part of the object (`spec.containers{signaling}`). */
  readonly fieldPath?: string;
}

/** An Event's type. */
export type EventType = "Normal" | "Warning";

/** Options of an {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** `reportingInstance`: the operator's pod name. */
  readonly reportingInstance: string;
  /** `reportingComponent` and `source.component`. @default "switchboard-operator" */
  readonly reportingComponent?: string;
  /** A repeat within this long bumps the existing Event, in ms. @default 600000 (10 min) */
  readonly dedupeWindowMs?: number;
  /** Most (object, reason, message) keys remembered; the least recently used go first. @default 4096 */
  readonly maxCacheEntries?: number;
  /** Timeout of each Event write, in ms. @default 10000 */
  readonly requestTimeoutMs?: number;
  /** @default silent */
  readonly logger?: KubeLogger;
  /** Wall clock in ms since the epoch (for timestamps and the window). @default Date.now */
  readonly now?: () => number;
}

/** @default reporting component of the operator's Events */
export const DEFAULT_REPORTING_COMPONENT = "switchboard-operator";
/** @default dedupe window in ms (10 min, client-go's aggregation window) */
export const DEFAULT_EVENT_DEDUPE_WINDOW_MS = 600_000;
/** @default keys remembered for dedupe (client-go's LRU size) */
export const DEFAULT_EVENT_CACHE_ENTRIES = 4096;
/** @default timeout of one Event write in ms */
export const DEFAULT_EVENT_REQUEST_TIMEOUT_MS = 10_000;
/** Longest message written, in characters (events.k8s.io's `note` limit). */
export const MAX_EVENT_MESSAGE_LENGTH = 1024;

/** What the recorder remembers of an Event it wrote. */
interface Recorded {
  readonly namespace: string;
  readonly name: string;
  count: number;
  lastMs: number;
}

/** The wire shape of a core/v1 Event as this recorder writes it. */
interface CoreEvent {
  readonly apiVersion: "v1";
  readonly kind: "Event";
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly involvedObject: InvolvedObject & { readonly namespace: string };
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
  readonly count: number;
  readonly firstTimestamp: string;
  readonly lastTimestamp: string;
  readonly source: { readonly component: string };
  readonly reportingComponent: string;
  readonly reportingInstance: string;
}

const CAMEL_CASE = /^[A-Z][A-Za-z0-9]*$/;

/** RFC 3339 with whole seconds, as `metav1.Time` is written. */
function rfc3339Seconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Records Events for involved objects, deduplicating repeats. {@link EventRecorder.record}
 * never throws and never blocks; {@link EventRecorder.close} waits for the writes in flight.
 */
export class EventRecorder implements AsyncDisposable {
  readonly #client: KubeHttp;
  readonly #instance: string;
  readonly #component: string;
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #timeoutMs: number;
  readonly #logger: KubeLogger;
  readonly #now: () => number;
  /** Key → the Event written for it, least recently used first (Map order). */
  readonly #recorded = new Map<string, Recorded>();
  /** Key → the last write queued for it: writes of one key run one after another. */
  readonly #tails = new Map<string, Promise<void>>();
  #seq = 0;
  #closed = false;

  constructor(client: KubeHttp, options: EventRecorderOptions) {
    this.#client = client;
    this.#instance = options.reportingInstance;
    this.#component = options.reportingComponent ?? DEFAULT_REPORTING_COMPONENT;
    this.#windowMs = options.dedupeWindowMs ?? DEFAULT_EVENT_DEDUPE_WINDOW_MS;
    this.#maxEntries = options.maxCacheEntries ?? DEFAULT_EVENT_CACHE_ENTRIES;
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_EVENT_REQUEST_TIMEOUT_MS;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Records that `reason` (CamelCase, e.g. `ScaledUp`) happened to `involved`, with a message for
   * people. A repeat of the same object, type, reason and message within the dedupe window bumps
   * the existing Event's `count` and `lastTimestamp`. Returns at once; failures are logged.
   */
  record(involved: InvolvedObject, type: EventType, reason: string, message: string): void {
    if (this.#closed) {
      this.#logger.warn({ kind: involved.kind, name: involved.name, reason }, "event recorded after close: dropped");
      return;
    }
    if (!CAMEL_CASE.test(reason)) this.#logger.warn({ reason }, "event reason is not CamelCase");
    const text = message.length > MAX_EVENT_MESSAGE_LENGTH ? `${message.slice(0, MAX_EVENT_MESSAGE_LENGTH - 1)}…` : message;
    const namespace = involved.namespace ?? "default";
    const key = JSON.stringify([involved.uid, involved.apiVersion, involved.kind, namespace, involved.name, involved.fieldPath ?? "", type, reason, text]);
    const atMs = this.#now();
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => this.#write(key, { ...involved, namespace }, type, reason, text, atMs))
      .catch((err: unknown) => {
        this.#logger.warn({ kind: involved.kind, namespace, name: involved.name, reason, ...errorFields(err) }, "event write failed");
      })
      .finally(() => {
        if (this.#tails.get(key) === next) this.#tails.delete(key);
      });
    this.#tails.set(key, next);
  }

  /** Resolves once every write queued so far has finished (each is bounded by its timeout). */
  async flush(): Promise<void> {
    await Promise.all([...this.#tails.values()]);
  }

  /** Stops taking Events and waits for the writes in flight. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  /** Same as {@link EventRecorder.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #write(key: string, involved: InvolvedObject & { readonly namespace: string }, type: EventType, reason: string, message: string, atMs: number): Promise<void> {
    const seen = this.#recorded.get(key);
    if (seen !== undefined && atMs - seen.lastMs < this.#windowMs) {
      const count = seen.count + 1;
      try {
        await this.#client.request("PATCH", `/api/v1/namespaces/${encodeURIComponent(seen.namespace)}/events/${encodeURIComponent(seen.name)}`, {
          body: { count, lastTimestamp: rfc3339Seconds(atMs) },
          contentType: "application/merge-patch+json",
          timeoutMs: this.#timeoutMs,
        });
        seen.count = count;
        seen.lastMs = atMs;
        this.#touch(key, seen);
        return;
      } catch (err) {
        // Gone (Events expire after an hour by default, or someone deleted it): write a new one.
        if (!isKubeStatus(err, 404)) throw err;
      }
    }
    const name = `${involved.name.slice(0, 200)}.${(BigInt(atMs) * 1_000_000n + BigInt(this.#seq++ % 1_000_000)).toString(16)}`;
    const event: CoreEvent = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace: involved.namespace },
      involvedObject: involved,
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: rfc3339Seconds(atMs),
      lastTimestamp: rfc3339Seconds(atMs),
      source: { component: this.#component },
      reportingComponent: this.#component,
      reportingInstance: this.#instance,
    };
    await this.#client.request("POST", `/api/v1/namespaces/${encodeURIComponent(involved.namespace)}/events`, { body: event, timeoutMs: this.#timeoutMs });
    this.#touch(key, { namespace: involved.namespace, name, count: 1, lastMs: atMs });
  }

  #touch(key: string, entry: Recorded): void {
    this.#recorded.delete(key);
    this.#recorded.set(key, entry);
    while (this.#recorded.size > this.#maxEntries) {
      const oldest = this.#recorded.keys().next();
      if (oldest.done === true) break;
      this.#recorded.delete(oldest.value);
    }
  }
}
