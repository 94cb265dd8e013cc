import type { HashRing } from "@switchboard/ring";
import type { Logger } from "../logger.ts";
import type { RoomMember } from "../rooms/room-service.ts";
import type { RoomStore, StoredMember } from "./room-store.ts";
import type { RoomCommand } from "./wire.ts";
import { roomKey } from "./owner-key.ts";

/**
 * Moves rooms between owners when the ring changes (docs/cluster.md, "Ring changes and handoff").
 *
 * Version n → n+1, a room moving from O to N:
 * 1. every pod applies n+1 and reports it (after the commands it forwarded under n are stored);
 *    from then on edges send the room's commands to N, which holds them (`gate`);
 * 2. O keeps applying the room's commands that reach its own subject; once every pod reports n+1 it
 *    passes a barrier through its own subject (so every command sent to it under n was applied),
 *    forgets the rooms it no longer owns (their membership is in the room store, written after
 *    every change) and sends `handoff` to every pod;
 * 3. N, on O's handoff, loads the room from the store and applies the held commands in order.
 * A member that left the ring while ACTIVE is presumed dead (killed, not drained): once every pod
 * applied the new ring, the new owner of each of its rooms loads the room from the store and applies
 * the commands the dead pod never acknowledged (read from its subject of that room) before any other.
 * So every command is applied by one owner, in the order each sender sent it.
 */

/** What the handoff needs of the pod. */
export interface HandoffHost {
  readonly podName: string;
  readonly log: Logger;
  readonly store: RoomStore;
  /** Rooms held in memory here, and their members. */
  roomIds(): Iterable<string>;
  members(room: string): readonly RoomMember[] | undefined;
  hasRoom(room: string): boolean;
  restoreRoom(room: string, members: readonly RoomMember[]): void;
  forgetRoom(room: string): void;
  /** Resolves once every member of `ring` reports having applied its version (or the wait timed out). */
  converged(ring: HashRing): Promise<void>;
  /** Resolves once every command stored on this pod's subject before the call was applied. */
  barrier(): Promise<void>;
  /** Sends `handoff` (this pod released the rooms it no longer owns under `version`) to every pod of the ring. */
  announceHandoff(version: number, ring: HashRing): Promise<void>;
  /** The commands for `room` that the dead pod `dead` stored but never acknowledged, in order. */
  backlog(dead: string, room: string): Promise<RoomCommand[]>;
  /**
   * Resolves once this pod's sessions took every event stored for them before bus position
   * `beforeSeq` (0: before now) (so events
   * of a room's new owner, delivered here directly, cannot overtake those of its old owner).
   */
  eventsCaughtUp(beforeSeq: number): Promise<void>;
  /** The bus's last position now. */
  position(): Promise<number>;
  /** Applies a command as the room's owner. */
  apply(cmd: RoomCommand): Promise<void>;
}

export class RoomHandoff {
  readonly #h: HandoffHost;
  /** The last ring change: rooms that moved here are held until their previous owner hands them off. */
  #change: { prev: HashRing; next: HashRing } | null = null;
  /** Highest version each pod handed its rooms off for, and the bus position of that handoff. */
  readonly #handedOff = new Map<string, number>();
  readonly #handoffSeq = new Map<string, number>();
  readonly #handoffWaiters = new Map<string, Array<() => void>>();
  /** Rooms being opened (waiting for a handoff, loading from the store). */
  readonly #gates = new Map<string, Promise<void>>();
  /** How long a room waits for its previous owner's handoff before it is loaded anyway. */
  readonly #handoffTimeoutMs: number;
  #running: Promise<void> = Promise.resolve();

  constructor(host: HandoffHost, options: { handoffTimeoutMs?: number } = {}) {
    this.#h = host;
    this.#handoffTimeoutMs = options.handoffTimeoutMs ?? 15_000;
  }

