import { SignalingError } from "../errors.ts";
import { CallService, type CallDevice } from "../calls/call-service.ts";
import { roomKey } from "../cluster/owner-key.ts";
import { commandKey, type RoomCommand } from "../cluster/wire.ts";
import { RoomService, type DeliveryTarget, type RoomMember } from "../rooms/room-service.ts";
import { noEffects, type OwnerEffects } from "./owner-effects.ts";

/** Options of {@link RoomOwner}. */
export interface RoomOwnerOptions {
  /** This pod's name in cluster mode (a sender whose edge is this pod is local); undefined alone. */
  readonly podName: string | undefined;
  readonly maxPeersPerRoom: number;
  readonly ringTimeoutMs: number;
  readonly confirmTimeoutMs: number;
  /** The devices of a user that can take calls, on this pod. */
  readonly devicesOf: (userId: string) => CallDevice[];
  /**
   * What a timer did (a call's ring or confirm timeout), outside any command: carried out by the
   * host on its own path, so it never joins, or fails, an unrelated command.
   */
  readonly onUnprompted: (effects: OwnerEffects) => void;
}

/** What {@link RoomOwner.apply} did: its effects, and the refusal when it refused (the effects made before it still stand). */
export interface OwnerOutcome {
  readonly effects: OwnerEffects;
  readonly error: unknown;
}

/**
 * The owner of rooms and calls on this pod: RoomService and CallService with their timers. A
 * command goes in, its effects come out as values ({@link OwnerEffects}); the owner keeps no
 * state about the command being applied once `apply` returned, and does no I/O. The edge turns
 * client messages into commands; the host (Hub in single-node mode and cluster mode alike) carries
 * the effects out and answers the sender.
 *
 * Commands of one key are applied one at a time and in order by whoever calls `apply`
 * (synchronously here; in cluster mode through the key's queue on the owner pod).
 */
export class RoomOwner {
  readonly rooms: RoomService;
  readonly calls: CallService;
  readonly #o: RoomOwnerOptions;
  /** The effects of the command being applied (set only inside `apply`, which is synchronous). */
  #current: OwnerEffects | null = null;
  /** Effects made outside any command (timers), flushed to the host at the end of the task. */
  #unprompted: OwnerEffects | null = null;

  constructor(options: RoomOwnerOptions) {
    this.#o = options;
    const deliver = (to: DeliveryTarget, json: string, type: string) => this.#sink().effects.push({ k: "deliver", to, json, type });
    this.rooms = new RoomService({ deliver, maxPeersPerRoom: options.maxPeersPerRoom });
    this.calls = new CallService({
      deliver,
      devicesOf: options.devicesOf,
      onMembership: (sessionId, callId, member) => this.#sink().effects.push({ k: "call-membership", sessionId, callId, member }),
      ringTimeoutMs: options.ringTimeoutMs,
      confirmTimeoutMs: options.confirmTimeoutMs,
    });
  }

