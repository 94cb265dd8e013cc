import type { ClientMessage, ClientMessageOf, IceServer, PeerLeftReason, RelayMessage } from "@switchboard/protocol";
import { PROTOCOL_VERSION } from "@switchboard/protocol";
import type { Authenticator, Grant, Principal } from "./auth/index.ts";
import { createPrincipal, hasGrant, mayAccessRoom, mintTurnCredentials } from "./auth/index.ts";
import type { CallDevice, CallService } from "./calls/call-service.ts";
import type { Config } from "./config.ts";
import { isSignalingError, SignalingError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { PodMetrics } from "./observability/metrics.ts";
import { tracer, tracingEnabled } from "./observability/tracing.ts";
import type { ClusterHosts } from "./cluster/cluster-hosts.ts";
import type { ClusterPort } from "./cluster/cluster-port.ts";
import { callKey, parseOwnerKey, roomKey } from "./cluster/owner-key.ts";
import { commandKey, type RoomCommand } from "./cluster/wire.ts";
import type { DeliveryTarget, RoomService } from "./rooms/room-service.ts";
import type { OwnerEffects } from "./owner/owner-effects.ts";
import { RoomOwner } from "./owner/room-owner.ts";
import { newCallId } from "./sessions/ids.ts";
import { SessionRegistry } from "./sessions/session-registry.ts";
import { FixedWindowCounter } from "./limits/fixed-window.ts";
import { Session, type DetachCause, type SessionSocket } from "./sessions/session.ts";
import type { TextFrame } from "./transport/text-frame.ts";

/** Options of {@link Hub}. */
export interface HubOptions {
  readonly config: Config;
  readonly auth: Authenticator;
  readonly metrics: PodMetrics;
  readonly log: Logger;
  /**
   * Cluster mode: makes this pod's cluster node for the hub's two sides (its rooms and calls, its
   * sessions), through which rooms owned elsewhere are reached.
   */
  readonly cluster?: (hosts: ClusterHosts) => ClusterPort;
}

/** Result of a resume attempt. */
export type ResumeOutcome =
  | { readonly ok: true; readonly session: Session }
  | { readonly ok: false; readonly reason: "unknown-session" | "bad-token" | "expired" | "gap" | "kicked" | "auth" };

/** A handled message either finished or continues asynchronously (token checks). */
export type Handled = void | Promise<void>;

/**
 * The signaling core of one pod: sessions and their streams, rooms, calls, and the dispatch of
 * every client message after the handshake. Transport-agnostic: it talks to sockets only through
 * {@link SessionSocket}.
 */
export class Hub {
  readonly sessions = new SessionRegistry();
  /** The rooms and calls this pod owns (all of them in single-node mode). */
  readonly owner: RoomOwner;
  readonly #o: HubOptions;
  readonly #cluster: ClusterPort | undefined;
  /** Sessions removed by an administrator: a resume is refused with `kicked` until the entry expires. */
  readonly #kicked = new Map<string, number>();
  /** Per-user counters of the limits that hold across the cluster (single-node: this pod). */
  readonly #userCounters = new FixedWindowCounter(60_000);
  /** Users banned from the whole service, until (epoch ms). */
  readonly #bannedUsers = new Map<string, number>();

  constructor(options: HubOptions) {
    this.#o = options;
    const { config } = options;
    this.#cluster = options.cluster?.({
      owner: {
        applyCommand: (cmd) => this.applyRoomCommand(cmd, false),
        roomIds: () => this.owner.rooms.ids(),
        members: (room) => this.owner.rooms.members(room),
        hasRoom: (room) => this.owner.rooms.has(room),
        restoreRoom: (room, members) => this.owner.rooms.restore(room, members),
        forgetRoom: (room) => this.owner.rooms.forget(room),
      },
      edge: {
        session: (id) => this.sessions.get(id),
        sessions: () => this.sessions.values(),
        deliverLocal: (sessionId, json, type, src) => this.#deliverLocal(sessionId, json, type, src),
        joinFailed: (sessionId, room) => this.#joinFailed(sessionId, room),
        dropMembership: (sessionId, key) => this.#dropMembership(sessionId, key),
        forgetMoved: (session) => this.#forgetMoved(session),
      },
    });
    this.owner = new RoomOwner({
      podName: this.#cluster?.podName,
      maxPeersPerRoom: config.limits.maxPeersPerRoom,
      // PeerJS sessions speak no call protocol: they never ring.
      devicesOf: (userId) => [...this.sessions.devicesOf(userId)].filter((s) => s.face === "switchboard").map(deviceOf),
      ringTimeoutMs: config.calls.ringTimeoutMs,
      confirmTimeoutMs: config.calls.confirmTimeoutMs,
      onUnprompted: (fx) => this.#settleQuietly(this.#carryOut(fx), "a call timer's events"),
    });
  }

  /** The rooms this pod owns. */
  get rooms(): RoomService {
    return this.owner.rooms;
  }

  /** The calls this pod owns. */
  get calls(): CallService {
    return this.owner.calls;
  }

  /**
   * Carries out what the owner did: events into local streams at once, and in cluster mode the
   * publishes to other pods and the room writes, whose promises are returned (an operation is
   * acknowledged once they are stored).
   */
  #carryOut(fx: OwnerEffects): Array<Promise<void>> {
    const pending: Array<Promise<void>> = [];
    const cluster = this.#cluster;
    for (const e of fx.effects) {
      switch (e.k) {
        case "deliver":
          this.#deliver(e.to, e.json, e.type, fx.key, pending);
          break;
        case "call-membership": {
          const s = this.sessions.get(e.sessionId);
          if (!s) break;
          if (e.member) s.calls.add(e.callId);
          else s.calls.delete(e.callId);
          cluster?.membershipChanged(s);
          break;
        }
        case "persist":
          if (cluster) pending.push(cluster.saveRoom(e.room, e.members));
          break;
        case "moved":
          if (!cluster) break;
          pending.push(
            (async () => {
              if (e.previousEdge === cluster.podName) await cluster.releaseLocal(e.sessionId);
              await cluster.deliverRemote(e.previousEdge, { sessionId: e.sessionId, type: "moved", json: "{}", key: e.key, moved: e.moved });
            })(),
          );
          break;
      }
    }
    return pending;
  }

  /**
   * Delivers a serialized event (without seq) to a session: into its stream when it is on this pod,
   * else (cluster mode) to its edge pod, the publish added to `pending`.
   */
  #deliver(to: DeliveryTarget, eventJson: string, type: string, key: string | undefined, pending: Array<Promise<void>>): void {
    const cluster = this.#cluster;
    if (cluster) {
      if (to.edge !== undefined && to.edge !== cluster.podName) {
        pending.push(cluster.deliverRemote(to.edge, { sessionId: to.sessionId, type, json: eventJson, ...(key === undefined ? {} : { key }) }));
        return;
      }
      if (!this.sessions.get(to.sessionId) && cluster.released(to.sessionId)) {
        // The session moved to another pod and this owner has not yet been told: the new edge reads
        // this pod's subject of the session until the owner's `moved` marker.
        pending.push(cluster.deliverRemote(cluster.podName, { sessionId: to.sessionId, type, json: eventJson, ...(key === undefined ? {} : { key }) }));
        return;
      }
    }
    this.#deliverLocal(to.sessionId, eventJson, type);
  }

  /** Waits for publishes nobody answers for (timers, admin actions); a failure is logged. */
  #settleQuietly(pending: Array<Promise<void>>, what: string): void {
    for (const p of pending) p.catch((err: unknown) => this.#o.log.warn({ err }, `${what}: delivery to another pod failed`));
  }

  /** Pushes an event into the stream of a session on this pod, if it exists. */
  #deliverLocal(sessionId: string, eventJson: string, type: string, src = 0): void {
    const session = this.sessions.get(sessionId);
    if (!session) return;
    // A call owned by another pod: the edge learns the session's calls from the events it carries
    // (so that a session that ends can tell the call's owner).
    const cluster = this.#cluster;
    if (cluster && (type === "call-incoming" || type === "call-trying" || type === "call-ended")) {
      const { callId, legOnly } = JSON.parse(eventJson) as { callId: string; legOnly?: boolean };
      if (type === "call-ended") {
        if (legOnly !== true) session.calls.delete(callId);
      } else session.calls.add(callId);
      cluster.membershipChanged(session);
    }
    session.pushJson(eventJson, src);
    this.#o.metrics.messageOut(type);
  }

  /**
   * Applies a room command as the room's owner and carries its effects out. Commands from sessions
   * on this pod throw their refusal (the gateway answers it); commands from other pods get it as an
   * error event. Resolves once every event the command caused is stored (cluster mode); the sender
   * on this pod gets its `ok` only then, or the failure instead.
   */
  applyRoomCommand(cmd: RoomCommand, fromThisPod: boolean): void | Promise<void> {
    const { effects, error } = this.owner.apply(cmd);
    const pending = this.#carryOut(effects);
    if (error !== undefined) {
      if (fromThisPod || (error as SignalingError).name !== "SignalingError") {
        // Events sent before the refusal (e.g. "answered elsewhere" before a late accept's error)
        // still go out; a failure among them is logged, never left unhandled.
        this.#settleQuietly(pending, "a refused command");
        throw error;
      }
      const e = error as SignalingError;
      this.#o.metrics.error(e.code);
      const json = JSON.stringify({
        type: "error",
        ...(cmd.from.id === undefined ? {} : { id: cmd.from.id }),
        code: e.code,
        message: e.message,
        retryable: e.retryable,
        ...(e.field === undefined ? {} : { field: e.field }),
      });
      pending.push(
        (this.#cluster as ClusterPort).deliverRemote(cmd.from.edge, {
          sessionId: cmd.from.sessionId,
          type: "error",
          json,
          key: commandKey(cmd),
          ...(cmd.k === "join" ? { joinFailed: cmd.room } : {}),
        }),
      );
    } else if (effects.reply !== undefined) {
      const { to, json } = effects.reply;
      const local = this.#cluster === undefined || cmd.from.edge === this.#cluster.podName;
      if (!local || pending.length === 0) this.#deliver(to, json, "ok", effects.key, pending);
      else {
        const stored = Promise.all(pending);
        pending.push(stored.then(() => this.#deliver(to, json, "ok", effects.key, [])));
      }
    }
    if (pending.length === 0) return;
    return Promise.all(pending).then(() => undefined);
  }

  /**
   * Starts a call. The call's owner is the ring owner of its id; in cluster mode the caller's edge
   * looks up the callee's devices on every pod first and hands them to the owner.
   */
  async #invite(session: Session, msg: ClientMessageOf<"call-invite">): Promise<void> {
    const cluster = this.#cluster;
    const perMinute = this.#o.config.limits.callsPerUserPerMinute;
    if (!(await this.#allowUser("calls", session.userId, perMinute))) throw new SignalingError("SIG_ERR_RATE_LIMITED", `at most ${perMinute} calls per user per minute`);
    const devices = cluster ? await cluster.devicesOf(msg.to) : undefined;
    const r = this.#room({
      k: "call-invite",
      callId: cluster ? cluster.callId(newCallId()) : newCallId(),
      from: this.#origin(session, msg.id),
      to: msg.to,
      meta: msg.meta ?? {},
      ...(devices ? { devices } : {}),
    });
    if (r) await r;
  }

  /** Marks a remote session's reserved room as not joined (its join was refused by the owner). */
  #joinFailed(sessionId: string, room: string): void {
    const s = this.sessions.get(sessionId);
    if (!s) return;
    s.rooms.delete(room);
    this.#cluster?.membershipChanged(s);
  }

  /** The owner of `key` no longer has the session in that room or call (told during a takeover). */
  #dropMembership(sessionId: string, key: string): void {
    const s = this.sessions.get(sessionId);
    if (!s) return;
    const parsed = parseOwnerKey(key);
    if (parsed?.kind === "room") s.rooms.delete(parsed.room);
    else if (parsed?.kind === "call") s.calls.delete(parsed.callId);
    this.#cluster?.membershipChanged(s);
  }

  /**
   * Another pod took the session over: it is forgotten here without leaving its rooms or calls (the
   * session lives on there); its socket, if any, is closed as replaced.
   */
  #forgetMoved(session: Session): void {
    if (this.sessions.get(session.id) !== session) return;
    session.ended = true;
    const socket = session.socket;
    session.detach("replaced", Date.now());
    this.sessions.remove(session);
    this.#cluster?.sessionEnded(session, true);
    socket?.close(4004, "SIG_ERR_SESSION_REPLACED");
  }

  /**
   * Authenticates a `hello` and opens a new session on `socket`; sends `welcome`. Rejects with a
   * {@link SignalingError} (`SIG_ERR_AUTH_FAILED`, `SIG_ERR_TOKEN_EXPIRED`, `SIG_ERR_BANNED`,
   * `SIG_ERR_UNSUPPORTED_VERSION`) and then creates nothing.
   */
  async hello(msg: ClientMessageOf<"hello">, socket: SessionSocket, headerToken: string | undefined): Promise<Session> {
    return tracer.startActiveSpan("switchboard.handshake", async (span) => {
      try {
        checkVersion(msg.v);
        const token = msg.token ?? headerToken;
        if (!token) throw new SignalingError("SIG_ERR_AUTH_FAILED", "no token in hello or Sec-WebSocket-Protocol");
        const principal = await this.#o.auth.verify(token);
        this.#checkNotBanned(principal.userId);
        if (!(await this.#allowUser("sessions", principal.userId, this.#o.config.limits.sessionsPerUserPerMinute))) {
          throw new SignalingError("SIG_ERR_TOO_MANY_CONNECTIONS", `at most ${this.#o.config.limits.sessionsPerUserPerMinute} new sessions per user per minute`);
        }
        const session = new Session(principal, { device: msg.device, maxReplayBytes: this.#o.config.limits.maxReplayBytes });
        session.attach(socket);
        this.sessions.add(session);
        await this.#cluster?.sessionOpened(session);
        span.setAttribute("switchboard.session", session.id);
        const ice = this.iceServersFor(principal.userId);
        const { limits } = this.#o.config;
        socket.send(
          JSON.stringify({
            type: "welcome",
            ...(msg.id === undefined ? {} : { id: msg.id }),
            v: PROTOCOL_VERSION,
            sessionId: session.id,
            resumeToken: session.resumeToken,
            peerId: session.peerId,
            userId: principal.userId,
            expiresAt: principal.expiresAt,
            heartbeatIntervalMs: this.#o.config.heartbeatIntervalMs,
            resumeWindowMs: this.#o.config.resumeWindowMs,
            limits: {
              maxMessageBytes: limits.maxMessageBytes,
              ratePerSecond: limits.ratePerSecond,
              rateBurst: limits.rateBurst,
              maxPeersPerRoom: limits.maxPeersPerRoom,
              maxRoomsPerSession: limits.maxRoomsPerSession,
              maxOutboundBytes: limits.maxOutboundBytes,
            },
            iceServers: ice.iceServers,
            ...(ice.ttlSec === undefined ? {} : { iceServersTtlSec: ice.ttlSec }),
            trickleIce: true,
            pod: this.#o.config.podName,
          }),
        );
        span.end();
        return session;
      } catch (err) {
        span.setAttribute("switchboard.error", (err as SignalingError).code ?? "SIG_ERR_INTERNAL");
        span.end();
        throw err;
      }
    });
  }

  /**
   * Resumes a session on `socket`: sends `resumed`, then every event after `lastSeq` exactly once
   * and in order, then the stream is live again. On failure nothing changes and the caller sends
   * `resume-failed` with the reason.
   */
  async resume(msg: ClientMessageOf<"resume">, socket: SessionSocket, nowMs: number): Promise<ResumeOutcome> {
    checkVersion(msg.v);
    if (this.#kicked.has(msg.sessionId)) return this.#resumeFailed("kicked");
    const session = this.sessions.get(msg.sessionId);
    if (!session && this.#cluster) return this.#takeover(msg, socket, nowMs);
    if (!session || session.ended) return this.#resumeFailed("unknown-session");
    if (!timingSafeEqualStrings(session.resumeToken, msg.resumeToken)) return this.#resumeFailed("bad-token");
    const expiresAt = session.principal.expiresAt;
    if (msg.token !== undefined || (expiresAt !== null && expiresAt <= nowMs)) {
      if (msg.token === undefined) return this.#resumeFailed("auth");
      try {
        const principal = await this.#o.auth.verify(msg.token);
        if (principal.userId !== session.userId) return this.#resumeFailed("auth");
        session.principal = principal;
        session.expiryWarned = false;
      } catch (err) {
        // The key set unreachable says nothing about the session: refused as retryable, untouched.
        if (keysUnavailable(err)) throw err;
        return this.#resumeFailed("auth");
      }
      // The session may have ended or been taken over while the token was checked.
      if (session.ended || this.sessions.get(session.id) !== session) return this.#resumeFailed("unknown-session");
    }
    const plan = session.planReplay(msg.lastSeq);
    if (!plan.ok) return this.#resumeFailed("gap");
    const previous = session.socket;
    if (previous) {
      session.detach("replaced", nowMs);
      previous.close(4004, "SIG_ERR_SESSION_REPLACED");
    }
    this.#sendResumed(socket, msg, session, plan.frames);
    for (const room of session.rooms) this.#background({ k: "connected", room, from: this.#origin(session, undefined), connected: true });
    this.#o.metrics.resumes.labels("ok").inc();
    return { ok: true, session };
  }

  /**
   * Resumes, on this pod, a session another pod held (cluster mode): claims it (fencing the old
   * edge), rebuilds it from the session log, replays what the client has not seen, and asks the
   * owner of each of its rooms and calls to route its events here. Events the old edge had not
   * logged are read from its subject and sequenced after the log (ClusterNode.adopt).
   */
  async #takeover(msg: ClientMessageOf<"resume">, socket: SessionSocket, nowMs: number): Promise<ResumeOutcome> {
    const cluster = this.#cluster as ClusterPort;
    // The fresh token is checked before the claim, which fences the old edge: a key set that cannot
    // be fetched refuses the resume as retryable with the session where it was.
    let fresh: Principal | "bad" | undefined;
    if (msg.token !== undefined) {
      try {
        fresh = await this.#o.auth.verify(msg.token);
      } catch (err) {
        if (keysUnavailable(err)) throw err;
        fresh = "bad";
      }
    }
    const claimed = await cluster.claim(msg.sessionId, msg.resumeToken);
    if (claimed === "unknown-session" || claimed === "bad-token") return this.#resumeFailed(claimed);
    const id = claimed.identity;
    const stored = id.principal;
    const principal: Principal = createPrincipal({
      userId: stored.userId,
      roomPatterns: stored.roomPatterns,
      grants: stored.grants as Grant[],
      expiresAt: stored.expiresAt,
      tokenId: stored.tokenId,
    });
    const session = Session.restore(
      principal,
      { id: id.sessionId, resumeToken: msg.resumeToken, peerId: id.peerId, device: id.device, face: id.face, frames: claimed.frames, firstSeq: claimed.firstSeq, lastSeq: claimed.lastSeq },
      this.#o.config.limits.maxReplayBytes,
    );
    for (const r of claimed.rooms) session.rooms.add(r);
    for (const c of claimed.calls) session.calls.add(c);
    const expiresAt = principal.expiresAt;
    let refused: Exclude<ResumeOutcome, { ok: true }>["reason"] | null = null;
    if (msg.token !== undefined || (expiresAt !== null && expiresAt <= nowMs)) {
      if (fresh === undefined || fresh === "bad" || fresh.userId !== session.userId) refused = "auth";
      else session.principal = fresh;
    }
    const plan = refused ? null : session.planReplay(msg.lastSeq);
    if (plan && !plan.ok) refused = "gap";
    this.sessions.add(session);
    if (refused || !plan?.ok) {
      // The session cannot go on: it ends here (its peers are told), the client starts afresh.
      await cluster.adopt(session, claimed, []);
      this.endSession(session, "expired");
      return this.#resumeFailed(refused ?? "gap");
    }
    // A call whose owner left the ring is over (call state lives on its owner only).
    const lostCalls = [...session.calls].filter((c) => !cluster.callOwnerAlive(c));
    for (const c of lostCalls) session.calls.delete(c);
    const keys = [...[...session.rooms].map(roomKey), ...[...session.calls].map(callKey)];
    await cluster.adopt(session, claimed, keys);
    const from = this.#origin(session, undefined);
    for (const room of session.rooms) this.#background({ k: "reattach", room, from, prev: claimed.previousEdge });
    for (const callId of session.calls) this.#background({ k: "reattach", callId, from, prev: claimed.previousEdge });
    // Replies in flight to the old edge arrive before `resumed`, so the client does not re-send
    // requests that were in fact handled (it re-sends those without a reply after the replay).
    await cluster.takeoverSettled(session.id, TAKEOVER_SETTLE_MS);
    if (this.sessions.get(session.id) !== session || session.ended) return this.#resumeFailed("unknown-session");
    const settled = session.planReplay(msg.lastSeq);
    const frames = settled.ok ? settled.frames : [];
    this.#sendResumed(socket, msg, session, frames);
    for (const callId of lostCalls) session.push({ type: "call-ended", callId, reason: "connection-lost", legOnly: false });
    if (lostCalls.length > 0) cluster.membershipChanged(session);
    this.#o.metrics.resumes.labels("ok").inc();
    return { ok: true, session };
  }

  /** Sends `resumed` and the frames the client has not processed, then attaches the socket. */
  #sendResumed(socket: SessionSocket, msg: ClientMessageOf<"resume">, session: Session, frames: readonly TextFrame[]): void {
    socket.send(
      JSON.stringify({
        type: "resumed",
        ...(msg.id === undefined ? {} : { id: msg.id }),
        sessionId: session.id,
        peerId: session.peerId,
        replayCount: frames.length,
        lastSeq: session.lastSeq,
        expiresAt: session.principal.expiresAt,
        pod: this.#o.config.podName,
      }),
    );
    for (const frame of frames) socket.send(frame);
    session.attach(socket);
  }

  /** Handles one post-handshake message of `session`. Throws {@link SignalingError} on refusal. */
  handle(session: Session, msg: ClientMessage, receivedAtMs: number): Handled {
    if (msg.ack !== undefined) {
      session.ack(msg.ack);
      this.#cluster?.acked(session);
    }
    switch (msg.type) {
      case "hello":
      case "resume":
        throw new SignalingError("SIG_ERR_ALREADY_HANDSHAKEN", "the session is already open on this socket");
      case "ping":
        session.socket?.send(JSON.stringify({ type: "pong", ...(msg.id === undefined ? {} : { id: msg.id }), ...(msg.ts === undefined ? {} : { ts: msg.ts }), serverTime: Date.now() }));
        return;
      case "pong":
        // The answer to the heartbeat (the gateway took note); its piggybacked ack was applied above.
        return;
      case "ack":
        session.ack(msg.seq);
        this.#cluster?.acked(session);
        return;
      case "refresh":
        return this.#refresh(session, msg);
      case "bye":
        this.#reply(session, msg.id);
        this.endSession(session, "closed");
        session.socket?.close(1000, "bye");
        return;
      case "join":
        return this.#join(session, msg);
      case "leave":
        if (!session.rooms.has(msg.room)) throw new SignalingError("SIG_ERR_NOT_IN_ROOM", `not in room ${msg.room}`);
        session.rooms.delete(msg.room);
        this.#cluster?.membershipChanged(session);
        return this.#room({ k: "leave", room: msg.room, from: this.#origin(session, msg.id), reason: "left" });
      case "update":
        return this.#room({ k: "update", room: msg.room, from: this.#origin(session, msg.id), meta: msg.meta });
      case "offer":
      case "answer":
      case "candidate":
      case "end-of-candidates":
      case "renegotiate":
        return this.#relay(session, msg, receivedAtMs);
      case "broadcast":
        this.#require(session, "broadcast");
        return this.#room({
          k: "broadcast",
          room: msg.room,
          from: this.#origin(session, msg.id),
          type: "broadcast",
          json: JSON.stringify({ type: "broadcast", room: msg.room, from: session.peerId, data: msg.data }),
        });
      case "message":
        this.#require(session, "broadcast");
        return this.#room({
          k: "send",
          room: msg.room,
          from: this.#origin(session, msg.id),
          to: msg.to,
          type: "message",
          json: JSON.stringify({ type: "message", room: msg.room, from: session.peerId, data: msg.data }),
        });
      case "call-invite":
        this.#require(session, "call");
        return this.#invite(session, msg);
      case "call-ringing":
      case "call-accept":
      case "call-confirm":
      case "call-reject":
      case "call-dismiss":
      case "call-cancel":
      case "call-hangup":
        this.#require(session, "call");
        return this.#room({
          k: "call-op",
          op: msg.type,
          callId: msg.callId,
          from: this.#origin(session, msg.id),
          ...(msg.type === "call-reject" ? { reason: msg.reason } : msg.type === "call-hangup" && msg.reason !== undefined ? { reason: msg.reason } : {}),
        });
    }
  }

  /** The socket of `session` went away; the session waits for a resume. Peers see it disconnected. */
  detach(session: Session, cause: DetachCause, nowMs: number): void {
    if (session.ended || session.socket === null) return;
    session.detach(cause, nowMs);
    for (const room of session.rooms) this.#background({ k: "connected", room, from: this.#origin(session, undefined), connected: false });
  }

  /** Ends a session for good: it leaves its rooms (peers told why) and its calls end. */
  endSession(session: Session, reason: PeerLeftReason): void {
    if (session.ended) return;
    session.ended = true;
    for (const room of session.rooms) this.#background({ k: "leave", room, from: this.#origin(session, undefined), reason });
    session.rooms.clear();
    const callReason = reason === "closed" ? "hangup" : "connection-lost";
    for (const callId of [...session.calls]) this.#background({ k: "call-gone", callId, from: this.#origin(session, undefined), reason: callReason });
    session.calls.clear();
    this.#cluster?.sessionEnded(session);
    this.sessions.remove(session);
  }

  /**
   * Administrator removal: the session ends (peers told `kicked`), its socket closes with
   * `SIG_ERR_KICKED` (or `SIG_ERR_BANNED`), and a resume is refused. `ban` also bars the user from
   * the room, or from the whole service for `banMs`.
   */
  kick(peerId: string, options: { room?: string; ban?: "room" | "service"; banMs?: number }, nowMs: number): boolean {
    const session = this.sessions.byPeerId(peerId);
    if (!session) return false;
    if (options.ban === "room" && options.room) this.rooms.ban(options.room, session.userId);
    if (options.ban === "service") this.#bannedUsers.set(session.userId, nowMs + (options.banMs ?? 24 * 3600_000));
    // A service ban bars the user: every one of their sessions (devices) goes, not only this one.
    const targets = options.ban === "service" ? [...this.sessions.devicesOf(session.userId)] : [session];
    const code = options.ban === "service" ? "SIG_ERR_BANNED" : "SIG_ERR_KICKED";
    for (const target of targets) {
      this.#kicked.set(target.id, nowMs + this.#o.config.resumeWindowMs * 2);
      const socket = target.socket;
      this.endSession(target, "kicked");
      socket?.close(code === "SIG_ERR_BANNED" ? 4013 : 4012, code);
    }
    return true;
  }

  /**
   * Administrator disconnect: closes the session's socket (1012) but keeps the session, so the
   * client resumes (on this pod or another) with nothing lost. For rebalancing and tests.
   */
  disconnect(peerId: string): boolean {
    const session = this.sessions.byPeerId(peerId);
    if (!session?.socket) return false;
    session.socket.close(1012, "disconnected by administrator");
    return true;
  }

  /** Closes a room for everyone in it. */
  closeRoom(roomId: string, reason: string): number {
    const { effects, members } = this.owner.closeRoom(roomId, reason);
    this.#settleQuietly(this.#carryOut(effects), "closing a room");
    for (const m of members) {
      const s = this.sessions.get(m.sessionId);
      if (!s) continue;
      s.rooms.delete(roomId);
      this.#cluster?.membershipChanged(s);
    }
    return members.length;
  }

  /**
   * Housekeeping, run by the pod's one shared timer: ends sessions whose resume window ran out,
   * warns about and enforces token expiry, forgets old kicks and bans.
   */
  sweep(nowMs: number, closeExpired: (session: Session) => void): void {
    const windowMs = this.#o.config.resumeWindowMs;
    const warnMs = this.#o.config.tokenExpiryWarningMs;
    for (const session of this.sessions.values()) {
      if (session.detachedAtMs !== null) {
        if (nowMs - session.detachedAtMs >= windowMs) this.#expire(session, session.detachCause === "heartbeat" ? "timeout" : "expired");
        continue;
      }
      const expiresAt = session.principal.expiresAt;
      if (expiresAt === null) continue;
      if (nowMs >= expiresAt) closeExpired(session);
      else if (!session.expiryWarned && nowMs >= expiresAt - warnMs) {
        session.expiryWarned = true;
        session.push({ type: "token-expiring", expiresAt });
      }
    }
    for (const [id, until] of this.#kicked) if (until <= nowMs) this.#kicked.delete(id);
    for (const [user, until] of this.#bannedUsers) if (until <= nowMs) this.#bannedUsers.delete(user);
  }

  /** A detached session's window ran out: it ends, unless another pod took it over meanwhile. */
  #expire(session: Session, reason: PeerLeftReason): void {
    const cluster = this.#cluster;
    if (!cluster || session.journal === null) {
      this.endSession(session, reason);
      return;
    }
    if (session.detachedAtMs === null || session.ended) return;
    session.detachedAtMs = null; // not swept again while the store is asked
    cluster.stillHeld(session).then(
      (held) => {
        if (session.ended || session.socket !== null) return;
        if (held) this.endSession(session, reason);
        else this.#forgetMoved(session);
      },
      () => this.endSession(session, reason),
    );
  }

  /** True while `userId` is banned from the whole service (an admin kick with `ban: "service"`). */
  isBanned(userId: string): boolean {
    return this.#bannedUsers.has(userId);
  }

  /** ICE servers for a user: ephemeral TURN credentials when a TURN secret is configured. */
  iceServersFor(userId: string): { iceServers: IceServer[]; ttlSec?: number } {
    const turn = this.#o.config.turn;
    const stun: IceServer[] = turn.stunUrls.length > 0 ? [{ urls: turn.stunUrls }] : [];
    if (!turn.secret || turn.urls.length === 0) return { iceServers: stun };
    const minted = mintTurnCredentials({ secret: turn.secret, userId, ttlSec: turn.ttlSec, urls: turn.urls, now: Date.now() });
    return { iceServers: [...stun, ...minted.iceServers], ttlSec: minted.ttlSec };
  }

  /**
   * Pod shutdown, after sockets are closed: ends the calls owned here, and every session — except,
   * in cluster mode, those kept in the session store: their clients resume on another pod (a member
   * that never does is dropped by its room's owner once this pod left the ring).
   */
  close(): void {
    this.#settleQuietly(this.#carryOut(this.owner.close()), "ending the calls at shutdown");
    for (const session of [...this.sessions.values()]) {
      if (this.#cluster && session.journal !== null) this.sessions.remove(session);
      else this.endSession(session, "closed");
    }
  }

  async #refresh(session: Session, msg: ClientMessageOf<"refresh">): Promise<void> {
    const principal: Principal = await this.#o.auth.verify(msg.token);
    if (principal.userId !== session.userId) throw new SignalingError("SIG_ERR_AUTH_FAILED", "refresh token is for another user");
    session.principal = principal;
    session.expiryWarned = false;
    const ice = this.iceServersFor(principal.userId);
    session.push({
      type: "refreshed",
      ...(msg.id === undefined ? {} : { id: msg.id }),
      expiresAt: principal.expiresAt,
      iceServers: ice.iceServers,
      ...(ice.ttlSec === undefined ? {} : { iceServersTtlSec: ice.ttlSec }),
    });
  }

  #join(session: Session, msg: ClientMessageOf<"join">): void | Promise<void> {
    this.#require(session, "join");
    if (!mayAccessRoom(session.principal, msg.room)) throw new SignalingError("SIG_ERR_FORBIDDEN", `token does not allow room ${msg.room}`);
    if (session.rooms.has(msg.room)) throw new SignalingError("SIG_ERR_ALREADY_IN_ROOM", `already in room ${msg.room}`);
    const max = this.#o.config.limits.maxRoomsPerSession;
    if (session.rooms.size >= max) throw new SignalingError("SIG_ERR_TOO_MANY_ROOMS", `at most ${max} rooms per session`);
    const span = tracer.startSpan("switchboard.join", { attributes: { "switchboard.room": msg.room } });
    // The room is reserved at once, so a second join in flight counts against the cap; a refusal
    // gives it back.
    session.rooms.add(msg.room);
    this.#cluster?.membershipChanged(session);
    const release = (err: unknown) => {
      session.rooms.delete(msg.room);
      this.#cluster?.membershipChanged(session);
      throw err;
    };
    try {
      const r = this.#room({ k: "join", room: msg.room, from: this.#origin(session, msg.id), meta: msg.meta ?? {} });
      return r?.catch(release);
    } catch (err) {
      return release(err);
    } finally {
      span.end();
    }
  }

  /**
   * Applies a room or call command here when this pod owns its room or call (always in single-node
   * mode), else forwards it to the owner.
   */
  #room(cmd: RoomCommand): void | Promise<void> {
    const cluster = this.#cluster;
    if (!cluster) return this.applyRoomCommand(cmd, true);
    const key = commandKey(cmd);
    if (cluster.owns(key)) return cluster.schedule(key, () => this.applyRoomCommand(cmd, true));
    return cluster.forward(cmd);
  }

  /** A room command nobody waits for (presence changes, leaving on session end); failures are logged. */
  #background(cmd: RoomCommand): void {
    try {
      const r = this.#room(cmd);
      r?.catch((err: unknown) => this.#o.log.warn({ err, key: commandKey(cmd), k: cmd.k }, "command failed"));
    } catch (err) {
      this.#o.log.warn({ err, key: commandKey(cmd), k: cmd.k }, "command failed");
    }
  }

  #origin(session: Session, id: string | undefined): RoomCommand["from"] {
    return {
      sessionId: session.id,
      peerId: session.peerId,
      userId: session.userId,
      edge: this.#cluster?.podName ?? "",
      ...(id === undefined ? {} : { id }),
    };
  }

  #relay(session: Session, msg: RelayMessage, receivedAtMs: number): void | Promise<void> {
    this.#require(session, "signal");
    // A no-op span still costs its attributes object and the proxy tracer's lookups, per message.
    const span = tracingEnabled() ? tracer.startSpan("switchboard.relay", { attributes: { "switchboard.type": msg.type } }) : null;
    try {
      const r =
        msg.callId !== undefined
          ? this.#room({ k: "call-relay", callId: msg.callId, from: this.#origin(session, msg.id), type: msg.type, fields: relayFields(msg) })
          : this.#room({
              k: "send",
              room: msg.room as string,
              from: this.#origin(session, msg.id),
              to: msg.to as string,
              type: msg.type,
              json: relayEventJson(msg, session.peerId),
            });
      if (!r) {
        this.#o.metrics.relayLatency.observe((performance.now() - receivedAtMs) / 1000);
        return;
      }
      return r.then(() => this.#o.metrics.relayLatency.observe((performance.now() - receivedAtMs) / 1000));
    } catch (err) {
      span?.setAttribute("switchboard.error", (err as SignalingError).code ?? "SIG_ERR_INTERNAL");
      throw err;
    } finally {
      span?.end();
    }
  }

  #reply(session: Session, id: string | undefined): void {
    if (id !== undefined) session.push({ type: "ok", id });
  }

  /** Counts one `kind` event of a user against its per-minute limit: cluster-wide in cluster mode. */
  async #allowUser(kind: string, userId: string, perMinute: number): Promise<boolean> {
    const cluster = this.#cluster;
    if (cluster) return cluster.allow(`${kind}:${userId}`, perMinute, 60_000);
    return this.#userCounters.allow(`${kind}:${userId}`, perMinute, Date.now());
  }

  #require(session: Session, grant: Grant): void {
    if (!hasGrant(session.principal, grant)) throw new SignalingError("SIG_ERR_FORBIDDEN", `token lacks the ${grant} grant`);
  }

  #checkNotBanned(userId: string): void {
    if (this.#bannedUsers.has(userId)) throw new SignalingError("SIG_ERR_BANNED", "user is banned");
  }

  #resumeFailed(reason: Exclude<ResumeOutcome, { ok: true }>["reason"]): ResumeOutcome {
    this.#o.metrics.resumes.labels(reason).inc();
    return { ok: false, reason };
  }
}

