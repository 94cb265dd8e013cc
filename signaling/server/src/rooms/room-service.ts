import type { Meta, PeerInfo, PeerLeftReason } from "@switchboard/protocol";
import { SignalingError } from "../errors.ts";

/** Where an event goes: a session, and the pod holding it when that is not this one. */
export interface DeliveryTarget {
  readonly sessionId: string;
  /** The edge pod of the session in cluster mode; undefined for a session on this pod. */
  readonly edge?: string | undefined;
}

/** A member of a room, as the owner keeps it. */
export interface RoomMember extends DeliveryTarget {
  readonly sessionId: string;
  readonly peerId: string;
  readonly userId: string;
  meta: Meta;
  connected: boolean;
}

/** Sends an already serialized event (without `seq`) to one session. */
export type DeliverFn = (to: DeliveryTarget, eventJson: string, type: string) => void;

interface Room {
  readonly id: string;
  readonly createdAtMs: number;
  /** Members in join order (Map keeps insertion order: the snapshot order). */
  readonly members: Map<string, RoomMember>;
  /** Users barred from rejoining (admin kick with ban). */
  readonly bannedUsers: Set<string>;
}

/** A room as the admin API lists it. */
export interface RoomSummary {
  readonly room: string;
  readonly peers: number;
  readonly createdAtMs: number;
}

/**
 * The authoritative state of rooms: membership, metadata and bans, and the fan-out of room events.
 * Every operation validates fully before it changes anything, so a refused request leaves no trace.
 */
export class RoomService {
  readonly #rooms = new Map<string, Room>();
  readonly #deliver: DeliverFn;
  readonly #maxPeersPerRoom: number;
  readonly #now: () => number;

  constructor(options: { deliver: DeliverFn; maxPeersPerRoom: number; now?: () => number }) {
    this.#deliver = options.deliver;
    this.#maxPeersPerRoom = options.maxPeersPerRoom;
    this.#now = options.now ?? Date.now;
  }

  /** Rooms with at least one member. */
  get size(): number {
    return this.#rooms.size;
  }

  /**
   * Adds `member` to `roomId` and tells the others. Resolves the room snapshot: the member as
   * others see it and every other peer, in join order.
   */
  join(roomId: string, member: Omit<RoomMember, "connected">): { self: PeerInfo; peers: PeerInfo[] } {
    const existing = this.#rooms.get(roomId);
    if (existing?.members.has(member.peerId)) throw new SignalingError("SIG_ERR_ALREADY_IN_ROOM", `already in room ${roomId}`);
    if (existing?.bannedUsers.has(member.userId)) throw new SignalingError("SIG_ERR_BANNED", `banned from room ${roomId}`);
    if (existing && existing.members.size >= this.#maxPeersPerRoom) {
      throw new SignalingError("SIG_ERR_ROOM_FULL", `room ${roomId} is full (${this.#maxPeersPerRoom} peers)`);
    }
    const room = existing ?? this.#create(roomId);
    const peers = [...room.members.values()].map(peerInfo);
    const joined: RoomMember = { ...member, connected: true };
    room.members.set(member.peerId, joined);
    const self = peerInfo(joined);
    this.#fanOut(room, member.peerId, "peer-joined", JSON.stringify({ type: "peer-joined", room: roomId, peer: self }));
    return { self, peers };
  }

  /** Removes a member and tells the others why. Returns false when it was not a member. */
  leave(roomId: string, peerId: string, reason: PeerLeftReason): boolean {
    const room = this.#rooms.get(roomId);
    if (!room?.members.delete(peerId)) return false;
    this.#fanOut(room, peerId, "peer-left", JSON.stringify({ type: "peer-left", room: roomId, peerId, reason }));
    if (room.members.size === 0) this.#rooms.delete(roomId);
    return true;
  }

  /** Replaces a member's metadata and tells the others. */
  update(roomId: string, peerId: string, meta: Meta): PeerInfo {
    const member = this.#member(roomId, peerId);
    member.meta = meta;
    return this.#announceUpdate(roomId, member);
  }

  /** Marks a member connected or not (its socket dropped, the session may resume). */
  setConnected(roomId: string, peerId: string, connected: boolean): void {
    const member = this.#rooms.get(roomId)?.members.get(peerId);
    if (!member || member.connected === connected) return;
    member.connected = connected;
    this.#announceUpdate(roomId, member);
  }

  /** Delivers a serialized event from `fromPeerId` to one other member of the room. */
  sendTo(roomId: string, fromPeerId: string, toPeerId: string, type: string, eventJson: string): void {
    const room = this.#memberRoom(roomId, fromPeerId);
    const target = room.members.get(toPeerId);
    if (!target) throw new SignalingError("SIG_ERR_PEER_NOT_FOUND", `peer ${toPeerId} is not in room ${roomId}`);
    this.#deliver(target, eventJson, type);
  }

