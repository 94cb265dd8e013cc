import type { OutboundEvent } from "@switchboard/protocol";
import type { Principal } from "../auth/index.ts";
import { newPeerId, newResumeToken, newSessionId } from "./ids.ts";

/** What a session needs of the socket it is attached to. */
export interface SessionSocket {
  /** Writes one text frame. */
  send(frame: string): void;
  /** Bytes written but not yet flushed to the network. */
  bufferedBytes(): number;
  /** Closes the socket with a WebSocket close code. */
  close(code: number, reason: string): void;
}

/** Why a session lost its socket. */
export type DetachCause = "dropped" | "heartbeat" | "slow-consumer" | "token-expired" | "replaced" | "draining";

/** Result of preparing a resume from `lastSeq`. */
export type ReplayPlan = { readonly ok: true; readonly frames: readonly string[] } | { readonly ok: false; readonly reason: "gap" };

/**
 * One client session: identity, its ordered event stream and the events not yet acknowledged.
 *
 * Every event gets the next `seq` (1, 2, 3 … no gaps) and is kept until the client acknowledges it,
 * so a resume can replay exactly what was missed. The replay buffer is bounded by bytes; when it
 * overflows, the oldest events are dropped and a resume from before them fails with `gap` rather
 * than pretending.
 */
export class Session {
  readonly id = newSessionId();
  readonly resumeToken = newResumeToken();
  readonly peerId = newPeerId();
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
  #replayFrames: string[] | null = null;
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
  pushJson(eventJson: string): number {
    const seq = this.#nextSeq++;
    const frame = `{"seq":${seq},${eventJson.slice(1)}`;
    this.#keep(frame);
    this.socket?.send(frame);
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
    return { ok: true, frames: this.#replayFrames?.slice(this.#replayHead) ?? [] };
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

  #keep(frame: string): void {
    (this.#replayFrames ??= []).push(frame);
    this.#replayBytes += frame.length;
    while (this.#replayBytes > this.#replayBytesLimit && this.replayLength > 1) this.#dropHead();
    this.#compact();
  }

  /** Forgets the oldest kept frame (the caller made sure there is one); the floor moves past it. */
  #dropHead(): void {
    const frames = this.#replayFrames as string[];
    this.#replayBytes -= (frames[this.#replayHead] as string).length;
    frames[this.#replayHead] = "";
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
