import type { ClusterBus } from "./bus.ts";
import type { ClusterSubjects } from "./subjects.ts";

/**
 * A session's sequenced frames, stored on the bus so that any pod can resume the session exactly
 * (docs/cluster.md, "Resume on any pod"). Entries carry the epoch of the edge that wrote them;
 * a takeover marker of epoch e+1 fences the old edge: entries of an older epoch after the marker
 * are ignored by every reader.
 */

/** One stored entry. */
export type LogEntry =
  | { readonly kind: "frame"; readonly epoch: number; readonly seq: number; readonly frame: string; readonly src: number }
  | { readonly kind: "takeover"; readonly epoch: number; readonly edge: string };

/** What a reader makes of a session's log. */
export interface LogState {
  /** Valid frames in seq order (seq strictly increasing by 1). */
  readonly frames: ReadonlyArray<{ readonly seq: number; readonly frame: string; readonly src: number }>;
  /** The highest seq written (0 for none). */
  readonly lastSeq: number;
  /** The highest source stream sequence of a valid frame (0 for none): orphans start after it. */
  readonly lastSrc: number;
  /** The current epoch (the last takeover's). */
  readonly epoch: number;
}

/** Result of planning a resume from `lastSeq`. */
export type LogReplay = { readonly ok: true; readonly frames: readonly string[] } | { readonly ok: false; readonly reason: "gap" };

const HEADER_KIND = "Sb-Log-Kind";

export class SessionLog {
  readonly #bus: ClusterBus;
  readonly #subjects: ClusterSubjects;

  constructor(bus: ClusterBus, subjects: ClusterSubjects) {
    this.#bus = bus;
    this.#subjects = subjects;
  }

  /** Appends a sequenced frame; resolves once it is durable. */
  async append(sessionId: string, entry: Extract<LogEntry, { kind: "frame" }>): Promise<void> {
    await this.#bus.publish(this.#subjects.log(sessionId), new TextEncoder().encode(JSON.stringify(entry)), { [HEADER_KIND]: "frame" });
  }

  /** Appends the takeover marker of a new epoch (fences every older writer). */
  async markTakeover(sessionId: string, epoch: number, edge: string): Promise<void> {
    const entry: LogEntry = { kind: "takeover", epoch, edge };
    await this.#bus.publish(this.#subjects.log(sessionId), new TextEncoder().encode(JSON.stringify(entry)), { [HEADER_KIND]: "takeover" });
  }

  /** Reads and interprets the whole log of a session. */
  async load(sessionId: string): Promise<LogState> {
    const messages = await this.#bus.read(this.#subjects.log(sessionId), 0);
    const entries = messages.map((m) => JSON.parse(new TextDecoder().decode(m.data)) as LogEntry);
    return interpretLog(entries);
  }
}

/**
 * Applies the fencing rule to entries in stream order: a frame counts only if its epoch is the
 * current one (the latest takeover seen so far) and its seq continues the sequence. Pure, so the
 * rule is tested without a bus.
 */
export function interpretLog(entries: readonly LogEntry[]): LogState {
  let epoch = 0;
  let lastSeq = 0;
  let lastSrc = 0;
  const frames: Array<{ seq: number; frame: string; src: number }> = [];
  for (const e of entries) {
    if (e.kind === "takeover") {
      if (e.epoch > epoch) epoch = e.epoch;
      continue;
    }
    if (e.epoch < epoch) continue; // written by a fenced edge after the takeover
    if (e.epoch > epoch) epoch = e.epoch; // the first edge writes without a marker
    if (e.seq !== lastSeq + 1) continue; // a duplicate from a retried append
    frames.push({ seq: e.seq, frame: e.frame, src: e.src });
    lastSeq = e.seq;
    if (e.src > lastSrc) lastSrc = e.src;
  }
  return { frames, lastSeq, lastSrc, epoch };
}

/** The frames a client that processed everything up to `lastSeq` has not seen, or `gap`. */
export function planLogReplay(state: LogState, lastSeq: number): LogReplay {
  if (lastSeq > state.lastSeq) return { ok: false, reason: "gap" };
  const first = state.frames[0];
  if (first && lastSeq + 1 < first.seq) return { ok: false, reason: "gap" };
  if (!first && lastSeq < state.lastSeq) return { ok: false, reason: "gap" };
  return { ok: true, frames: state.frames.filter((f) => f.seq > lastSeq).map((f) => f.frame) };
}