  /** Delivers a serialized event from `fromPeerId` to every other member. Returns how many. */
  broadcast(roomId: string, fromPeerId: string, type: string, eventJson: string): number {
    const room = this.#memberRoom(roomId, fromPeerId);
    return this.#fanOut(room, fromPeerId, type, eventJson);
  }

  /**
   * Routes a member's events to another edge (its session moved: a resume on another pod) and marks
   * it connected. Returns where its events went before (`undefined`: this pod), or null when the
   * session is not a member.
   */
  moveMember(roomId: string, sessionId: string, edge: string | undefined): { edge: string | undefined } | null {
    const room = this.#rooms.get(roomId);
    if (!room) return null;
    for (const [peerId, m] of room.members) {
      if (m.sessionId !== sessionId) continue;
      const moved: RoomMember = { ...m, edge, connected: true };
      room.members.set(peerId, moved);
      if (!m.connected) this.#announceUpdate(roomId, moved);
      return { edge: m.edge };
    }
    return null;
  }

  /** True when the room exists here (has members). */
  has(roomId: string): boolean {
    return this.#rooms.has(roomId);
  }

  /** The ids of the rooms held here. */
  ids(): IterableIterator<string> {
    return this.#rooms.keys();
  }

  /**
   * Takes over a room another pod owned, from its stored membership (join order), telling nobody:
   * its members already know each other. Replaces any copy held here.
   */
  restore(roomId: string, members: readonly RoomMember[]): void {
    if (members.length === 0) return;
    const room = this.#create(roomId);
    for (const m of members) room.members.set(m.peerId, { ...m });
  }

  /** Drops a room handed to another owner, telling nobody. */
  forget(roomId: string): void {
    this.#rooms.delete(roomId);
  }

  /** True when `peerId` is a member of `roomId`. */
  isMember(roomId: string, peerId: string): boolean {
    return this.#rooms.get(roomId)?.members.has(peerId) ?? false;
  }

  /**
   * Closes a room: every member gets `room-closed` and is removed. Returns the removed members so
   * their sessions can forget the room.
   */
  close(roomId: string, reason: string): RoomMember[] {
    const room = this.#rooms.get(roomId);
    if (!room) throw new SignalingError("SIG_ERR_ROOM_NOT_FOUND", `no room ${roomId}`);
    this.#rooms.delete(roomId);
    const json = JSON.stringify({ type: "room-closed", room: roomId, reason });
    const members = [...room.members.values()];
    for (const m of members) this.#deliver(m, json, "room-closed");
    return members;
  }

  /** Bars a user from rejoining a room (until the room is emptied). */
  ban(roomId: string, userId: string): void {
    this.#rooms.get(roomId)?.bannedUsers.add(userId);
  }

  /** Every room with its member count. */
  list(): RoomSummary[] {
    return [...this.#rooms.values()].map((r) => ({ room: r.id, peers: r.members.size, createdAtMs: r.createdAtMs }));
  }

  /** The members of a room, or undefined when it does not exist. */
  members(roomId: string): RoomMember[] | undefined {
    const room = this.#rooms.get(roomId);
    return room ? [...room.members.values()] : undefined;
  }

  #create(roomId: string): Room {
    const room: Room = { id: roomId, createdAtMs: this.#now(), members: new Map(), bannedUsers: new Set() };
    this.#rooms.set(roomId, room);
    return room;
  }

  #memberRoom(roomId: string, peerId: string): Room {
    const room = this.#rooms.get(roomId);
    if (!room?.members.has(peerId)) throw new SignalingError("SIG_ERR_NOT_IN_ROOM", `not in room ${roomId}`);
    return room;
  }

  #member(roomId: string, peerId: string): RoomMember {
    return this.#memberRoom(roomId, peerId).members.get(peerId) as RoomMember;
  }

  #announceUpdate(roomId: string, member: RoomMember): PeerInfo {
    const peer = peerInfo(member);
    const room = this.#rooms.get(roomId) as Room;
    this.#fanOut(room, member.peerId, "peer-updated", JSON.stringify({ type: "peer-updated", room: roomId, peer }));
    return peer;
  }

  #fanOut(room: Room, exceptPeerId: string, type: string, eventJson: string): number {
    let n = 0;
    for (const m of room.members.values()) {
      if (m.peerId === exceptPeerId) continue;
      this.#deliver(m, eventJson, type);
      n += 1;
    }
    return n;
  }
}

function peerInfo(m: RoomMember): PeerInfo {
  return { peerId: m.peerId, userId: m.userId, meta: m.meta, connected: m.connected };
}
