import type { CallEndReason, Meta } from "@switchboard/protocol";
import { SignalingError } from "../errors.ts";
import type { DeliverFn, DeliveryTarget } from "../rooms/room-service.ts";
import { newCallId } from "../sessions/ids.ts";

/**
 * Calls with SIP semantics over the WebSocket protocol (docs/calls.md has the full table).
 *
 * ```
 * call:  inviting ──ringing──▶ ringing ──accept──▶ answered ──confirm──▶ active ──hangup──▶ ended
 *            └───────────── decline / cancel / ring timeout / all legs busy ──────────────▶ ended
 * leg:   offered ─▶ ringing ─▶ accepted | declined | busy | cancelled | answered-elsewhere
 *                               | timed-out | dismissed | gone
 * ```
 * One leg per device of the callee user; parallel ringing; first accept wins; the offer goes only
 * to the accepted device (relays are accepted only between the caller and that device).
 */

/** A party's device as the call service needs it. */
export interface CallDevice extends DeliveryTarget {
  readonly sessionId: string;
  readonly peerId: string;
  readonly userId: string;
}

export type LegState =
  | "offered"
  | "ringing"
  | "accepted"
  | "declined"
  | "busy"
  | "cancelled"
  | "answered-elsewhere"
  | "timed-out"
  | "dismissed"
  | "gone";

interface Leg {
  device: CallDevice;
  state: LegState;
}

type CallStateName = "inviting" | "ringing" | "answered" | "active" | "ended";

interface Call {
  readonly id: string;
  state: CallStateName;
  caller: CallDevice;
  readonly calleeUserId: string;
  readonly legs: Map<string, Leg>;
  accepted: Leg | null;
  timer: ReturnType<typeof setTimeout> | null;
  readonly createdAtMs: number;
}

/** Options of {@link CallService}. */
export interface CallServiceOptions {
  readonly deliver: DeliverFn;
  /** The live devices of a user (sessions attached or waiting to resume). */
  readonly devicesOf: (userId: string) => CallDevice[];
  /** Called when a session joins or leaves a call, so it can keep its own index. */
  readonly onMembership: (sessionId: string, callId: string, member: boolean) => void;
  readonly ringTimeoutMs: number;
  readonly confirmTimeoutMs: number;
  readonly now?: () => number;
}

/** What `invite` resolves: the new call and how many devices ring. */
export interface InviteResult {
  readonly callId: string;
  readonly devices: number;
}

const LIVE_LEG: ReadonlySet<LegState> = new Set(["offered", "ringing"]);

/** The server-side call state machine of every call this pod owns. */
export class CallService {
  readonly #calls = new Map<string, Call>();
  readonly #o: CallServiceOptions;
  readonly #now: () => number;