  /** Applies one command as the owner of its room or call. Never throws: a refusal is in the outcome. */
  apply(cmd: RoomCommand): OwnerOutcome {
    return this.#collect(this.#keyed(commandKey(cmd)), (fx) => {
      try {
        this.#apply(cmd, fx);
        return { effects: fx, error: undefined };
      } catch (err) {
        return { effects: fx, error: err };
      }
    });
  }

  /** Administrator close: every member is told `room-closed`, the room is gone (and stored empty). */
  closeRoom(roomId: string, reason: string): { effects: OwnerEffects; members: RoomMember[] } {
    return this.#collect(this.#keyed(roomKey(roomId)), (fx) => {
      const members = this.rooms.close(roomId, reason);
      fx.effects.push({ k: "persist", room: roomId, members: [] });
      return { effects: fx, members };
    });
  }

  /** Ends the calls owned here (pod shutdown): their parties are told, in the effects returned. */
  close(): OwnerEffects {
    return this.#collect(undefined, (fx) => {
      this.calls.close();
      return fx;
    });
  }

  /** The key that tags effects sent to other pods (none in single-node mode). */
  #keyed(key: string): string | undefined {
    return this.#o.podName === undefined ? undefined : key;
  }

  /** Runs `fn` with the services' deliveries collected into one set of effects (apply is synchronous). */
  #collect<T>(key: string | undefined, fn: (fx: OwnerEffects) => T): T {
    const fx = noEffects(key);
    this.#current = fx;
    try {
      return fn(fx);
    } finally {
      this.#current = null;
    }
  }

  #sink(): OwnerEffects {
    if (this.#current) return this.#current;
    if (!this.#unprompted) {
      const batch = noEffects(undefined);
      this.#unprompted = batch;
      // A timer's callback makes its effects synchronously: they are handed over as one batch.
      queueMicrotask(() => {
        this.#unprompted = null;
        this.#o.onUnprompted(batch);
      });
    }
    return this.#unprompted;
  }

  // The sender is reached at `from` itself (a DeliveryTarget: its session and edge; the host treats
  // this pod's own name as local), and the ok and the call device are made only by the cases that
  // use them: a relayed message is one of these commands, and this runs for every one of them.
  #apply(cmd: RoomCommand, fx: OwnerEffects): void {
    const { from } = cmd;
    const local = this.#o.podName === undefined || from.edge === this.#o.podName;
    switch (cmd.k) {
      case "join": {
        const snapshot = this.rooms.join(cmd.room, { sessionId: from.sessionId, peerId: from.peerId, userId: from.userId, meta: cmd.meta, ...(local ? {} : { edge: from.edge }) });
        this.#persist(fx, cmd.room);
        fx.effects.push({ k: "deliver", to: from, type: "joined", json: JSON.stringify({ type: "joined", ...(from.id === undefined ? {} : { id: from.id }), room: cmd.room, self: snapshot.self, peers: snapshot.peers }) });
        return;
      }
      case "leave":
        if (!this.rooms.leave(cmd.room, from.peerId, cmd.reason)) {
          if (from.id !== undefined) throw new SignalingError("SIG_ERR_NOT_IN_ROOM", `not in room ${cmd.room}`);
        } else this.#persist(fx, cmd.room);
        this.#ok(fx, from);
        return;
      case "update":
        this.rooms.update(cmd.room, from.peerId, cmd.meta);
        this.#persist(fx, cmd.room);
        this.#ok(fx, from);
        return;
      case "send":
        this.rooms.sendTo(cmd.room, from.peerId, cmd.to, cmd.type, cmd.json);
        this.#ok(fx, from);
        return;
      case "broadcast":
        this.rooms.broadcast(cmd.room, from.peerId, cmd.type, cmd.json);
        this.#ok(fx, from);
        return;
      case "connected":
        this.rooms.setConnected(cmd.room, from.peerId, cmd.connected);
        return;
      case "call-invite": {
        const podName = this.#o.podName;
        const devices = cmd.devices?.filter((d) => d.sessionId !== from.sessionId).map((d) => (d.edge === podName ? { sessionId: d.sessionId, peerId: d.peerId, userId: d.userId } : d));
        this.calls.invite(callDevice(from, local), cmd.to, cmd.meta, (r) =>
            fx.effects.push({ k: "deliver", to: from, type: "call-trying", json: JSON.stringify({ type: "call-trying", ...(from.id === undefined ? {} : { id: from.id }), callId: r.callId, to: cmd.to, devices: r.devices }) }), {
          callId: cmd.callId,
          ...(devices ? { devices } : {}),
        });
        return;
      }
      case "call-op": {
        const device = callDevice(from, local);
        switch (cmd.op) {
          case "call-ringing":
            this.calls.ringing(device, cmd.callId);
            break;
          case "call-accept":
            this.calls.accept(device, cmd.callId);
            break;
          case "call-confirm":
            this.calls.confirm(device, cmd.callId);
            break;
          case "call-reject":
            this.calls.reject(device, cmd.callId, cmd.reason === "busy" ? "busy" : "declined");
            break;
          case "call-dismiss":
            this.calls.dismiss(device, cmd.callId);
            break;
          case "call-cancel":
            this.calls.cancel(device, cmd.callId);
            break;
          case "call-hangup":
            this.calls.hangup(device, cmd.callId, cmd.reason);
            break;
        }
        this.#ok(fx, from);
        return;
      }
      case "call-relay":
        this.calls.relay(callDevice(from, local), cmd.callId, cmd.type, cmd.fields);
        this.#ok(fx, from);
        return;
      case "call-gone":
        this.calls.sessionGone(from.sessionId, [cmd.callId], cmd.reason);
        return;
      case "reattach":
        this.#reattach(cmd, local, fx);
        return;
    }
  }

  /** The room's membership, to store before the reply. */
  #persist(fx: OwnerEffects, room: string): void {
    fx.effects.push({ k: "persist", room, members: this.rooms.members(room) ?? [] });
  }

  /** The `ok` of a sender that waits for one (it sent a request id). */
  #ok(fx: OwnerEffects, from: RoomCommand["from"]): void {
    if (from.id !== undefined) fx.reply = { to: from, json: `{"type":"ok","id":${JSON.stringify(from.id)}}` };
  }

  /**
   * A member's session moved to another edge (cluster mode): its events go there from now on; a
   * `moved` marker goes to the old edge's subject first (the new edge reads that subject up to the
   * marker). When the owner no longer has the session there, it says so to the session.
   */
  #reattach(cmd: Extract<RoomCommand, { k: "reattach" }>, local: boolean, fx: OwnerEffects): void {
    const { from, prev } = cmd;
    const newEdge = local ? undefined : from.edge;
    const key = commandKey(cmd);
    const moved = "room" in cmd ? this.rooms.moveMember(cmd.room, from.sessionId, newEdge) : this.calls.moveSession(cmd.callId, from.sessionId, newEdge);
    if (moved && "room" in cmd) fx.effects.push({ k: "persist", room: cmd.room, members: this.rooms.members(cmd.room) ?? [] });
    fx.effects.push({ k: "moved", sessionId: from.sessionId, previousEdge: prev, key, moved: moved ? "yes" : "gone" });
    if (moved) return;
    // The owner no longer has the session there (it left, timed out, or the state was lost).
    const target: DeliveryTarget = local ? { sessionId: from.sessionId } : { sessionId: from.sessionId, edge: from.edge };
    if ("callId" in cmd) fx.effects.push({ k: "deliver", to: target, json: JSON.stringify({ type: "call-ended", callId: cmd.callId, reason: "connection-lost" }), type: "call-ended" });
    else fx.effects.push({ k: "deliver", to: target, json: JSON.stringify({ type: "room-closed", room: cmd.room, reason: "membership-lost" }), type: "room-closed" });
  }
}

function callDevice(from: RoomCommand["from"], local: boolean): CallDevice {
  return { sessionId: from.sessionId, peerId: from.peerId, userId: from.userId, ...(local ? {} : { edge: from.edge }) };
}
