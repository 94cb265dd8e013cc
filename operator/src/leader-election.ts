/**
 * Leader election over a `coordination.k8s.io/v1` Lease, with client-go's semantics, so that
 * several operator replicas are safe: only the leader reconciles.
 *
 * ```
 *  candidate ──try every retryPeriod·(1..2.2)──► leader ──renew every retryPeriod──┐
 *     ▲    acquire when the Lease is absent, released      │  ▲                    │
 *     │    (no holder), ours, or unchanged for its          │  └── renewed ─────────┘
 *     │    leaseDurationSeconds by OUR clock                │
 *     │                                                     ├─ no renewal within renewDeadline,
 *     └──── work settled, onStoppedLeading() ◄──────────────┤  or the Lease names another holder:
 *                                                           │  signal aborted (stop acting)
 *  stopped ◄── release (holder cleared, duration 1 s) ◄─────┘  stop() (SIGTERM)
 * ```
 *
 * Expiry is judged by the observer's own monotonic clock, never by comparing the Lease's
 * `renewTime` with the local clock: like client-go, a candidate records when IT last saw the
 * record change and waits `leaseDurationSeconds` from then. Writes carry the resourceVersion
 * read (optimistic concurrency); a 409 is retried on the next tick. One divergence from
 * client-go: a leader that reads a Lease held by someone else stops at once instead of polling
 * until its renew deadline (the Lease is the truth; acting on is never right).
 *
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import { OperatorError, isKubeStatus } from "./errors.ts";
import type { KubeHttp } from "./kube/http.ts";
import { SILENT_LOGGER, errorFields, type KubeLogger } from "./kube/logger.ts";
import { objectPath } from "./kube/resources.ts";
import type { KubeObject } from "./kube/wire.ts";

/** The `spec` of a coordination.k8s.io/v1 Lease (the leader election record). */
export interface LeaseSpec {
  readonly holderIdentity?: string | null;
  readonly leaseDurationSeconds?: number | null;
  /** MicroTime (RFC 3339 with microseconds). */
  readonly acquireTime?: string | null;
  /** MicroTime (RFC 3339 with microseconds). */
  readonly renewTime?: string | null;
  readonly leaseTransitions?: number | null;
}

/** A Lease object. */
export interface Lease extends KubeObject {
  readonly spec?: LeaseSpec;
}

/** Options of a {@link LeaderElector}. */
export interface LeaderElectorOptions {
  /** Namespace of the Lease. */
  readonly namespace: string;
  /** Name of the Lease. */
  readonly name: string;
  /** This replica's identity (its pod name): unique among the candidates. */
  readonly identity: string;
  /** How long a candidate waits, from when it saw the record last change, before taking over, in ms. @default 15000 */
  readonly leaseDurationMs?: number;
  /** The leader stops acting when it could not renew for this long, in ms. @default 10000 */
  readonly renewDeadlineMs?: number;
  /** Time between tries (candidates jitter it by up to +120 %), in ms. @default 2000 */
  readonly retryPeriodMs?: number;
  /**
   * Called when this replica becomes the leader. `signal` aborts when it must stop acting (lost
   * the Lease, or `stop()`); the returned promise should settle soon after. The Lease is only
   * released on `stop()` once it has settled, and the elector only stands again after that.
   */
  readonly onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called once a term has ended (work settled, the Lease released on `stop()`). */
  readonly onStoppedLeading?: () => void;
  /** Called when the observed leader changes (any replica, this one included). */
  readonly onNewLeader?: (identity: string) => void;
  /** @default silent */
  readonly logger?: KubeLogger;
  /** Monotonic clock in ms (expiry, deadlines). @default performance.now */
  readonly now?: () => number;
  /** Wall clock in ms since the epoch (the Lease's acquire/renew times). @default Date.now */
  readonly wallClock?: () => number;
  /** Random source in [0, 1) for jitter. @default Math.random */
  readonly random?: () => number;
}

/** @default lease duration in ms (client-go's) */
export const DEFAULT_LEASE_DURATION_MS = 15_000;
/** @default renew deadline in ms (client-go's) */
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
/** @default retry period in ms (client-go's) */
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
/** client-go's JitterFactor: a candidate waits retryPeriod·(1 + random·1.2) between tries. */
export const RETRY_JITTER_FACTOR = 1.2;

/**
 * Checks client-go's ordering of the timings: leaseDuration > renewDeadline > retryPeriod · 1.2,
 * all positive. Throws `OP_ERR_CONFIG` otherwise.
 */