  /**
   * Null when commands for `room` can be applied now (this pod owns it and holds it, or it is new);
   * else a promise that resolves once they can (handoff received, state loaded). Call only for rooms
   * this pod owns on the ring.
   */
  gate(room: string): Promise<void> | null {
    if (this.#h.hasRoom(room)) return this.#gates.get(room) ?? null;
    let g = this.#gates.get(room);
    if (!g) {
      g = this.#open(room).finally(() => this.#gates.delete(room));
      this.#gates.set(room, g);
    }
    return g;
  }

  /** A pod handed off its rooms of `version` (its own handoff, or its heir's). */
  handoffReceived(from: string, version: number, streamSeq = 0): void {
    if ((this.#handedOff.get(from) ?? 0) >= version) return;
    this.#handedOff.set(from, version);
    this.#handoffSeq.set(from, streamSeq);
    for (const w of this.#handoffWaiters.get(from)?.splice(0) ?? []) w();
  }

  /** Applies a ring change (called once per new version, after the ring view switched). */
  ringChanged(next: HashRing, prev: HashRing): void {
    this.#change = { prev, next };
    // Changes are handled one after the other, in version order.
    this.#running = this.#running.then(() => this.#handle(prev, next)).catch((err: unknown) => this.#h.log.error({ err }, "ring handoff failed"));
  }

  /** Resolves when the handoffs started so far are done (tests, shutdown). */
  settled(): Promise<void> {
    return this.#running;
  }

  async #handle(prev: HashRing, next: HashRing): Promise<void> {
    const me = this.#h.podName;
    const started = performance.now();
    await this.#h.converged(next);
    // Rooms of a member that died: opened at once (their members' requests to the dead owner wait
    // for replies that only the backlog applied here will give).
    const dead = new Set(prev.activeMembers.filter((m) => !next.member(m.name)).map((m) => m.name));
    if (dead.size > 0) {
      for (const room of await this.#h.store.rooms()) {
        const key = roomKey(room);
        const from = prev.ownerOf(key)?.name;
        if (from !== undefined && dead.has(from) && next.ownerOf(key)?.name === me) void this.gate(room);
      }
    }
    // Rooms this pod held that now belong elsewhere. Every pod announces its handoff after every
    // change, holding rooms or not: a room that was empty (or new) waits for its old owner too.
    await this.#h.barrier();
    let handedOff = 0;
    for (const room of [...this.#h.roomIds()]) {
      if (next.ownerOf(roomKey(room))?.name === me) continue;
      await this.#h.store.save(room, toStored(this.#h.members(room) ?? [], me));
      this.#h.forgetRoom(room);
      handedOff += 1;
    }
    await this.#h.announceHandoff(next.version, next);
    this.#h.log.info({ version: next.version, handedOff, ms: Math.round(performance.now() - started) }, "ring: handoff done");
  }

  async #open(room: string): Promise<void> {
    const change = this.#change;
    const key = roomKey(room);
    const me = this.#h.podName;
    const from = change?.prev.ownerOf(key)?.name;
    if (change && from !== undefined && from !== me) {
      if (change.next.member(from) === undefined) {
        // Its owner died: once no pod sends it anything more, take over what it left.
        await this.#h.converged(change.next);
        // Whatever the dead owner sent is stored by now: its events to this pod's sessions go first.
        await this.#h.eventsCaughtUp((await this.#h.position()) + 1);
        await this.#load(room);
        const backlog = await this.#h.backlog(from, room);
        if (backlog.length > 0) this.#h.log.warn({ room, from, commands: backlog.length }, "ring: applying commands a dead owner never handled");
        for (const cmd of backlog) await this.#h.apply(cmd);
        return;
      }
      if ((this.#handedOff.get(from) ?? 0) < change.next.version) await this.#waitHandoff(from, change.next.version);
      // The old owner's last events here were stored before its handoff: they go first.
      await this.#h.eventsCaughtUp(this.#handoffSeq.get(from) ?? 0);
    }
    await this.#load(room);
  }

  async #load(room: string): Promise<void> {
    if (this.#h.hasRoom(room)) return;
    const stored = await this.#h.store.load(room);
    if (stored.length > 0 && !this.#h.hasRoom(room)) this.#h.restoreRoom(room, fromStored(stored, this.#h.podName));
  }

  #waitHandoff(from: string, version: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#h.log.warn({ from, version }, "ring: no handoff in time; loading the room from the store");
        resolve();
      }, this.#handoffTimeoutMs);
      timer.unref();
      const check = () => {
        if ((this.#handedOff.get(from) ?? 0) >= version) {
          clearTimeout(timer);
          resolve();
        } else {
          const list = this.#handoffWaiters.get(from) ?? [];
          list.push(check);
          this.#handoffWaiters.set(from, list);
        }
      };
      check();
    });
  }
}

/** Members as the store keeps them (`edge` always named). */
export function toStored(members: readonly RoomMember[], me: string): StoredMember[] {
  return members.map((m) => ({ sessionId: m.sessionId, peerId: m.peerId, userId: m.userId, meta: m.meta, edge: m.edge ?? me, connected: m.connected }));
}

/** Stored members as the owner `me` keeps them (its own sessions without an edge). */
export function fromStored(members: readonly StoredMember[], me: string): RoomMember[] {
  return members.map((m) => ({ sessionId: m.sessionId, peerId: m.peerId, userId: m.userId, meta: m.meta, connected: m.connected, ...(m.edge === me ? {} : { edge: m.edge }) }));
}
