import { randomUUID, timingSafeEqual } from "node:crypto";
import type { Principal } from "../auth/index.ts";
import type { Session, SessionSocket } from "../sessions/session.ts";
import type { PeerJsConfig } from "./peerjs-config.ts";
import {
  ID_TAKEN_FRAME,
  OPEN_FRAME,
  PEERJS_ERRORS,
  errorFrame,
  expireFrame,
  leaveFrame,
  relayFrame,
  type PeerJsClientMessage,
} from "./peerjs-protocol.ts";

/**
 * A PeerJS socket as the realm sees it: PeerJS frames go out with `deliver`; as the socket of a
 * Switchboard {@link Session} it also has `send` (Switchboard events, which a PeerJS client cannot
 * read), `bufferedBytes` and `close`.
 */
export interface PeerJsSocket extends SessionSocket {
  /** Writes one PeerJS frame. */
  deliver(frame: string): void;
}

/** How the realm opens, moves and ends the Switchboard sessions behind PeerJS ids (the pod's Hub). */
export interface PeerJsSessionHost {
  /** Creates, attaches and registers a session for a newly registered id. */
  open(principal: Principal, socket: PeerJsSocket): Session;
  /** Moves a live or waiting session onto a new socket (takeover or return after a blip). */
  attach(session: Session, principal: Principal, socket: PeerJsSocket): void;
  /** The socket went away; the session waits for its id to come back. */
  detach(session: Session, nowMs: number): void;
  /** Ends the session for good. Idempotent. */
  end(session: Session): void;
}

/** What the realm counts. */
export interface PeerJsRealmMetrics {
  messageOut(type: string): void;
  error(code: string): void;
}

/** A registered PeerJS id and its socket. */
export interface PeerJsClient {
  readonly id: string;
  readonly session: Session;
  /** The reconnect secret the client chose (or its JWT). */
  token: string;
  socket: PeerJsSocket;
  lastSeenAtMs: number;
  /** When the JWT behind the id expires (epoch ms), or null. */
  expiresAtMs: number | null;
  /** Ids this peer exchanged messages with, oldest first: they get `LEAVE` when it goes. */
  readonly contacts: Set<string>;
}

/** A registration attempt, after the key and any JWT were checked. */
export interface PeerJsRegistration {
  readonly id: string;
  readonly token: string;
  readonly principal: Principal;
  /** The token proves the id (a verified JWT whose `sub` is the id): it may take the id from any socket. */
  readonly proven: boolean;
  readonly socket: PeerJsSocket;
}

/**
 * What became of a registration: `opened` (new id, `OPEN` sent), `resumed` (came back within the
 * leave grace with its token: same session, no `LEAVE` was sent), `taken-over` (same token while
 * the old socket was still open: the old socket is closed), `id-taken` (`ID-TAKEN` sent, socket
 * closed), `limit` (concurrent limit, `ERROR` sent, socket closed).
 */
export type PeerJsRegisterResult =
  | { readonly ok: true; readonly outcome: "opened" | "resumed" | "taken-over"; readonly client: PeerJsClient }
  | { readonly ok: false; readonly outcome: "id-taken" | "limit" };

/** A peer whose socket went away and that has `leaveGraceMs` to come back before `LEAVE` goes out. */
interface Departed {
  readonly token: string;
  readonly session: Session;
  readonly contacts: Set<string>;
  readonly leaveAtMs: number;
}

/** Messages waiting for a peer that has not connected; they expire together, as in PeerJS server. */
interface Queue {
  readonly createdAtMs: number;
  readonly messages: Array<{ readonly src: string; readonly frame: string }>;
}

/** Most contacts remembered per peer; past it the oldest is forgotten (and gets no `LEAVE`). */
export const MAX_PEERJS_CONTACTS = 1024;