export function validateTimings(leaseDurationMs: number, renewDeadlineMs: number, retryPeriodMs: number): void {
  if (!(retryPeriodMs > 0)) throw new OperatorError("OP_ERR_CONFIG", `retryPeriodMs must be > 0, got ${retryPeriodMs}`);
  if (!(renewDeadlineMs > retryPeriodMs * RETRY_JITTER_FACTOR)) {
    throw new OperatorError("OP_ERR_CONFIG", `renewDeadlineMs (${renewDeadlineMs}) must be greater than retryPeriodMs × ${RETRY_JITTER_FACTOR} (${retryPeriodMs * RETRY_JITTER_FACTOR})`);
  }
  if (!(leaseDurationMs > renewDeadlineMs)) {
    throw new OperatorError("OP_ERR_CONFIG", `leaseDurationMs (${leaseDurationMs}) must be greater than renewDeadlineMs (${renewDeadlineMs})`);
  }
}

/** A MicroTime: RFC 3339 with six fractional digits, as the API server parses it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Whether another replica holds the Lease: it names a holder other than `identity`, and its
 * record last changed (as this observer saw it, at `observedAtMs`) less than its
 * `leaseDurationSeconds` ago by this observer's clock `nowMs`.
 */
export function heldByOther(spec: LeaseSpec, identity: string, observedAtMs: number, nowMs: number): boolean {
  const holder = spec.holderIdentity ?? "";
  if (holder === "" || holder === identity) return false;
  return observedAtMs + (spec.leaseDurationSeconds ?? 0) * 1000 > nowMs;
}

/**
 * The record to write when `identity` acquires or renews: renewTime now; acquireTime and
 * leaseTransitions kept on a renewal, acquireTime now and leaseTransitions + 1 on a takeover
 * (0 for a Lease that did not exist).
 */
export function nextLeaseSpec(current: LeaseSpec | undefined, identity: string, leaseDurationSeconds: number, wallMs: number): LeaseSpec {
  const now = microTime(wallMs);
  const renewing = current !== undefined && current.holderIdentity === identity;
  const transitions = current?.leaseTransitions ?? 0;
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: renewing ? (current.acquireTime ?? now) : now,
    renewTime: now,
    leaseTransitions: current === undefined ? 0 : renewing ? transitions : transitions + 1,
  };
}

/** The part of a record whose change resets the observer's expiry clock. */
function recordKey(spec: LeaseSpec): string {
  return JSON.stringify([spec.holderIdentity ?? "", spec.leaseDurationSeconds ?? 0, spec.acquireTime ?? "", spec.renewTime ?? "", spec.leaseTransitions ?? 0]);
}

type TryResult = "acquired" | "held" | "failed";

/**
 * Runs for the Lease until stopped: stands as a candidate, leads when it holds the Lease (calling
 * `onStartedLeading(signal)`), stops acting when it cannot renew, and stands again once the term's
 * work has settled. {@link LeaderElector.stop} releases a held Lease so another replica takes over
 * at once.
 */
export class LeaderElector implements AsyncDisposable {
  readonly #client: KubeHttp;
  readonly #options: LeaderElectorOptions;
  readonly #path: string;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #logger: KubeLogger;
  readonly #now: () => number;
  readonly #wall: () => number;
  readonly #random: () => number;
  readonly #stop = new AbortController();
  #observedKey: string | undefined;
  #observedAt = 0;
  #observedHolder: string | undefined;
  #reportedLeader: string | undefined;
  /** The Lease as this replica last wrote it: what a release updates (its resourceVersion). */
  #written: Lease | undefined;
  #leading = false;
  /** When the last try started (monotonic): a renewal counts from when it was sent. */
  #lastTryAt = 0;
  #loop: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;

