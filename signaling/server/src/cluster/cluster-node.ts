import { context, propagation } from "@opentelemetry/api";
import { ringPassed, type HashRing, type PodReport } from "@switchboard/ring";
import { SignalingError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { tracer } from "../observability/tracing.ts";
import { Breaker, type BreakerState } from "./breaker.ts";
import type { BusConsumer, BusMessage, ClusterBus } from "./bus.ts";
import type { ClusterHosts, EdgeHost, OwnerHost } from "./cluster-hosts.ts";
import type { ClusterPort } from "./cluster-port.ts";
import type { Directory } from "./directory.ts";
import type { RingView } from "./ring-view.ts";
import { callIdOwnedBy, callIdOwner, parseOwnerKey, roomKey } from "./owner-key.ts";
import { SessionJournal } from "./session-journal.ts";
import { SessionTakeovers } from "./session-takeover.ts";
import { hashResumeToken, storePrincipal, type ClaimedSession, type SessionStore } from "./session-store.ts";
import type { Session } from "../sessions/session.ts";
import { ClusterSubjects } from "./subjects.ts";
import { commandKey, decodeCommand, decodeEventEnvelope, encodeWire, type ControlCommand, type EventEnvelope, type RoomCommand } from "./wire.ts";
import { RoomHandoff, toStored } from "./room-handoff.ts";
import type { RoomStore } from "./room-store.ts";
import type { RoomMember } from "../rooms/room-service.ts";
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";

/** Options of {@link ClusterNode}. */
export interface ClusterNodeOptions {
  readonly podName: string;
  /** Cluster name: prefixes subjects, streams and keys. */
  readonly cluster: string;
  readonly bus: ClusterBus;
  readonly directory: Directory;
  readonly ring: RingView;
  /** Session records and logs (resume on any pod). */
  readonly sessions: SessionStore;
  /** How long a session's record outlives its last refresh (≥ the resume window). */
  readonly sessionTtlMs: number;
  /** Room memberships (taken over by the next owner after a ring change or an owner's death). */
  readonly rooms: RoomStore;
  /** A member whose edge left the ring is dropped from its rooms after this long without a resume. */
  readonly resumeWindowMs: number;
  /** How long a moved room waits for its previous owner's handoff. @default 15000 */
  readonly handoffTimeoutMs?: number;
  readonly log: Logger;
  /** Told when the bus breaker opens or closes (readiness, metrics). */
  readonly onBreaker?: (state: BreakerState) => void;
  /** The bus's (NATS) breaker, e.g. with a probe; built here without one when absent. */
  readonly busBreaker?: Breaker;
  /** The breaker of the directory and session store (Redis); built here when absent. */
  readonly storeBreaker?: Breaker;
}

/**
 * One pod's membership in the cluster: owns rooms by the ring, forwards room commands to their
 * owner over the bus, carries events to the edges of remote sessions, and consumes what other pods
 * send it (its commands and its sessions' events). Every publish goes through a breaker, so a
 * missing NATS fails fast with `SIG_ERR_UNAVAILABLE` instead of hanging.
 */
export class ClusterNode implements ClusterPort {
  readonly podName: string;
  readonly subjects: ClusterSubjects;
  readonly breaker: Breaker;
  /** Redis (directory, session store): separate, so a Redis outage leaves relay over NATS alone. */
  readonly storeBreaker: Breaker;
  readonly #o: ClusterNodeOptions;
  readonly #owner: OwnerHost;
  readonly #edge: EdgeHost;
  readonly #consumers: BusConsumer[] = [];
  /** Sessions of this pod registered as devices (re-registered before their entries expire). */
  readonly #devices = new Map<string, { userId: string; peerId: string }>();
  #refreshTimer: ReturnType<typeof setInterval> | null = null;
  /** A refresh is going through its slices. */
  #refreshing = false;
  /** Writes every local session's frames to the session store before they reach the socket. */
  readonly journal: SessionJournal;
  /** Sessions being taken over: keys whose owner has not yet sent its `moved` marker. */
  readonly #takeovers: SessionTakeovers;
  /** Sessions another pod took from this one (until the entry expires): their events are orphans. */
  readonly #released = new Map<string, number>();
  /** Hands rooms over on ring changes. */
  readonly #handoff: RoomHandoff;
  /** Rooms whose commands wait in line (a handoff or a load from the store in progress). */
  readonly #queues = new Map<string, Promise<void>>();
  /** Forwards in flight (the applied ring version is reported only once those sent under the old one are stored). */
  readonly #inflight = new Set<Promise<void>>();
  /** Barriers passed through this pod's own command subject, by id. */
  readonly #barriers = new Map<string, () => void>();
  /** Told the ring version this pod applied (metrics). */
  readonly #ringListeners: Array<(version: number) => void> = [];
  /** Set by `stop`: background waits of the handoff end. */
  #stopped = false;
  /** Bus positions of the events being taken, and the highest one seen. */
  readonly #eventsInFlight = new Set<number>();
  #eventsSeenSeq = 0;
  /** Members whose edge left the ring, since when (dropped after the resume window). */
  readonly #orphanMembers = new Map<string, number>();

  /** A node for the pod whose rooms (`hosts.owner`) and sessions (`hosts.edge`) it serves. */
  constructor(options: ClusterNodeOptions, hosts: ClusterHosts) {
    this.#o = options;
    this.#owner = hosts.owner;
    this.#edge = hosts.edge;
    this.podName = options.podName;
    this.subjects = new ClusterSubjects(options.cluster);
    this.breaker = options.busBreaker ?? new Breaker({ failureThreshold: 3, openMs: 1000, timeoutMs: 2000, ...(options.onBreaker ? { onStateChange: options.onBreaker } : {}) });
    this.storeBreaker = options.storeBreaker ?? new Breaker({ failureThreshold: 3, openMs: 1000, timeoutMs: 2000 });
    this.#takeovers = new SessionTakeovers({
      bus: options.bus,
      log: options.log,
      take: (env, src) => this.#take(env, src),
      dropMembership: (sessionId, key) => this.#edge.dropMembership(sessionId, key),
    });
    this.journal = new SessionJournal({
      store: options.sessions,
      ttlMs: options.sessionTtlMs,
      log: options.log,
      onFenced: (session, unlogged) => this.#handOver(session, unlogged),
    });
    const owner = hosts.owner;
    this.#handoff = new RoomHandoff(
      {
        podName: this.podName,
        log: options.log,
        store: options.rooms,
        roomIds: () => owner.roomIds(),
        members: (room) => owner.members(room),
        hasRoom: (room) => owner.hasRoom(room),
        restoreRoom: (room, members) => owner.restoreRoom(room, members),
        forgetRoom: (room) => owner.forgetRoom(room),
        converged: (ring) => this.#converged(ring),
        barrier: () => this.#barrier(),
        announceHandoff: (version, ring) => this.#announceHandoff(version, ring),
        backlog: (dead, room) => this.#backlog(dead, room),
        eventsCaughtUp: (seq) => this.#eventsCaughtUp(seq),
        position: () => options.bus.position(),
        apply: async (cmd) => {
          await owner.applyCommand(cmd);
        },
      },
      options.handoffTimeoutMs === undefined ? {} : { handoffTimeoutMs: options.handoffTimeoutMs },
    );
    options.ring.follow({
      changed: (next, prev) => {
        this.#handoff.ringChanged(next, prev);
        for (const l of this.#ringListeners) l(next.version);
      },
      beforeReport: () => Promise.allSettled([...this.#inflight]).then(() => undefined),
    });
  }

  /**
   * Runs `fn` (applying a command of a room this pod owns) now, or after the commands of the room
   * already waiting — while the room is being handed over to this pod, commands wait in line.
   */
  schedule(key: string, fn: () => void | Promise<void>): void | Promise<void> {
    const parsed = parseOwnerKey(key);
    if (parsed?.kind !== "room") return fn();
    const room = parsed.room;
    const waiting = this.#queues.get(room) ?? this.#handoff.gate(room) ?? null;
    if (!waiting) return fn();
    const run = waiting.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(room, tail);
    void tail.then(() => {
      if (this.#queues.get(room) === tail) this.#queues.delete(room);
    });
    return run;
  }

  /** True when commands of `room` must wait in line (a handover to this pod, or a load, in progress). */
  #waiting(room: string): boolean {
    return this.#queues.has(room) || (this.#handoff.gate(room) ?? null) !== null;
  }

  /** Records a room's membership after a change (the next owner takes the room from there). */
  saveRoom(room: string, members: readonly RoomMember[]): Promise<void> {
    for (const m of members) if (this.#orphanMembers.has(m.sessionId) && m.edge !== undefined && this.#o.ring.ring.member(m.edge)) this.#orphanMembers.delete(m.sessionId);
    return this.storeBreaker.call(() => this.#o.rooms.save(room, toStored(members, this.podName))).catch((err: unknown) => {
      this.#o.log.warn({ err, room }, "room store: saving a room failed");
    });
  }

  /** Resolves when the ring changes applied so far were handed over (tests). */
  handoffSettled(): Promise<void> {
    return this.#handoff.settled();
  }

  /** The ring version this pod applied (-1 before any) and its own state in it (null when it is not a member). */
  get ringStatus(): PodReport["ring"] {
    return { version: this.#o.ring.version, state: this.#o.ring.selfState ?? null };
  }

  /** Calls `listener` with the ring version this pod applies, now and on every change. */
  onRingVersion(listener: (version: number) => void): void {
    this.#ringListeners.push(listener);
    if (this.#o.ring.version >= 0) listener(this.#o.ring.version);
  }

  /** Follows the ring and starts consuming this pod's commands and events. */
  async start(): Promise<void> {
    await this.#o.ring.start();
    for (const l of this.#ringListeners) l(this.#o.ring.version);
    const { bus } = this.#o;
    // Commands run concurrently across rooms and calls, in order within each; a barrier waits for all.
    const barrierSubject = this.subjects.command(this.podName, "ctl");
    this.#consumers.push(
      await bus.consume(`cmd-${this.podName}`, this.subjects.commandsFor(this.podName), (m) => this.#onCommand(m), {
        keyOf: (m) => (m.subject === barrierSubject ? null : lastToken(m.subject)),
        maxInFlight: CONSUMER_IN_FLIGHT,
        metricsName: "commands",
      }),
    );
    // Events run concurrently across sessions, in order within each.
    this.#consumers.push(
      await bus.consume(`ev-${this.podName}`, this.subjects.eventsFor(this.podName), (m) => this.#onEvent(m), {
        keyOf: (m) => lastToken(m.subject),
        maxInFlight: CONSUMER_IN_FLIGHT,
        metricsName: "events",
      }),
    );
    this.#consumers.push(await bus.consume(`ctl-${this.podName}`, this.subjects.controlFor(this.podName), (m) => this.#onControl(m), { metricsName: "control" }));
    this.#refreshTimer = setInterval(() => void this.#refresh(), Math.min(DEVICE_TTL_MS, this.#o.sessionTtlMs) / 3);
    this.#refreshTimer.unref();
  }

  /**
   * Every few seconds: re-registers this pod's devices, extends its sessions' records and its rooms'
   * (before they expire), and forgets released sessions. The devices and sessions go in slices a
   * little apart: all at once they were thousands of Redis commands made in one go, which stalled
   * this pod's event loop for tens of milliseconds (and queued the session logs' writes behind them).
   */
  async #refresh(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      const now = Date.now();
      for (const [id, until] of this.#released) if (until <= now) this.#released.delete(id);
      this.#refreshRooms();
      const devices = [...this.#devices.keys()];
      const held = [...this.#edge.sessions()].filter((s) => s.journal === this.journal).map((s) => s.id);
      for (let i = 0; i < Math.max(devices.length, held.length) && !this.#stopped; i += REFRESH_SLICE) {
        if (i > 0) await delay(REFRESH_SLICE_GAP_MS, undefined, { ref: false });
        for (const id of devices.slice(i, i + REFRESH_SLICE)) void this.#register(id);
        const ids = held.slice(i, i + REFRESH_SLICE);
        if (ids.length > 0) this.#o.sessions.refresh(ids, this.#o.sessionTtlMs).catch((err: unknown) => this.#o.log.warn({ err }, "session store: refresh failed"));
      }
    } finally {
      this.#refreshing = false;
    }
  }

  ownsRoom(room: string): boolean {
    return this.#o.ring.owns(roomKey(room));
  }

  owns(key: string): boolean {
    return this.ownerOf(key) === this.podName;
  }

  /**
   * The pod that owns a room (by the ring) or a call (the pod that created it, named in its id:
   * calls stay where they started when the ring changes); undefined when there is none.
   */
  ownerOf(key: string): string | undefined {
    const parsed = parseOwnerKey(key);
    if (parsed?.kind === "call") {
      const pod = callIdOwner(parsed.callId);
      if (pod !== undefined) return pod;
    }
    return this.#o.ring.ownerOf(key)?.name;
  }

  /** A new call id that names this pod as the call's owner (when the pod name fits in a call id). */
  callId(base: string): string {
    return callIdOwnedBy(base, this.podName);
  }

  /** True when the owner of a call is a member of the ring (a call whose owner died is over). */
  callOwnerAlive(callId: string): boolean {
    const pod = callIdOwner(callId);
    return pod === undefined || this.#o.ring.ring.member(pod) !== undefined;
  }

  async forward(command: RoomCommand): Promise<void> {
    const key = commandKey(command);
    const owner = this.ownerOf(key);
    if (!owner) throw new SignalingError("SIG_ERR_UNAVAILABLE", "no pod owns this room or call right now");
    const sent = this.#publish(this.subjects.command(owner, key), command);
    const tracked = sent.then(
      () => undefined,
      () => undefined,
    );
    this.#inflight.add(tracked);
    void tracked.then(() => this.#inflight.delete(tracked));
    await sent;
  }

  async devicesOf(userId: string): Promise<Array<{ sessionId: string; peerId: string; userId: string; edge: string }>> {
    try {
      const devices = await this.storeBreaker.call(() => this.#o.directory.devices(userId));
      return devices.map((d) => ({ ...d, userId }));
    } catch (err) {
      throw new SignalingError("SIG_ERR_UNAVAILABLE", "the cluster directory is unavailable; retry shortly", { cause: err });
    }
  }

  async sessionOpened(session: Session): Promise<void> {
    try {
      await this.storeBreaker.call(() =>
        this.#o.sessions.create(
          {
            sessionId: session.id,
            peerId: session.peerId,
            userId: session.userId,
            resumeTokenHash: hashResumeToken(session.resumeToken),
            device: session.device,
            face: session.face,
            principal: storePrincipal(session.principal),
          },
          this.podName,
          this.#o.sessionTtlMs,
        ),
      );
      this.journal.track(session, 1);
    } catch (err) {
      // Degraded: the session works on this pod; a resume elsewhere will fail and the client rejoins.
      this.#o.log.warn({ err }, "session store unavailable: session not resumable on other pods");
    }
    if (session.face === "switchboard") {
      this.#devices.set(session.id, { userId: session.userId, peerId: session.peerId });
      // Stored before `welcome`: a call placed right after the client connected rings this device.
      await this.#register(session.id);
    }
  }

  /**
   * Takes a session over from the pod that held it (a resume here): claims it in the store (which
   * fences the old edge) and resolves what is needed to rebuild it, or why it cannot be.
   */
  async claim(sessionId: string, resumeToken: string): Promise<ClaimedSession | "unknown-session" | "bad-token"> {
    let claimed: ClaimedSession | null | "bad-token";
    try {
      claimed = await this.storeBreaker.call(() => this.#o.sessions.claim(sessionId, this.podName, this.#o.sessionTtlMs, hashResumeToken(resumeToken)));
    } catch (err) {
      throw new SignalingError("SIG_ERR_UNAVAILABLE", "the session store is unavailable; retry shortly", { cause: err });
    }
    return claimed ?? "unknown-session";
  }

  /**
   * Starts serving a session taken over from `claimed.previousEdge`: journals it at the new epoch,
   * reads the events its old edge had not logged (orphans) until the owner of every room and call
   * sent its `moved` marker, and holds back events routed here for a key until that key's marker.
   * `keys` are the ring keys the session's reattach commands go to.
   */
  async adopt(session: Session, claimed: ClaimedSession, keys: readonly string[]): Promise<void> {
    this.journal.track(session, claimed.epoch);
    if (session.face === "switchboard") {
      this.#devices.set(session.id, { userId: session.userId, peerId: session.peerId });
      void this.#register(session.id);
    }
    if (claimed.previousEdge === this.podName || keys.length === 0) return;
    await this.#takeovers.start(session.id, keys, this.subjects.event(claimed.previousEdge, session.id), claimed.src + 1, this.#o.sessionTtlMs);
  }

  /**
   * Resolves once every owner of the session's rooms and calls switched it to this pod (their
   * `moved` markers read, the old edge's unlogged events taken) and what was taken is stored — or
   * after `timeoutMs` (an owner that died answers only once the ring replaced it).
   */
  async takeoverSettled(sessionId: string, timeoutMs: number): Promise<void> {
    await this.#takeovers.settled(sessionId, timeoutMs);
    await this.journal.flushedSession(sessionId);
  }

  async allow(key: string, limit: number, windowMs: number): Promise<boolean> {
    try {
      return await this.storeBreaker.call(() => this.#o.directory.allow(key, limit, windowMs));
    } catch (err) {
      this.#o.log.warn({ err, key }, "cluster-wide rate limit unavailable: allowing");
      return true;
    }
  }

  /** True when the session moved to another pod (its events are orphans to be read from this pod's subject). */
  released(sessionId: string): boolean {
    return this.#released.has(sessionId);
  }

  /** The session's rooms or calls changed (written with its log). */
  membershipChanged(session: Session): void {
    this.journal.membershipChanged(session);
  }

  /** The client acknowledged events (the log forgets them). */
  acked(session: Session): void {
    this.journal.acked(session);
  }

  /**
   * A detached session's window ran out on this pod: true when this pod still holds it (it ends
   * here), false when another pod took it over (it is only forgotten here).
   */
  async stillHeld(session: Session): Promise<boolean> {
    const epoch = this.journal.epochOf(session.id);
    if (epoch === undefined) return true;
    try {
      const where = await this.#o.sessions.locate(session.id);
      return where === null || (where.edge === this.podName && where.epoch === epoch);
    } catch {
      return true;
    }
  }

  /**
   * A local session that another pod took over, as seen by the owner of one of its rooms on this
   * pod: its unlogged frames go to the new edge as orphans before the owner's `moved` marker.
   */
  async releaseLocal(sessionId: string): Promise<void> {
    const session = this.#edge.session(sessionId);
    if (!session || session.journal !== this.journal) return;
    await this.journal.flushedSession(sessionId);
    if (this.#edge.session(sessionId) !== session) return;
    await this.#handOver(session, this.journal.untrack(sessionId));
  }

  sessionEnded(session: { id: string; userId: string }, moved = false): void {
    const epoch = this.journal.epochOf(session.id);
    this.journal.untrack(session.id);
    this.#devices.delete(session.id);
    if (moved) return;
    if (epoch !== undefined) this.#o.sessions.remove(session.id, epoch).catch((err: unknown) => this.#o.log.warn({ err }, "session store: removing a session failed"));
    this.#o.directory.removeDevice(session.userId, session.id).catch((err: unknown) => this.#o.log.warn({ err }, "directory: removing a device failed"));
  }

  /** Registers every device of this pod again (Redis is back and may have lost them). */
  registerDevices(): void {
    for (const id of this.#devices.keys()) void this.#register(id);
  }

  /** Registers (or re-registers) a device; resolves when stored or failed (failures are logged). */
  #register(sessionId: string): Promise<void> {
    const d = this.#devices.get(sessionId);
    if (!d) return Promise.resolve();
    return this.#o.directory
      .addDevice(d.userId, { sessionId, peerId: d.peerId, edge: this.podName }, DEVICE_TTL_MS)
      .catch((err: unknown) => this.#o.log.warn({ err }, "directory: registering a device failed"));
  }

  async deliverRemote(edge: string, envelope: EventEnvelope): Promise<void> {
    await this.#publish(this.subjects.event(edge, envelope.sessionId), envelope);
  }

  /** Stops consuming and following the ring (the bus and directory belong to the caller). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#refreshTimer) clearInterval(this.#refreshTimer);
    this.#refreshTimer = null;
    this.#takeovers.stop();
    await this.journal.flushed();
    this.journal.stop();
    await Promise.all(this.#consumers.splice(0).map((c) => c.close()));
    await this.#o.ring.stop();
    // A handoff in progress gives up its waits (convergence, events, its barrier) once stopped.
    for (const passed of this.#barriers.values()) passed();
  }

  async #publish(subject: string, value: RoomCommand | ControlCommand | EventEnvelope): Promise<void> {
    const headers: Record<string, string> = {};
    propagation.inject(context.active(), headers);
    try {
      await this.breaker.call(() => this.#o.bus.publish(subject, encodeWire(value), headers));
    } catch (err) {
      throw new SignalingError("SIG_ERR_UNAVAILABLE", "the cluster bus is unavailable; retry shortly", { cause: err });
    }
  }

  async #onCommand(m: BusMessage): Promise<void> {
    const owner = this.#owner;
    let decoded: RoomCommand | ControlCommand;
    try {
      decoded = decodeCommand(m.data);
    } catch (err) {
      // A malformed command can never succeed: log it and move on rather than block the queue.
      this.#o.log.error({ err, subject: m.subject }, "dropping malformed room command");
      return;
    }
    if (decoded.k === "barrier") {
      this.#barriers.get(decoded.id)?.();
      return;
    }
    if (decoded.k === "handoff") return;
    const cmd = decoded;
    const key = commandKey(cmd);
    if ("room" in cmd && !this.owns(key) && !owner.hasRoom(cmd.room)) {
      // Sent under an older ring: the room is owned (and held) elsewhere now.
      await this.forward(cmd);
      return;
    }
    const parent = propagation.extract(context.active(), m.headers);
    await context.with(parent, () =>
      tracer.startActiveSpan("switchboard.owner", { attributes: { "switchboard.key": key, "switchboard.command": cmd.k } }, async (span) => {
        try {
          // While the room is being handed over to this pod, its commands wait in line; the consumer
          // goes on (a handoff may be behind this message).
          const room = "room" in cmd && this.owns(key) ? cmd.room : null;
          if (room !== null && this.#waiting(room)) {
            void Promise.resolve(this.schedule(key, () => owner.applyCommand(cmd))).catch((err: unknown) => this.#o.log.warn({ err, key }, "command failed"));
          } else await owner.applyCommand(cmd);
        } finally {
          span.end();
        }
      }),
    );
  }

  #onControl(m: BusMessage): void {
    let cmd: RoomCommand | ControlCommand;
    try {
      cmd = decodeCommand(m.data);
    } catch (err) {
      this.#o.log.error({ err, subject: m.subject }, "dropping malformed control command");
      return;
    }
    if (cmd.k === "handoff") this.#handoff.handoffReceived(cmd.from, cmd.version, m.streamSeq);
  }

  /** Resolves once every pod of `ring` reports its version (or after 10 s: a pod may be gone). */
  async #converged(ring: HashRing): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!this.#stopped) {
      try {
        // A pod that already applied a later version has passed this one (ringPassed).
        if (ringPassed(ring, await this.#o.directory.ringVersions())) return;
      } catch (err) {
        this.#o.log.warn({ err }, "ring: reading applied versions failed");
      }
      if (Date.now() > deadline) {
        this.#o.log.warn({ version: ring.version }, "ring: not every pod reported the new version in time; handing off anyway");
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Passes a marker through this pod's own command subject: every command stored before it was applied. */
  async #barrier(): Promise<void> {
    if (this.#stopped) return;
    const id = randomBytes(8).toString("hex");
    const passed = new Promise<void>((resolve) => this.#barriers.set(id, resolve));
    await this.#publish(this.subjects.command(this.podName, "ctl"), { k: "barrier", id });
    await passed;
    this.#barriers.delete(id);
  }

  async #announceHandoff(version: number, ring: HashRing): Promise<void> {
    for (const m of ring.members) await this.#publish(this.subjects.control(m.name), { k: "handoff", from: this.podName, version });
  }

  async #eventsCaughtUp(beforeSeq: number): Promise<void> {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !this.#stopped) {
      const earlierInFlight = [...this.#eventsInFlight].some((s) => s < beforeSeq || beforeSeq === 0);
      if (!earlierInFlight && beforeSeq > 0 && this.#eventsSeenSeq >= beforeSeq) return;
      if (!earlierInFlight && (await this.#o.bus.pending(`ev-${this.podName}`)) === 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    this.#o.log.warn("ring: this pod's events did not catch up in time; opening the room anyway");
  }

  /** What a dead owner stored for `room` but never acknowledged, in stream order. */
  async #backlog(dead: string, room: string): Promise<RoomCommand[]> {
    const floor = (await this.#o.bus.ackFloor(`cmd-${dead}`)) ?? 0;
    const messages = await this.#o.bus.read(this.subjects.command(dead, roomKey(room)), floor + 1);
    const out: RoomCommand[] = [];
    for (const m of messages) {
      try {
        const c = decodeCommand(m.data);
        if (c.k !== "handoff" && c.k !== "barrier") out.push(c);
      } catch {
        // malformed: skipped, as the dead owner would have
      }
    }
    return out;
  }

  /**
   * Every few seconds: refreshes the store records of the rooms this pod owns, and drops members
   * whose edge left the ring and who did not resume elsewhere within the resume window.
   */
  #refreshRooms(): void {
    const owned = [...this.#owner.roomIds()];
    this.#o.rooms.refresh(owned, Math.max(this.#o.sessionTtlMs, 60_000)).catch((err: unknown) => this.#o.log.warn({ err }, "room store: refresh failed"));
    this.reapOrphanMembers(Date.now());
  }

  /** Drops room members whose edge is no longer in the ring once they had a resume window to come back. */
  reapOrphanMembers(nowMs: number): void {
    const owner = this.#owner;
    const ring = this.#o.ring.ring;
    const seen = new Set<string>();
    for (const room of [...owner.roomIds()]) {
      for (const m of owner.members(room) ?? []) {
        if (m.edge === undefined || ring.member(m.edge)) continue;
        seen.add(m.sessionId);
        const since = this.#orphanMembers.get(m.sessionId);
        if (since === undefined) {
          this.#orphanMembers.set(m.sessionId, nowMs);
          this.#applyQuietly({ k: "connected", room, from: { sessionId: m.sessionId, peerId: m.peerId, userId: m.userId, edge: m.edge }, connected: false });
        } else if (nowMs - since >= this.#o.resumeWindowMs) {
          this.#applyQuietly({ k: "leave", room, from: { sessionId: m.sessionId, peerId: m.peerId, userId: m.userId, edge: m.edge }, reason: "timeout" });
        }
      }
    }
    for (const id of [...this.#orphanMembers.keys()]) if (!seen.has(id)) this.#orphanMembers.delete(id);
  }

  #applyQuietly(cmd: RoomCommand): void {
    try {
      void Promise.resolve(this.#owner.applyCommand(cmd)).catch((err: unknown) => this.#o.log.warn({ err, k: cmd.k }, "command failed"));
    } catch (err) {
      this.#o.log.warn({ err, k: cmd.k }, "command failed");
    }
  }

  async #onEvent(m: BusMessage): Promise<void> {
    this.#eventsInFlight.add(m.streamSeq);
    if (m.streamSeq > this.#eventsSeenSeq) this.#eventsSeenSeq = m.streamSeq;
    try {
      await this.#takeEvent(m);
    } finally {
      this.#eventsInFlight.delete(m.streamSeq);
    }
  }

  async #takeEvent(m: BusMessage): Promise<void> {
    let env: EventEnvelope;
    try {
      env = decodeEventEnvelope(m.data);
    } catch (err) {
      this.#o.log.error({ err, subject: m.subject }, "dropping malformed event envelope");
      return;
    }
    if (env.moved !== undefined) {
      // An owner moved the session away from this pod (read by the new edge, which tails this
      // subject): if the session is still here, it is forgotten.
      if (this.#edge.session(env.sessionId)?.journal === this.journal && !(await this.stillHeldById(env.sessionId))) await this.releaseLocal(env.sessionId);
      return;
    }
    if (this.journal.seen(env.sessionId, m.streamSeq)) return; // redelivered after it was logged
    if (this.#takeovers.hold(env, m.streamSeq)) return;
    this.#take(env, m.streamSeq);
    await this.journal.flushedSession(env.sessionId);
  }

  async stillHeldById(sessionId: string): Promise<boolean> {
    const s = this.#edge.session(sessionId);
    return s ? this.stillHeld(s) : false;
  }

  #take(env: EventEnvelope, src: number): void {
    if (env.joinFailed !== undefined) this.#edge.joinFailed(env.sessionId, env.joinFailed);
    this.#edge.deliverLocal(env.sessionId, env.json, env.type, src);
  }

  /**
   * This pod lost a session to another edge: frames it sequenced but could not log go to the new
   * edge as orphans (re-sequenced there), and the session is forgotten here without leaving anything.
   */
  async #handOver(session: Session, unlogged: readonly string[]): Promise<void> {
    this.#released.set(session.id, Date.now() + this.#o.sessionTtlMs);
    for (const frame of unlogged) {
      const json = `{${frame.slice(frame.indexOf(",") + 1)}`;
      const type = /"type":"([^"]+)"/.exec(json)?.[1] ?? "event";
      await this.deliverRemote(this.podName, { sessionId: session.id, type, json });
    }
    this.#edge.forgetMoved(session);
  }
}

/** How long a device entry lives in the directory without being re-registered (a dead pod's devices vanish). */
const DEVICE_TTL_MS = 60_000;

/**
 * Devices and sessions refreshed at once, and the pause between two slices (19 000 sessions take
 * 190 slices, under 4 s: well within the refresh period).
 */
const REFRESH_SLICE = 100;
const REFRESH_SLICE_GAP_MS = 20;

/** Messages a pod's command or event consumer handles at once (across rooms, calls or sessions). */
const CONSUMER_IN_FLIGHT = 256;

/** The last token of a subject (the room, call or session it is about). */
function lastToken(subject: string): string {
  return subject.slice(subject.lastIndexOf(".") + 1);
}

