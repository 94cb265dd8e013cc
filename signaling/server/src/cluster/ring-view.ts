import { HashRing, ringConverged as converged, type RingDocument, type RingMember } from "@switchboard/ring";
import type { Directory } from "./directory.ts";
import type { RingSource } from "./ring-source.ts";

/** Options of {@link RingView}. */
export interface RingViewOptions {
  /** This pod's member name. */
  readonly podName: string;
  readonly source: RingSource;
  /** Where the applied version is reported (convergence is read from there). */
  readonly directory: Directory;
  /** How long a report stays valid; re-reported every `reportEveryMs`. @default 30000 */
  readonly reportTtlMs?: number;
  /** @default 5000 */
  readonly reportEveryMs?: number;
  /** Called after a new version is applied, with the previous ring (for handoff). */
  readonly onChange?: (next: HashRing, prev: HashRing) => void;
  /** Called with the version applied (metrics). */
  readonly onApplied?: (version: number) => void;
  readonly onError?: (err: Error) => void;
}

/**
 * The ring as one pod sees it: applies every new version from its source (never an older one),
 * answers "who owns this key", and reports the version it applied to the directory (and a
 * metric) so the operator can tell when every pod has converged.
 */
export class RingView {
  readonly #o: RingViewOptions;
  #ring: HashRing | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #follower: RingFollower | null = null;

  constructor(options: RingViewOptions) {
    this.#o = options;
  }

  /** Reads the current document and starts following changes. */
  async start(): Promise<void> {
    const first = await this.#o.source.start(
      (doc) => this.#apply(doc),
      (err) => this.#o.onError?.(err),
    );
    if (!this.#ring) this.#apply(first);
    const every = this.#o.reportEveryMs ?? 5000;
    this.#timer = setInterval(() => void this.#report(), every);
    this.#timer.unref();
  }

  /**
   * Registers the pod's handler of ring changes (handoff), and what must finish before a version is
   * reported as applied (commands sent under the previous version being stored).
   */
  follow(follower: RingFollower): void {
    this.#follower = follower;
  }

  /** The applied ring; throws before `start` resolved. */
  get ring(): HashRing {
    if (!this.#ring) throw new Error("ring not loaded yet");
    return this.#ring;
  }

  get version(): number {
    return this.#ring?.version ?? -1;
  }

  /** The member owning `key` (rooms are keyed `room:<id>`, calls `call:<id>`), if any is ACTIVE. */
  ownerOf(key: string): RingMember | undefined {
    return this.ring.ownerOf(key);
  }

  /** True when this pod owns `key`. */
  owns(key: string): boolean {
    return this.ownerOf(key)?.name === this.#o.podName;
  }

  /** This pod's own state in the ring (undefined when it is not a member). */
  get selfState(): RingMember["state"] | undefined {
    return this.#ring?.member(this.#o.podName)?.state;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#o.source.stop();
  }

  #apply(doc: RingDocument): void {
    if (this.#ring && doc.version <= this.#ring.version) return;
    const prev = this.#ring;
    const next = new HashRing(doc);
    this.#ring = next;
    this.#o.onApplied?.(next.version);
    void this.#report();
    if (prev) {
      this.#o.onChange?.(next, prev);
      this.#follower?.changed(next, prev);
    }
  }

  async #report(): Promise<void> {
    if (!this.#ring) return;
    try {
      await this.#follower?.beforeReport();
      await this.#o.directory.reportRingVersion(this.#o.podName, this.#ring.version, this.#o.reportTtlMs ?? 30_000);
    } catch (err) {
      this.#o.onError?.(err as Error);
    }
  }
}

/** The pod's handler of ring changes (see {@link RingView.follow}). */
export interface RingFollower {
  changed(next: HashRing, prev: HashRing): void;
  beforeReport(): Promise<void>;
}

/**
 * Whether `doc` has converged by the versions the pods reported to `directory` (the
 * `ringConverged` predicate of `@switchboard/ring`, the operator's too).
 *
 * @returns true when every member of `doc`, whatever its state, reported exactly `doc.version`
 */
export async function ringConverged(directory: Directory, doc: RingDocument): Promise<boolean> {
  return converged(doc, await directory.ringVersions());
}
