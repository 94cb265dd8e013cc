import type { IceCandidate } from "@switchboard/protocol";
import type { RelayTarget, SwitchboardClient } from "./client.ts";

/**
 * An SDP description, as `RTCSessionDescriptionInit`. The SDK's types name no DOM type, so that
 * they type-check in Node projects without the DOM library.
 */
export interface SessionDescriptionInit {
  readonly type: "offer" | "answer" | "pranswer" | "rollback";
  readonly sdp?: string;
}

/** An ICE candidate, as `RTCIceCandidateInit`. */
export interface IceCandidateInit {
  readonly candidate?: string;
  readonly sdpMid?: string | null;
  readonly sdpMLineIndex?: number | null;
  readonly usernameFragment?: string | null;
}

/**
 * The part of `RTCPeerConnection` the negotiator uses; a browser's `RTCPeerConnection` fits as it
 * is. The negotiator assigns `onnegotiationneeded` and `onicecandidate` (and clears them on
 * close); their event parameter is typed `never` so that any implementation's event type fits.
 */
export interface PeerConnectionLike {
  readonly signalingState: string;
  readonly localDescription: { readonly type: SessionDescriptionInit["type"]; readonly sdp: string } | null;
  onnegotiationneeded: ((ev: never) => unknown) | null;
  /** Receives `{ candidate }`: an `RTCIceCandidate` with `toJSON()`, or null at the end. */
  onicecandidate: ((ev: never) => unknown) | null;
  setLocalDescription(): Promise<void>;
  setRemoteDescription(description: SessionDescriptionInit): Promise<void>;
  addIceCandidate(candidate?: IceCandidateInit): Promise<void>;
  restartIce(): void;
}

/** How a {@link PerfectNegotiator} sends its signals (usually through {@link SwitchboardClient}). */
export interface NegotiationSignals {
  /** Sends the local offer or answer; the promise settles when the pod took it. */
  description(desc: SessionDescriptionInit): Promise<void>;
  /** Sends one trickled local candidate. */
  candidate(candidate: IceCandidate): Promise<void>;
  /** Tells the other side that gathering is complete. */
  endOfCandidates(): Promise<void>;
}

/** Options of {@link PerfectNegotiator}. */
export interface NegotiatorOptions {
  /** The peer connection; the caller creates it and closes it. */
  readonly pc: PeerConnectionLike;
  /** The polite side yields on offer collisions (in calls: the callee). */
  readonly polite: boolean;
  readonly signals: NegotiationSignals;
  /**
   * Drops local candidates for which this returns false, both trickled ones and the `a=candidate`
   * lines of outgoing descriptions (tests keep loopback only).
   */
  readonly filterCandidate?: (c: IceCandidateInit) => boolean;
  /** Reports errors of the negotiation (they never throw out of event handlers). */
  readonly onError?: (err: unknown) => void;
}

/**
 * The "perfect negotiation" pattern (W3C WebRTC §10.7): either side may renegotiate at any time;
 * on an offer collision the impolite side ignores the incoming offer and the polite side rolls
 * back and answers. Trickle ICE both ways, with end-of-candidates; `restartIce()` for ICE restarts.
 */
export class PerfectNegotiator {
  readonly #o: NegotiatorOptions;
  #makingOffer = false;
  #ignoreOffer = false;
  #answerPending = false;
  #closed = false;

