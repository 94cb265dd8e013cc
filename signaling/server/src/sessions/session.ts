import type { OutboundEvent } from "@switchboard/protocol";
import type { Principal } from "../auth/index.ts";
import { encodeSequencedFrame, encodeTextFrame, type TextFrame } from "../transport/text-frame.ts";
import { newPeerId, newResumeToken, newSessionId } from "./ids.ts";

/** What a session needs of the socket it is attached to. */
export interface SessionSocket {
  /** Writes one text frame: its text, or the frame already encoded (sequenced events). */
  send(frame: string | TextFrame): void;
  /** Bytes written but not yet flushed to the network. */
  bufferedBytes(): number;
  /** Closes the socket with a WebSocket close code. */
  close(code: number, reason: string): void;
}

/** Why a session lost its socket. */
export type DetachCause = "dropped" | "heartbeat" | "slow-consumer" | "token-expired" | "replaced" | "draining";

/**
 * Where a session's frames go before its socket in cluster mode: the journal stores them in the
 * cluster's session log and sends them once they are durable (docs/cluster.md, rule 3).
 */
export interface FrameJournal {
  /** Takes a sequenced frame; `src` is the bus stream sequence of the event it came from (0 if none). */
  enqueue(session: Session, frame: string, src: number): void;
}

/** What a pod restores of a session another pod held (cluster takeover). */
export interface RestoredSession {
  readonly id: string;
  readonly resumeToken: string;
  readonly peerId: string;
  readonly device: string | undefined;
  readonly face: "switchboard" | "peerjs";
  /** Frames kept in the log, with consecutive seqs from `firstSeq` to `lastSeq`. */
  readonly frames: readonly string[];
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** What a dropped replay slot holds until the array is compacted. */
const EMPTY: TextFrame = Buffer.alloc(0);

/** Result of preparing a resume from `lastSeq`. */
export type ReplayPlan = { readonly ok: true; readonly frames: readonly TextFrame[] } | { readonly ok: false; readonly reason: "gap" };

/**
 * One client session: identity, its ordered event stream and the events not yet acknowledged.
 *
 * Every event gets the next `seq` (1, 2, 3 … no gaps) and is kept until the client acknowledges it,
 * so a resume can replay exactly what was missed, kept as the encoded WebSocket frame (outside
 * the V8 heap: see transport/text-frame.ts). The replay buffer is bounded by bytes; when it
 * overflows, the oldest events are dropped and a resume from before them fails with `gap` rather
 * than pretending.
 */
export class Session {
  readonly id: string = newSessionId();
  readonly resumeToken: string = newResumeToken();
  readonly peerId: string = newPeerId();
  readonly device: string | undefined;
  /** The protocol face the client speaks: only Switchboard v1 sessions can take calls. */
  readonly face: "switchboard" | "peerjs";
  principal: Principal;
  socket: SessionSocket | null = null;
  /** When the socket went away (epoch ms), or null while attached. */
  detachedAtMs: number | null = null;
  detachCause: DetachCause | null = null;
  /** Set once the token-expiry warning was sent for the current token. */
  expiryWarned = false;
  ended = false;
  /** Cluster mode: frames go through the journal, which sends them once stored. */
  journal: FrameJournal | null = null;
  /** Cluster mode: the highest seq stored in the cluster's log (replayable on any pod). */
  durableSeq = 0;

  // Allocated on first use: an idle session holds no empty Sets or arrays (a pod keeps tens of
  // thousands of sessions, most of them in one room or none, and in no call).
  #rooms: Set<string> | null = null;
  #calls: Set<string> | null = null;
  #nextSeq = 1;
  #acked = 0;
  readonly #replayBytesLimit: number;
  /**
   * The kept frames are `#replayFrames[#replayHead …]`, carrying the contiguous seqs
   * `#replayFloor … lastSeq`: events are only ever dropped from the head, so no seq is stored.
   */
  #replayFrames: TextFrame[] | null = null;
  #replayHead = 0;
  #replayBytes = 0;
  /** Lowest seq that may still be replayed (everything below was acknowledged or dropped). */
  #replayFloor = 1;

  constructor(principal: Principal, options: { device?: string | undefined; maxReplayBytes: number; face?: "switchboard" | "peerjs" }) {
    this.principal = principal;
    this.device = options.device;
    this.face = options.face ?? "switchboard";
    this.#replayBytesLimit = options.maxReplayBytes;
  }