/**
 * The PeerJS id space of one pod and its message semantics, without any socket or timer: ids and
 * tokens, relaying with `src` overwritten, the queue for peers that have not connected (with
 * `EXPIRE`), liveness, and the explicit `LEAVE` when a peer goes. Time is passed in; the owner
 * runs {@link PeerJsRealm.sweep} from one shared timer.
 *
 * An id's life, mapped onto a Switchboard session:
 *
 * | event | PeerJS server | here |
 * |---|---|---|
 * | new id | `OPEN` | `OPEN`, new session (user id = PeerJS id) |
 * | same id, same token, old socket open | moves the id, no `OPEN`, old socket left open | moves the session, `OPEN`, old socket closed (4004) |
 * | same id, other token | `ID-TAKEN` | `ID-TAKEN` (with a JWT for the id: takeover) |
 * | socket closes | id freed, nobody told | id freed, session waits `leaveGraceMs` for the token, then `LEAVE` to every contact |
 * | socket closes with 1001 (page gone), `LEAVE` without `dst`, kick | id freed | `LEAVE` to every contact at once |
 */
export class PeerJsRealm {
  readonly #config: PeerJsConfig;
  readonly #host: PeerJsSessionHost;
  readonly #metrics: PeerJsRealmMetrics;
  readonly #clients = new Map<string, PeerJsClient>();
  readonly #departed = new Map<string, Departed>();
  readonly #queues = new Map<string, Queue>();
  #queuedBytes = 0;

  constructor(options: { config: PeerJsConfig; host: PeerJsSessionHost; metrics: PeerJsRealmMetrics }) {
    this.#config = options.config;
    this.#host = options.host;
    this.#metrics = options.metrics;
  }

  /** Registered (connected) ids. */
  get size(): number {
    return this.#clients.size;
  }