  /** Throws `OP_ERR_CONFIG` when the timings contradict each other (see {@link validateTimings}). */
  constructor(client: KubeHttp, options: LeaderElectorOptions) {
    this.#client = client;
    this.#options = options;
    this.#leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    this.#retryPeriodMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    validateTimings(this.#leaseDurationMs, this.#renewDeadlineMs, this.#retryPeriodMs);
    if (options.identity === "") throw new OperatorError("OP_ERR_CONFIG", "leader election needs a non-empty identity");
    this.#path = objectPath({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace: options.namespace, name: options.name });
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#now = options.now ?? (() => performance.now());
    this.#wall = options.wallClock ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /** Starts standing for the Lease. Idempotent; does nothing after `stop()`. */
  start(): void {
    if (this.#loop !== undefined || this.#stop.signal.aborted) return;
    this.#loop = this.#run();
  }

  /** Whether this replica is the leader now (its signal not aborted). */
  get isLeader(): boolean {
    return this.#leading;
  }

  /** The holder the Lease named when last read or written, if any. */
  get leader(): string | undefined {
    return this.#observedHolder === "" ? undefined : this.#observedHolder;
  }

  /**
   * Stops: a leader aborts its signal, waits for `onStartedLeading`'s work to settle (up to
   * renewDeadline), releases the Lease (holder cleared, leaseDurationSeconds 1, like client-go's
   * ReleaseOnCancel) and calls `onStoppedLeading`; a candidate stops trying. A try in flight is
   * waited for, not abandoned, so that a Lease acquired by it is released too. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stop.abort();
      await this.#loop;
    })();
    return this.#stopped;
  }

  /** Same as {@link LeaderElector.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      if (!(await this.#acquire())) return;
      if (this.#stop.signal.aborted) {
        // Acquired by the try that was in flight when stop() came: hand it back at once.
        await this.#release();
        return;
      }
      await this.#lead();
    }
  }

  /** Tries until acquired (true) or stopped (false). */
  async #acquire(): Promise<boolean> {
    for (;;) {
      const result = await this.#tryAcquireOrRenew(AbortSignal.timeout(this.#renewDeadlineMs));
      if (result === "acquired") return true;
      if (this.#stop.signal.aborted) return false;
      const waitMs = this.#retryPeriodMs * (1 + this.#random() * RETRY_JITTER_FACTOR);
      try {
        await sleep(waitMs, undefined, { signal: this.#stop.signal });
      } catch {
        return false;
      }
    }
  }

  /** One term as the leader: renew until lost or stopped, then wind down. */
  async #lead(): Promise<void> {
    const lead = new AbortController();
    const startedAt = this.#now();
    let lastRenewAt = this.#lastTryAt;
    let lost = false;
    this.#leading = true;
    this.#logger.info({ lease: this.#path, identity: this.#options.identity }, "started leading");
    let deadline: NodeJS.Timeout | undefined;
    const lose = (why: string) => {
      if (lead.signal.aborted) return;
      lost = true;
      this.#leading = false;
      clearTimeout(deadline);
      this.#logger.warn({ lease: this.#path, identity: this.#options.identity, ledMs: Math.round(this.#now() - startedAt) }, `stopped leading: ${why}`);
      lead.abort(new OperatorError("OP_ERR_ABORTED", `leadership lost: ${why}`));
    };
    const armDeadline = () => {
      clearTimeout(deadline);
      deadline = setTimeout(() => lose(`no renewal within ${this.#renewDeadlineMs} ms`), Math.max(0, lastRenewAt + this.#renewDeadlineMs - this.#now()));
    };
    armDeadline();
    const work = (async () => this.#options.onStartedLeading(lead.signal))().catch((err: unknown) => {
      this.#logger.error({ lease: this.#path, ...errorFields(err) }, "onStartedLeading failed");
    });
    const wake = AbortSignal.any([this.#stop.signal, lead.signal]);
    while (!wake.aborted) {
      try {
        await sleep(this.#retryPeriodMs, undefined, { signal: wake });
      } catch {
        break;
      }
      // Not aborted by stop(): a renewal in flight is finished so that the release that follows
      // updates the Lease as it is now. A lost term aborts it: its answer no longer matters.
      // AbortSignal.timeout takes whole milliseconds only (a fraction throws ERR_OUT_OF_RANGE).
      const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(lastRenewAt + this.#renewDeadlineMs - this.#now())));
      const result = await this.#tryAcquireOrRenew(AbortSignal.any([lead.signal, timeout]));
      if (lead.signal.aborted) break;
      if (result === "acquired") {
        lastRenewAt = this.#lastTryAt;
        armDeadline();
      } else if (result === "held") {
        lose(`the Lease is held by ${this.#observedHolder ?? "another replica"}`);
      }
    }
    clearTimeout(deadline);
    const stopping = !lost;
    this.#leading = false;
    if (!lead.signal.aborted) lead.abort(new OperatorError("OP_ERR_ABORTED", "leader elector stopped"));
    const settled = await settlesWithin(work, this.#renewDeadlineMs);
    if (!settled) {
      this.#logger.warn({ lease: this.#path, waitedMs: this.#renewDeadlineMs }, "onStartedLeading has not settled after its signal aborted");
      // Releasing now would let another replica act while this one still does: let it expire.
      if (!stopping) await work;
    } else if (stopping) {
      await this.#release();
    }
    try {
      this.#options.onStoppedLeading?.();
    } catch (err) {
      this.#logger.error({ lease: this.#path, ...errorFields(err) }, "onStoppedLeading threw");
    }
  }

  /**
   * client-go's tryAcquireOrRenew: read the Lease (create it when absent), note when its record
   * changed, give up if another holder's lease is still valid by this observer's clock, else
   * write ourselves as holder with the resourceVersion read.
   */
  async #tryAcquireOrRenew(signal: AbortSignal): Promise<TryResult> {
    this.#lastTryAt = this.#now();
    const durationSeconds = Math.ceil(this.#leaseDurationMs / 1000);
    let current: Lease;
    try {
      current = await this.#client.request<Lease>("GET", this.#path, { signal });
    } catch (err) {
      if (!isKubeStatus(err, 404)) {
        this.#logger.warn({ lease: this.#path, ...errorFields(err) }, "cannot read the Lease");
        return "failed";
      }
      const spec = nextLeaseSpec(undefined, this.#options.identity, durationSeconds, this.#wall());
      const body = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.#options.name, namespace: this.#options.namespace }, spec };
      try {
        const created = await this.#client.request<Lease>("POST", this.#path.slice(0, this.#path.lastIndexOf("/")), { body, signal });
        this.#observe(created);
        return "acquired";
      } catch (createErr) {
        // 409 AlreadyExists: another candidate created it first; read it on the next tick.
        this.#logger.debug({ lease: this.#path, ...errorFields(createErr) }, "cannot create the Lease");
        return "failed";
      }
    }
    this.#observe(current);
    const spec = current.spec ?? {};
    if (heldByOther(spec, this.#options.identity, this.#observedAt, this.#now())) return "held";
    const next = nextLeaseSpec(spec, this.#options.identity, durationSeconds, this.#wall());
    try {
      const updated = await this.#client.request<Lease>("PUT", this.#path, { body: { ...current, spec: next }, signal });
      this.#observe(updated);
      return "acquired";
    } catch (err) {
      // 409 Conflict: someone wrote since our read; the next tick reads again.
      if (isKubeStatus(err, 409)) this.#logger.debug({ lease: this.#path }, "Lease changed since read (409): retrying");
      else this.#logger.warn({ lease: this.#path, ...errorFields(err) }, "cannot write the Lease");
      return "failed";
    }
  }

  /** Notes the Lease as read or written: when its record changed (our clock), and its holder. */
  #observe(lease: Lease): void {
    const spec = lease.spec ?? {};
    const key = recordKey(spec);
    if (key !== this.#observedKey) {
      this.#observedKey = key;
      this.#observedAt = this.#now();
    }
    this.#observedHolder = spec.holderIdentity ?? "";
    if (spec.holderIdentity === this.#options.identity) this.#written = lease;
    const holder = this.#observedHolder;
    if (holder !== "" && holder !== this.#reportedLeader) {
      this.#reportedLeader = holder;
      try {
        this.#options.onNewLeader?.(holder);
      } catch (err) {
        this.#logger.error({ lease: this.#path, ...errorFields(err) }, "onNewLeader threw");
      }
    }
  }

  /**
   * Hands the Lease back: holder cleared, leaseDurationSeconds 1, transitions kept (client-go's
   * release), written over the Lease as we last wrote it so that a Lease someone else took since
   * is left alone (409).
   */
  async #release(): Promise<void> {
    const ours = this.#written;
    if (ours === undefined) return;
    const now = microTime(this.#wall());
    const spec: LeaseSpec = { holderIdentity: "", leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: ours.spec?.leaseTransitions ?? 0 };
    try {
      const released = await this.#client.request<Lease>("PUT", this.#path, { body: { ...ours, spec }, timeoutMs: this.#renewDeadlineMs });
      this.#written = undefined;
      this.#observe(released);
      this.#logger.info({ lease: this.#path, identity: this.#options.identity }, "released the Lease");
    } catch (err) {
      this.#logger.warn({ lease: this.#path, ...errorFields(err) }, "cannot release the Lease (it expires on its own)");
    }
  }
}

/** Whether `work` settles within `ms`. */
async function settlesWithin(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