  /** Rebuilds a session another pod held, from the cluster's session log. */
  static restore(principal: Principal, r: RestoredSession, maxReplayBytes: number): Session {
    const s = new Session(principal, { device: r.device, maxReplayBytes, face: r.face });
    (s as { id: string }).id = r.id;
    (s as { resumeToken: string }).resumeToken = r.resumeToken;
    (s as { peerId: string }).peerId = r.peerId;
    s.#nextSeq = r.lastSeq + 1;
    s.#replayFloor = r.firstSeq;
    s.#acked = r.firstSeq - 1;
    s.durableSeq = r.lastSeq;
    if (r.frames.length > 0) {
      s.#replayFrames = r.frames.map(encodeTextFrame);
      for (const f of s.#replayFrames) s.#replayBytes += f.length;
    }
    return s;
  }

  /** Rooms this session is a member of. */
  get rooms(): Set<string> {
    return (this.#rooms ??= new Set());
  }

  /** Calls this session takes part in. */
  get calls(): Set<string> {
    return (this.#calls ??= new Set());
  }

  get userId(): string {
    return this.principal.userId;
  }

  /** The highest seq assigned so far (0 before the first event). */
  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** The highest seq the client acknowledged. */
  get ackedSeq(): number {
    return this.#acked;
  }

  /** Events kept for replay. */
  get replayLength(): number {
    return this.#nextSeq - this.#replayFloor;
  }

  get replayBytes(): number {
    return this.#replayBytes;
  }

  /** Sequences, keeps and (when attached) sends one event. */
  push(event: OutboundEvent): number {
    return this.pushJson(JSON.stringify(event));
  }

  /**
   * Sequences, keeps and sends an event already serialized without `seq` (`{"type":…}`); fan-out
   * serializes once and calls this per receiver.
   */
  pushJson(eventJson: string, src = 0): number {
    const seq = this.#nextSeq++;
    const frame = encodeSequencedFrame(seq, eventJson);
    this.#keep(frame);
    if (this.journal) this.journal.enqueue(this, `{"seq":${seq},${eventJson.slice(1)}`, src);
    else this.socket?.send(frame);
    return seq;
  }

  /** Records the client's acknowledgement of every event up to `seq`. */
  ack(seq: number): void {
    const upTo = Math.min(seq, this.lastSeq);
    if (upTo <= this.#acked) return;
    this.#acked = upTo;
    while (this.#replayFloor <= upTo) this.#dropHead();
    this.#compact();
  }

  /**
   * The frames to replay for a client that processed everything up to `lastSeq`, or `gap` when
   * some of the events after it are no longer kept (or `lastSeq` is in the future).
   */
  planReplay(lastSeq: number): ReplayPlan {
    if (lastSeq > this.lastSeq || lastSeq + 1 < this.#replayFloor) return { ok: false, reason: "gap" };
    this.ack(lastSeq);
    const kept = this.#replayFrames?.slice(this.#replayHead) ?? [];
    // With a journal, frames not yet stored are sent by the journal once they are (to this socket).
    return { ok: true, frames: this.journal ? kept.slice(0, Math.max(0, this.durableSeq - lastSeq)) : kept };
  }

  /** Attaches a socket (after a handshake or a resume); the caller closes any previous one. */
  attach(socket: SessionSocket): void {
    this.socket = socket;
    this.detachedAtMs = null;
    this.detachCause = null;
  }

  /** Forgets the socket; the session waits for a resume until the window runs out. */
  detach(cause: DetachCause, nowMs: number): void {
    this.socket = null;
    this.detachedAtMs = nowMs;
    this.detachCause = cause;
  }

  #keep(frame: TextFrame): void {
    (this.#replayFrames ??= []).push(frame);
    this.#replayBytes += frame.length;
    while (this.#replayBytes > this.#replayBytesLimit && this.replayLength > 1) this.#dropHead();
    this.#compact();
  }

  /** Forgets the oldest kept frame (the caller made sure there is one); the floor moves past it. */
  #dropHead(): void {
    const frames = this.#replayFrames as TextFrame[];
    this.#replayBytes -= (frames[this.#replayHead] as TextFrame).length;
    frames[this.#replayHead] = EMPTY;
    this.#replayHead += 1;
    this.#replayFloor += 1;
  }

  /** Reclaims the consumed prefix of the replay array once it dominates it. */
  #compact(): void {
    const frames = this.#replayFrames;
    if (!frames) return;
    if (this.#replayHead === frames.length) {
      this.#replayFrames = null;
      this.#replayHead = 0;
    } else if (this.#replayHead > 64 && this.#replayHead * 2 > frames.length) {
      this.#replayFrames = frames.slice(this.#replayHead);
      this.#replayHead = 0;
    }
  }
}