  /** Bytes of all queued messages. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Every connected id, in registration order (the discovery list). */
  ids(): string[] {
    return [...this.#clients.keys()];
  }

  /** The client registered under `id`, if connected. */
  get(id: string): PeerJsClient | undefined {
    return this.#clients.get(id);
  }

  /** True while `id` dropped and may still come back without a `LEAVE`. */
  isDeparting(id: string): boolean {
    return this.#departed.has(id);
  }

  /** A fresh random id no connected peer holds (`GET {path}/{key}/id`). */
  newId(): string {
    let id = randomUUID();
    while (this.#clients.has(id)) id = randomUUID();
    return id;
  }

  /** Registers a socket under an id; sends `OPEN` and the queued messages, or refuses. */
  register(reg: PeerJsRegistration, nowMs: number): PeerJsRegisterResult {
    const { id, socket } = reg;
    const existing = this.#clients.get(id);
    if (existing) {
      if (!reg.proven && !sameSecret(existing.token, reg.token)) {
        this.#metrics.error("PEERJS_ID_TAKEN");
        socket.deliver(ID_TAKEN_FRAME);
        socket.close(1008, "ID-TAKEN");
        return { ok: false, outcome: "id-taken" };
      }
      // A blip the old socket has not noticed yet (or a second tab with the same token): the new
      // socket wins at once instead of waiting out aliveTimeoutMs.
      const previous = existing.socket;
      this.#renew(existing, reg, nowMs);
      this.#host.attach(existing.session, reg.principal, socket);
      previous.close(4004, "SIG_ERR_SESSION_REPLACED");
      this.#opened(existing);
      return { ok: true, outcome: "taken-over", client: existing };
    }
    const departed = this.#departed.get(id);
    const returning = departed !== undefined && (reg.proven || sameSecret(departed.token, reg.token));
    if (!returning && this.#clients.size >= this.#config.concurrentLimit) {
      this.#metrics.error("SIG_ERR_TOO_MANY_CONNECTIONS");
      socket.deliver(errorFrame(PEERJS_ERRORS.CONNECTION_LIMIT_EXCEED));
      socket.close(1013, "SIG_ERR_TOO_MANY_CONNECTIONS");
      return { ok: false, outcome: "limit" };
    }
    if (departed) {
      this.#departed.delete(id);
      if (!returning) {
        // Someone else takes the id: the peers of the one that dropped learn it is gone first.
        this.#finish(id, departed.session, departed.contacts);
      } else if (!departed.session.ended) {
        this.#host.attach(departed.session, reg.principal, socket);
        const client = this.#newClient(reg, departed.session, departed.contacts, nowMs);
        this.#opened(client);
        return { ok: true, outcome: "resumed", client };
      }
    }
    const session = this.#host.open(reg.principal, socket);
    const client = this.#newClient(reg, session, departed && returning ? departed.contacts : new Set(), nowMs);
    this.#opened(client);
    return { ok: true, outcome: "opened", client };
  }

  /** Handles one decoded message of a registered client. */
  receive(client: PeerJsClient, msg: PeerJsClientMessage, nowMs: number): void {
    if (this.#clients.get(client.id) !== client) return;
    client.lastSeenAtMs = nowMs;
    if (msg.type === "HEARTBEAT") return;
    if (msg.dst === undefined) {
      // PeerJS server's "LEAVE without dst removes the sender"; other types without dst go nowhere.
      if (msg.type === "LEAVE") this.#drop(client, 1000, "LEAVE", nowMs, true);
      return;
    }
    const dst = msg.dst;
    const frame = relayFrame(msg.type, client.id, dst, msg.payload);
    const target = this.#clients.get(dst);
    if (target) {
      target.socket.deliver(frame);
      this.#metrics.messageOut(`peerjs.${msg.type}`);
      addContact(client.contacts, dst);
      addContact(target.contacts, client.id);
      return;
    }
    // As PeerJS server: notices about a peer that is not here are not worth keeping.
    if (msg.type === "LEAVE" || msg.type === "EXPIRE") return;
    this.#enqueue(client, dst, frame, nowMs);
  }

  /**
   * The socket of `client` closed (by the peer, the network, or the pod). Ignored when the socket
   * no longer holds the id (it was taken over). Closes that mean the peer is gone for good (1001
   * "going away", a kick) announce `LEAVE` now; others wait `leaveGraceMs` for the token.
   */
  socketClosed(client: PeerJsClient, socket: PeerJsSocket, code: number, nowMs: number): void {
    if (this.#clients.get(client.id) !== client || client.socket !== socket) return;
    this.#clients.delete(client.id);
    this.#depart(client, nowMs, code === 1001);
  }

  /**
   * Housekeeping from the owner's one shared timer: queues older than `expireTimeoutMs` are
   * dropped with one `EXPIRE` per (sender, destination); peers past their leave grace are
   * announced; sockets silent for `aliveTimeoutMs` or whose JWT expired are closed.
   */
  sweep(nowMs: number): void {
    for (const [dst, queue] of this.#queues) {
      if (nowMs - queue.createdAtMs < this.#config.expireTimeoutMs) continue;
      this.#queues.delete(dst);
      const senders = new Set<string>();
      for (const m of queue.messages) {
        this.#queuedBytes -= m.frame.length;
        senders.add(m.src);
      }
      for (const src of senders) this.#expire(src, dst);
    }
    for (const [id, departed] of this.#departed) {
      if (nowMs < departed.leaveAtMs) continue;
      this.#departed.delete(id);
      this.#finish(id, departed.session, departed.contacts);
    }
    for (const client of [...this.#clients.values()]) {
      if (client.expiresAtMs !== null && nowMs >= client.expiresAtMs) {
        this.#metrics.error("SIG_ERR_TOKEN_EXPIRED");
        client.socket.deliver(errorFrame(PEERJS_ERRORS.TOKEN_EXPIRED));
        this.#drop(client, 4003, "SIG_ERR_TOKEN_EXPIRED", nowMs, false);
      } else if (nowMs - client.lastSeenAtMs >= this.#config.aliveTimeoutMs) {
        this.#metrics.error("SIG_ERR_HEARTBEAT_TIMEOUT");
        this.#drop(client, 4011, "SIG_ERR_HEARTBEAT_TIMEOUT", nowMs, false);
      }
    }
  }

  /** Closes the socket of `id` with `code`; the peer may come back within `leaveGraceMs` (drain). */
  disconnect(id: string, code: number, reason: string, nowMs: number): boolean {
    const client = this.#clients.get(id);
    if (!client) return false;
    this.#drop(client, code, reason, nowMs, false);
    return true;
  }

  /** Forgets everything without notices and ends every session (pod shutdown). */
  clear(): void {
    const clients = [...this.#clients.values()];
    const departed = [...this.#departed.values()];
    this.#clients.clear();
    this.#departed.clear();
    this.#queues.clear();
    this.#queuedBytes = 0;
    for (const c of clients) {
      c.socket.close(1001, "SIG_ERR_DRAINING");
      this.#host.end(c.session);
    }
    for (const d of departed) this.#host.end(d.session);
  }

  #newClient(reg: PeerJsRegistration, session: Session, contacts: Set<string>, nowMs: number): PeerJsClient {
    const client: PeerJsClient = {
      id: reg.id,
      session,
      token: reg.token,
      socket: reg.socket,
      lastSeenAtMs: nowMs,
      expiresAtMs: reg.principal.expiresAt,
      contacts,
    };
    this.#clients.set(reg.id, client);
    return client;
  }

  #renew(client: PeerJsClient, reg: PeerJsRegistration, nowMs: number): void {
    client.socket = reg.socket;
    client.token = reg.token;
    client.lastSeenAtMs = nowMs;
    client.expiresAtMs = reg.principal.expiresAt;
  }

  /** Sends `OPEN`, then what waited for this id, in order. */
  #opened(client: PeerJsClient): void {
    client.socket.deliver(OPEN_FRAME);
    const queue = this.#queues.get(client.id);
    if (!queue) return;
    this.#queues.delete(client.id);
    for (const m of queue.messages) {
      this.#queuedBytes -= m.frame.length;
      client.socket.deliver(m.frame);
      addContact(client.contacts, m.src);
    }
  }

  #enqueue(sender: PeerJsClient, dst: string, frame: string, nowMs: number): void {
    let queue = this.#queues.get(dst);
    if ((queue?.messages.length ?? 0) >= this.#config.maxQueuedPerPeer || this.#queuedBytes + frame.length > this.#config.maxQueuedBytes) {
      // Refusing is better than growing without bound; the sender learns at once, as at expiry.
      this.#metrics.error("PEERJS_QUEUE_FULL");
      this.#expire(sender.id, dst);
      return;
    }
    if (!queue) {
      queue = { createdAtMs: nowMs, messages: [] };
      this.#queues.set(dst, queue);
    }
    queue.messages.push({ src: sender.id, frame });
    this.#queuedBytes += frame.length;
    addContact(sender.contacts, dst);
  }

  /** Tells `src` that its messages to `dst` were never picked up. */
  #expire(src: string, dst: string): void {
    const sender = this.#clients.get(src);
    if (!sender) return;
    sender.socket.deliver(expireFrame(dst, src));
    this.#metrics.messageOut("peerjs.EXPIRE");
  }

  /** Unregisters `client`, closes its socket, and starts its departure. */
  #drop(client: PeerJsClient, code: number, reason: string, nowMs: number, gone: boolean): void {
    if (this.#clients.get(client.id) !== client) return;
    this.#clients.delete(client.id);
    client.socket.close(code, reason);
    this.#depart(client, nowMs, gone);
  }

  #depart(client: PeerJsClient, nowMs: number, gone: boolean): void {
    const graceMs = this.#config.leaveGraceMs;
    if (gone || client.session.ended || graceMs === 0 || !this.#config.announceLeave) {
      this.#finish(client.id, client.session, client.contacts);
      return;
    }
    this.#host.detach(client.session, nowMs);
    this.#departed.set(client.id, { token: client.token, session: client.session, contacts: client.contacts, leaveAtMs: nowMs + graceMs });
  }

  /**
   * The peer is gone for good: its session ends, every connected contact gets `LEAVE` (PeerJS
   * server tells nobody), and its own messages still waiting for other peers are dropped (they
   * would start connections to a peer that no longer exists).
   */
  #finish(id: string, session: Session, contacts: ReadonlySet<string>): void {
    this.#host.end(session);
    if (this.#config.announceLeave) {
      for (const contactId of contacts) {
        const contact = this.#clients.get(contactId);
        if (!contact) continue;
        contact.contacts.delete(id);
        contact.socket.deliver(leaveFrame(id, contactId));
        this.#metrics.messageOut("peerjs.LEAVE");
      }
    }
    for (const [dst, queue] of this.#queues) {
      const kept = queue.messages.filter((m) => m.src !== id);
      if (kept.length === queue.messages.length) continue;
      for (const m of queue.messages) if (m.src === id) this.#queuedBytes -= m.frame.length;
      if (kept.length === 0) this.#queues.delete(dst);
      else queue.messages.splice(0, queue.messages.length, ...kept);
    }
  }
}

function addContact(contacts: Set<string>, id: string): void {
  if (contacts.has(id)) return;
  if (contacts.size >= MAX_PEERJS_CONTACTS) {
    const oldest = contacts.values().next();
    if (!oldest.done) contacts.delete(oldest.value);
  }
  contacts.add(id);
}

/** Compares two secrets (tokens, keys) in time independent of where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}
