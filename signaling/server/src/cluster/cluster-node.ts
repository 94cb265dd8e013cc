import { context, propagation } from "@opentelemetry/api";
import { SignalingError } from "../errors.ts";
import type { Hub } from "../hub.ts";
import type { Logger } from "../logger.ts";
import { tracer } from "../observability/tracing.ts";
import { Breaker, type BreakerState } from "./breaker.ts";
import type { BusConsumer, BusMessage, ClusterBus } from "./bus.ts";
import type { ClusterPort } from "./cluster-port.ts";
import type { Directory } from "./directory.ts";
import type { RingView } from "./ring-view.ts";
import { ClusterSubjects } from "./subjects.ts";
import { commandKey, decodeEventEnvelope, decodeRoomCommand, encodeWire, type EventEnvelope, type RoomCommand } from "./wire.ts";

/** Options of {@link ClusterNode}. */
export interface ClusterNodeOptions {
  readonly podName: string;
  /** Cluster name: prefixes subjects, streams and keys. */
  readonly cluster: string;
  readonly bus: ClusterBus;
  readonly directory: Directory;
  readonly ring: RingView;
  readonly log: Logger;
  /** Told when the bus breaker opens or closes (readiness, metrics). */
  readonly onBreaker?: (state: BreakerState) => void;
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
  readonly #o: ClusterNodeOptions;
  #hub: Hub | null = null;
  readonly #consumers: BusConsumer[] = [];
  /** Sessions of this pod registered as devices (re-registered before their entries expire). */
  readonly #devices = new Map<string, { userId: string; peerId: string }>();
  #refreshTimer: ReturnType<typeof setInterval> | null = null;

  constructor(options: ClusterNodeOptions) {
    this.#o = options;
    this.podName = options.podName;
    this.subjects = new ClusterSubjects(options.cluster);
    this.breaker = new Breaker({ failureThreshold: 3, openMs: 1000, timeoutMs: 2000, ...(options.onBreaker ? { onStateChange: options.onBreaker } : {}) });
  }

  /** The hub whose rooms and sessions this node serves (set once, before `start`). */
  attach(hub: Hub): void {
    this.#hub = hub;
  }

  /** Follows the ring and starts consuming this pod's commands and events. */
  async start(): Promise<void> {
    await this.#o.ring.start();
    const { bus } = this.#o;
    this.#consumers.push(await bus.consume(`cmd-${this.podName}`, this.subjects.commandsFor(this.podName), (m) => this.#onCommand(m)));
    this.#consumers.push(await bus.consume(`ev-${this.podName}`, this.subjects.eventsFor(this.podName), (m) => this.#onEvent(m)));
    this.#refreshTimer = setInterval(() => {
      for (const id of this.#devices.keys()) this.#register(id);
    }, DEVICE_TTL_MS / 3);
    this.#refreshTimer.unref();
  }

  ownsRoom(room: string): boolean {
    return this.#o.ring.owns(roomKey(room));
  }

  owns(key: string): boolean {
    return this.#o.ring.owns(key);
  }

  async forward(command: RoomCommand): Promise<void> {
    const key = commandKey(command);
    const owner = this.#o.ring.ownerOf(key);
    if (!owner) throw new SignalingError("SIG_ERR_UNAVAILABLE", "no pod owns this room or call right now");
    await this.#publish(this.subjects.command(owner.name, key), command);
  }

  async devicesOf(userId: string): Promise<Array<{ sessionId: string; peerId: string; userId: string; edge: string }>> {
    try {
      const devices = await this.breaker.call(() => this.#o.directory.devices(userId));
      return devices.map((d) => ({ ...d, userId }));
    } catch (err) {
      throw new SignalingError("SIG_ERR_UNAVAILABLE", "the cluster directory is unavailable; retry shortly", { cause: err });
    }
  }

  sessionOpened(session: { id: string; peerId: string; userId: string }): void {
    this.#devices.set(session.id, { userId: session.userId, peerId: session.peerId });
    this.#register(session.id);
  }

  sessionEnded(session: { id: string; userId: string }): void {
    this.#devices.delete(session.id);
    this.#o.directory.removeDevice(session.userId, session.id).catch((err: unknown) => this.#o.log.warn({ err }, "directory: removing a device failed"));
  }

  #register(sessionId: string): void {
    const d = this.#devices.get(sessionId);
    if (!d) return;
    this.#o.directory
      .addDevice(d.userId, { sessionId, peerId: d.peerId, edge: this.podName }, DEVICE_TTL_MS)
      .catch((err: unknown) => this.#o.log.warn({ err }, "directory: registering a device failed"));
  }

  async deliverRemote(edge: string, envelope: EventEnvelope): Promise<void> {
    await this.#publish(this.subjects.event(edge, envelope.sessionId), envelope);
  }

  /** Stops consuming and following the ring (the bus and directory belong to the caller). */
  async stop(): Promise<void> {
    if (this.#refreshTimer) clearInterval(this.#refreshTimer);
    this.#refreshTimer = null;
    await Promise.all(this.#consumers.splice(0).map((c) => c.stop()));
    await this.#o.ring.stop();
  }

  async #publish(subject: string, value: RoomCommand | EventEnvelope): Promise<void> {
    const headers: Record<string, string> = {};
    propagation.inject(context.active(), headers);
    try {
      await this.breaker.call(() => this.#o.bus.publish(subject, encodeWire(value), headers));
    } catch (err) {
      throw new SignalingError("SIG_ERR_UNAVAILABLE", "the cluster bus is unavailable; retry shortly", { cause: err });
    }
  }

  async #onCommand(m: BusMessage): Promise<void> {
    const hub = this.#hub;
    if (!hub) throw new Error("cluster node not attached to a hub");
    let cmd: RoomCommand;
    try {
      cmd = decodeRoomCommand(m.data);
    } catch (err) {
      // A malformed command can never succeed: log it and move on rather than block the queue.
      this.#o.log.error({ err, subject: m.subject }, "dropping malformed room command");
      return;
    }
    const parent = propagation.extract(context.active(), m.headers);
    await context.with(parent, () =>
      tracer.startActiveSpan("switchboard.owner", { attributes: { "switchboard.key": commandKey(cmd), "switchboard.command": cmd.k } }, async (span) => {
        try {
          await hub.applyRoomCommand(cmd, false);
        } finally {
          span.end();
        }
      }),
    );
  }

  #onEvent(m: BusMessage): void {
    const hub = this.#hub;
    if (!hub) throw new Error("cluster node not attached to a hub");
    let env: EventEnvelope;
    try {
      env = decodeEventEnvelope(m.data);
    } catch (err) {
      this.#o.log.error({ err, subject: m.subject }, "dropping malformed event envelope");
      return;
    }
    if (env.joinFailed !== undefined) hub.joinFailed(env.sessionId, env.joinFailed);
    hub.deliverLocal(env.sessionId, env.json, env.type);
  }
}

/** How long a device entry lives in the directory without being re-registered (a dead pod's devices vanish). */
const DEVICE_TTL_MS = 60_000;

/** The ring key of a room (rooms and calls share the ring). */
export function roomKey(room: string): string {
  return `room:${room}`;
}