  constructor(options: NegotiatorOptions) {
    this.#o = options;
    const { pc } = options;
    pc.onnegotiationneeded = () => void this.#negotiate();
    pc.onicecandidate = ({ candidate }: { candidate: { readonly candidate: string; toJSON(): IceCandidateInit } | null }) => {
      if (this.#closed) return;
      if (!candidate || candidate.candidate === "") {
        void options.signals.endOfCandidates().catch((e: unknown) => this.#error(e));
        return;
      }
      const init = candidate.toJSON();
      if (options.filterCandidate && !options.filterCandidate(init)) return;
      void options.signals
        .candidate({
          candidate: init.candidate ?? "",
          sdpMid: init.sdpMid ?? null,
          sdpMLineIndex: init.sdpMLineIndex ?? null,
          usernameFragment: init.usernameFragment ?? null,
        })
        .catch((e: unknown) => this.#error(e));
    };
  }

  /** Handles a remote offer or answer (answering offers); never rejects: errors go to `onError`. */
  async handleDescription(desc: SessionDescriptionInit): Promise<void> {
    const { pc, polite } = this.#o;
    try {
      const readyForOffer = !this.#makingOffer && (pc.signalingState === "stable" || this.#answerPending);
      const offerCollision = desc.type === "offer" && !readyForOffer;
      this.#ignoreOffer = !polite && offerCollision;
      if (this.#ignoreOffer) return;
      this.#answerPending = desc.type === "answer";
      await pc.setRemoteDescription(desc); // rolls back a local offer implicitly when polite
      this.#answerPending = false;
      if (desc.type === "offer") {
        await pc.setLocalDescription();
        await this.#sendLocalDescription();
      }
    } catch (err) {
      this.#error(err);
    }
  }

  /** Handles a remote candidate (ignored while an ignored offer's candidates trickle in). */
  async handleCandidate(candidate: IceCandidate): Promise<void> {
    try {
      await this.#o.pc.addIceCandidate(candidate as IceCandidateInit);
    } catch (err) {
      if (!this.#ignoreOffer) this.#error(err);
    }
  }

  /** Handles the remote end-of-candidates marker. */
  async handleEndOfCandidates(): Promise<void> {
    try {
      await this.#o.pc.addIceCandidate();
    } catch (err) {
      if (!this.#ignoreOffer) this.#error(err);
    }
  }

  /** Starts an ICE restart (a new offer with fresh credentials follows). */
  restartIce(): void {
    this.#o.pc.restartIce();
  }

  /** Detaches the handlers; the peer connection is the caller's to close. */
  close(): void {
    this.#closed = true;
    this.#o.pc.onnegotiationneeded = null;
    this.#o.pc.onicecandidate = null;
  }

  async #negotiate(): Promise<void> {
    if (this.#closed) return;
    const { pc } = this.#o;
    try {
      this.#makingOffer = true;
      await pc.setLocalDescription();
      await this.#sendLocalDescription();
    } catch (err) {
      this.#error(err);
    } finally {
      this.#makingOffer = false;
    }
  }

  async #sendLocalDescription(): Promise<void> {
    const local = this.#o.pc.localDescription;
    if (!local) return;
    const filter = this.#o.filterCandidate;
    const sdp = filter
      ? local.sdp
          .split("\r\n")
          .filter((line) => !line.startsWith("a=candidate:") || filter({ candidate: line.slice(2) }))
          .join("\r\n")
      : local.sdp;
    await this.#o.signals.description({ type: local.type, sdp });
  }

  #error(err: unknown): void {
    this.#o.onError?.(err);
  }
}

/**
 * Wires a {@link PerfectNegotiator} to a client for one remote party: signals go out as
 * offer/answer/candidate/end-of-candidates to `target`, and the matching events from that party
 * come back in. A `renegotiate` event with `iceRestart` triggers an ICE restart. Returns the
 * negotiator and a function that unsubscribes everything.
 */
export function negotiateWith(
  client: SwitchboardClient,
  target: RelayTarget,
  options: Omit<NegotiatorOptions, "signals">,
): { negotiator: PerfectNegotiator; detach: () => void } {
  const negotiator = new PerfectNegotiator({
    ...options,
    signals: {
      description: (d) => (d.type === "offer" ? client.sendOffer(target, d.sdp ?? "") : client.sendAnswer(target, d.sdp ?? "")),
      candidate: (c) => client.sendCandidate(target, c),
      endOfCandidates: () => client.sendEndOfCandidates(target),
    },
  });
  const fromParty = (e: { room?: string | undefined; callId?: string | undefined; from: string }): boolean =>
    "callId" in target ? e.callId === target.callId : e.room === target.room && e.from === target.to;
  const offs = [
    client.on("offer", (e) => fromParty(e) && void negotiator.handleDescription({ type: "offer", sdp: e.sdp })),
    client.on("answer", (e) => fromParty(e) && void negotiator.handleDescription({ type: "answer", sdp: e.sdp })),
    client.on("candidate", (e) => fromParty(e) && void negotiator.handleCandidate(e.candidate)),
    client.on("end-of-candidates", (e) => fromParty(e) && void negotiator.handleEndOfCandidates()),
    client.on("renegotiate", (e) => fromParty(e) && e.iceRestart === true && negotiator.restartIce()),
  ];
  return {
    negotiator,
    detach: () => {
      for (const off of offs) off();
      negotiator.close();
    },
  };
}