/** How long a resume on another pod waits for the owners to switch the session over before `resumed`. */
const TAKEOVER_SETTLE_MS = 2000;

/** The token could not be checked because the signing keys (a remote JWKS) are unreachable. */
function keysUnavailable(err: unknown): boolean {
  return isSignalingError(err) && err.code === "SIG_ERR_UNAVAILABLE";
}

function checkVersion(v: number): void {
  if (v !== PROTOCOL_VERSION) throw new SignalingError("SIG_ERR_UNSUPPORTED_VERSION", `protocol version ${v} is not supported (use ${PROTOCOL_VERSION})`);
}

function deviceOf(s: Session): CallDevice {
  return { sessionId: s.id, peerId: s.peerId, userId: s.userId };
}

/**
 * The relayed event as JSON: `{type, room, from, …relayFields(msg)}` in that key order, from one
 * object literal per type. This runs for every relayed message: a fields object spread into the
 * event costs an extra object and a copy, and concatenating pre-encoded parts (measured) is slower
 * still, because the resulting rope is flattened again when the session frames it.
 */
function relayEventJson(msg: RelayMessage, from: string): string {
  switch (msg.type) {
    case "offer":
    case "answer":
      return JSON.stringify({ type: msg.type, room: msg.room, from, sdp: msg.sdp });
    case "candidate":
      return JSON.stringify({ type: msg.type, room: msg.room, from, candidate: msg.candidate });
    case "end-of-candidates":
      return JSON.stringify({ type: msg.type, room: msg.room, from });
    case "renegotiate":
      return JSON.stringify(msg.iceRestart === undefined ? { type: msg.type, room: msg.room, from } : { type: msg.type, room: msg.room, from, iceRestart: msg.iceRestart });
  }
}

/** The fields a relayed message carries besides its routing (call relays keep them as an object). */
function relayFields(msg: RelayMessage): Record<string, unknown> {
  switch (msg.type) {
    case "offer":
    case "answer":
      return { sdp: msg.sdp };
    case "candidate":
      return { candidate: msg.candidate };
    case "end-of-candidates":
      return {};
    case "renegotiate":
      return msg.iceRestart === undefined ? {} : { iceRestart: msg.iceRestart };
  }
}

function timingSafeEqualStrings(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