  constructor(options: CallServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Calls not yet ended. */
  get size(): number {
    return this.#calls.size;
  }

  /** State of a call, for tests and the admin API. */
  inspect(callId: string): { state: CallStateName; legs: Record<string, LegState>; accepted: string | null } | undefined {
    const call = this.#calls.get(callId);
    if (!call) return undefined;
    const legs: Record<string, LegState> = {};
    for (const [peerId, leg] of call.legs) legs[peerId] = leg.state;
    return { state: call.state, legs, accepted: call.accepted?.device.peerId ?? null };
  }

  /**
   * Starts a call from `caller` to every live device of `calleeUserId` (except the caller's own
   * device). With no device, the call ends at once with `unavailable`; the caller still learns the
   * call id first (the reply) and then the end (an event), in that order. `sendReply` must push the
   * reply into the caller's stream before any event of the call.
   */
  invite(
    caller: CallDevice,
    calleeUserId: string,
    meta: Meta,
    sendReply: (r: InviteResult) => void,
    options: { callId?: string; devices?: readonly CallDevice[] } = {},
  ): InviteResult {
    const callId = options.callId ?? newCallId(this.#now());
    const devices = (options.devices ?? this.#o.devicesOf(calleeUserId)).filter((d) => d.sessionId !== caller.sessionId);
    const call: Call = {
      id: callId,
      state: "inviting",
      caller,
      calleeUserId,
      legs: new Map(devices.map((d) => [d.peerId, { device: d, state: "offered" as LegState }])),
      accepted: null,
      timer: null,
      createdAtMs: this.#now(),
    };
    const result = { callId, devices: devices.length };
    this.#calls.set(callId, call);
    this.#o.onMembership(caller.sessionId, callId, true);
    sendReply(result);
    if (devices.length === 0) {
      this.#end(call, "unavailable");
      return result;
    }
    // Call-level glare: the callee is already inviting this caller. The lower call id wins (ids
    // are time-ordered, so the older call); the other one ends as `replaced` for both sides.
    const glare = this.#findInvite(calleeUserId, caller.userId, call);
    if (glare && glare.id < callId) {
      call.legs.clear(); // its devices were never rung
      this.#end(call, "replaced");
      return result;
    }
    if (glare) this.#end(glare, "replaced");
    const incoming = JSON.stringify({ type: "call-incoming", callId, from: { userId: caller.userId, peerId: caller.peerId }, meta });
    for (const leg of call.legs.values()) {
      this.#o.onMembership(leg.device.sessionId, callId, true);
      this.#o.deliver(leg.device, incoming, "call-incoming");
    }
    this.#arm(call, this.#o.ringTimeoutMs, () => this.#ringTimeout(call));
    return result;
  }

  /** A callee device reports it is ringing; the caller hears of the first one. */
  ringing(device: CallDevice, callId: string): void {
    const call = this.#call(callId);
    const leg = this.#leg(call, device);
    if (leg.state !== "offered") return;
    leg.state = "ringing";
    if (call.state === "inviting") {
      call.state = "ringing";
      this.#o.deliver(call.caller, JSON.stringify({ type: "call-ringing", callId, peerId: device.peerId }), "call-ringing");
    }
  }

  /** A callee device accepts: the first accept wins; the other devices are told. */
  accept(device: CallDevice, callId: string): void {
    const call = this.#call(callId);
    const leg = this.#leg(call, device);
    if (call.state === "answered" || call.state === "active") {
      if (call.accepted === leg) throw new SignalingError("SIG_ERR_CALL_STATE", "call already accepted by this device");
      // A leg that was ringing at the accept has been told already; tell it only once.
      if (leg.state !== "answered-elsewhere") this.#endLeg(call, leg, "answered-elsewhere");
      throw new SignalingError("SIG_ERR_CALL_STATE", "call answered elsewhere");
    }
    if (!LIVE_LEG.has(leg.state)) throw new SignalingError("SIG_ERR_CALL_STATE", `leg is ${leg.state}`);
    leg.state = "accepted";
    call.accepted = leg;
    call.state = "answered";
    for (const other of call.legs.values()) {
      if (other !== leg && LIVE_LEG.has(other.state)) this.#endLeg(call, other, "answered-elsewhere");
    }
    this.#o.deliver(
      call.caller,
      JSON.stringify({ type: "call-accepted", callId, peerId: device.peerId, polite: false }),
      "call-accepted",
    );
    this.#arm(call, this.#o.confirmTimeoutMs, () => this.#end(call, "confirm-timeout"));
  }

  /** The caller confirms the accepted device: the call is active; the callee is the polite side. */
  confirm(device: CallDevice, callId: string): void {
    const call = this.#call(callId);
    if (call.caller.sessionId !== device.sessionId) throw new SignalingError("SIG_ERR_NOT_CALL_PARTY", "only the caller confirms");
    if (call.state !== "answered" || !call.accepted) throw new SignalingError("SIG_ERR_CALL_STATE", `call is ${call.state}`);
    call.state = "active";
    this.#disarm(call);
    this.#o.deliver(call.accepted.device, JSON.stringify({ type: "call-confirmed", callId, polite: true }), "call-confirmed");
  }

  /**
   * A callee device rejects. `declined` ends ringing everywhere; `busy` ends that leg only, and the
   * call once no leg is left ringing.
   */
  reject(device: CallDevice, callId: string, reason: "declined" | "busy"): void {
    const call = this.#call(callId);
    const leg = this.#leg(call, device);
    if (call.state !== "inviting" && call.state !== "ringing") throw new SignalingError("SIG_ERR_CALL_STATE", `call is ${call.state}`);
    if (!LIVE_LEG.has(leg.state)) throw new SignalingError("SIG_ERR_CALL_STATE", `leg is ${leg.state}`);
    if (reason === "declined") {
      leg.state = "declined";
      this.#end(call, "declined");
      return;
    }
    leg.state = "busy";
    this.#o.onMembership(leg.device.sessionId, callId, false);
    // A dismissed device only silenced its ringer (Matrix "ignore"): the call rings on until the
    // timeout rather than ending as busy.
    if (!this.#anyLiveLeg(call) && !this.#anyDismissed(call)) this.#end(call, "busy");
  }

  /** A callee device stops ringing locally; nobody else is told. */
  dismiss(device: CallDevice, callId: string): void {
    const call = this.#call(callId);
    const leg = this.#leg(call, device);
    if (!LIVE_LEG.has(leg.state)) throw new SignalingError("SIG_ERR_CALL_STATE", `leg is ${leg.state}`);
    leg.state = "dismissed";
    this.#o.onMembership(leg.device.sessionId, callId, false);
  }

  /** The caller cancels: before an accept it ends the call; after one it is a hangup. */
  cancel(device: CallDevice, callId: string): void {
    const call = this.#call(callId);
    if (call.caller.sessionId !== device.sessionId) throw new SignalingError("SIG_ERR_NOT_CALL_PARTY", "only the caller cancels");
    this.#end(call, call.state === "inviting" || call.state === "ringing" ? "cancelled" : "hangup");
  }

  /** Either party hangs up. A caller's hangup before an accept is a cancel. */
  hangup(device: CallDevice, callId: string, reason: CallEndReason = "hangup"): void {
    const call = this.#call(callId);
    const isCaller = call.caller.sessionId === device.sessionId;
    if (isCaller && (call.state === "inviting" || call.state === "ringing")) {
      this.#end(call, "cancelled");
      return;
    }
    if (!isCaller && call.accepted?.device.sessionId !== device.sessionId) {
      throw new SignalingError("SIG_ERR_CALL_STATE", "decline a ringing call with call-reject");
    }
    this.#end(call, reason === "failed" ? "failed" : "hangup");
  }

  /**
   * Relays a negotiation message between the caller and the accepted device (never to a device that
   * only rang). Allowed once the call is answered.
   */
  relay(device: CallDevice, callId: string, type: string, fields: Record<string, unknown>): void {
    const call = this.#call(callId);
    if (call.state !== "answered" && call.state !== "active") throw new SignalingError("SIG_ERR_CALL_STATE", `call is ${call.state}`);
    const accepted = call.accepted as Leg;
    let target: CallDevice;
    if (device.sessionId === call.caller.sessionId) target = accepted.device;
    else if (device.sessionId === accepted.device.sessionId) target = call.caller;
    else throw new SignalingError("SIG_ERR_NOT_CALL_PARTY", "not a party of this call");
    this.#o.deliver(target, JSON.stringify({ type, callId, from: device.peerId, ...fields }), type);
  }

  /**
   * A session ended for good: its calls and legs end. `reason` is `hangup` when the client left on
   * purpose (bye, clean close) and `connection-lost` when it vanished (resume window over, kick).
   */
  /**
   * Routes a party's events to another edge (its session moved to another pod). Returns where they
   * went before (`undefined`: this pod), or null when the session takes no part in a live call.
   */
  moveSession(callId: string, sessionId: string, edge: string | undefined): { edge: string | undefined } | null {
    const call = this.#calls.get(callId);
    if (!call || call.state === "ended") return null;
    if (call.caller.sessionId === sessionId) {
      const before = call.caller.edge;
      call.caller = { ...call.caller, edge };
      return { edge: before };
    }
    for (const leg of call.legs.values()) {
      if (leg.device.sessionId !== sessionId) continue;
      const before = leg.device.edge;
      leg.device = { ...leg.device, edge };
      return { edge: before };
    }
    return null;
  }

  sessionGone(sessionId: string, callIds: Iterable<string>, reason: "hangup" | "connection-lost" = "connection-lost"): void {
    for (const callId of [...callIds]) {
      const call = this.#calls.get(callId);
      if (!call) continue;
      if (call.caller.sessionId === sessionId) {
        this.#end(call, call.state === "inviting" || call.state === "ringing" ? "cancelled" : reason);
        continue;
      }
      if (call.accepted?.device.sessionId === sessionId) {
        this.#end(call, reason);
        continue;
      }
      for (const leg of call.legs.values()) {
        if (leg.device.sessionId === sessionId && LIVE_LEG.has(leg.state)) leg.state = "gone";
      }
      if ((call.state === "inviting" || call.state === "ringing") && !this.#anyLiveLeg(call) && !this.#anyDismissed(call)) this.#end(call, "unavailable");
    }
  }

  /** Ends every call (pod shutdown). */
  close(): void {
    for (const call of [...this.#calls.values()]) this.#end(call, "failed");
  }

  #ringTimeout(call: Call): void {
    // #end marks the live legs timed-out as it tells them (rule 12: caller and every leg hear it).
    this.#end(call, "no-answer");
  }

  #findInvite(callerUserId: string, calleeUserId: string, except: Call): Call | undefined {
    for (const call of this.#calls.values()) {
      if (
        call !== except &&
        call.caller.userId === callerUserId &&
        call.calleeUserId === calleeUserId &&
        (call.state === "inviting" || call.state === "ringing")
      ) {
        return call;
      }
    }
    return undefined;
  }

  #anyDismissed(call: Call): boolean {
    for (const leg of call.legs.values()) if (leg.state === "dismissed") return true;
    return false;
  }

  #anyLiveLeg(call: Call): boolean {
    for (const leg of call.legs.values()) if (LIVE_LEG.has(leg.state)) return true;
    return false;
  }

  #call(callId: string): Call {
    const call = this.#calls.get(callId);
    if (!call) throw new SignalingError("SIG_ERR_CALL_NOT_FOUND", `no call ${callId}`);
    return call;
  }

  #leg(call: Call, device: CallDevice): Leg {
    const leg = call.legs.get(device.peerId);
    if (!leg || leg.device.sessionId !== device.sessionId) throw new SignalingError("SIG_ERR_NOT_CALL_PARTY", "not a callee device of this call");
    return leg;
  }

  #endLeg(call: Call, leg: Leg, reason: CallEndReason & LegState): void {
    leg.state = reason;
    this.#o.onMembership(leg.device.sessionId, call.id, false);
    this.#o.deliver(leg.device, JSON.stringify({ type: "call-ended", callId: call.id, reason, legOnly: true }), "call-ended");
  }

  /** Ends the call: every party still involved is told once, timers stop, the call is forgotten. */
  #end(call: Call, reason: CallEndReason): void {
    if (call.state === "ended") return;
    call.state = "ended";
    this.#disarm(call);
    this.#calls.delete(call.id);
    const json = JSON.stringify({ type: "call-ended", callId: call.id, reason, legOnly: false });
    this.#o.deliver(call.caller, json, "call-ended");
    this.#o.onMembership(call.caller.sessionId, call.id, false);
    for (const leg of call.legs.values()) {
      if (leg === call.accepted || LIVE_LEG.has(leg.state) || leg.state === "declined") {
        if (LIVE_LEG.has(leg.state)) leg.state = reason === "no-answer" ? "timed-out" : "cancelled";
        this.#o.deliver(leg.device, json, "call-ended");
      }
      this.#o.onMembership(leg.device.sessionId, call.id, false);
    }
  }

  #arm(call: Call, ms: number, fn: () => void): void {
    this.#disarm(call);
    call.timer = setTimeout(fn, ms);
    call.timer.unref?.();
  }

  #disarm(call: Call): void {
    if (call.timer) clearTimeout(call.timer);
    call.timer = null;
  }
}
