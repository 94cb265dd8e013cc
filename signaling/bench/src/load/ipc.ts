/**
 * Messages between the bench runner and its load workers (Node IPC over `fork`).
 *
 * @module
 */

/** The wire protocol a worker's clients speak. */
export type ClientProtocol = "switchboard" | "peerjs" | "plain";

/** How a worker groups its clients once connected. */
export type Layout =
  /** Consecutive clients form pairs (a → b); Switchboard pairs share a two-peer room. */
  | { readonly kind: "pairs" }
  /** Consecutive clients form rooms of `k`; the first of each room is its sender. */
  | { readonly kind: "rooms"; readonly k: number };

/** Open `count` sockets. */
export interface ConnectCommand {
  readonly cmd: "connect";
  readonly protocol: ClientProtocol;
  /**
   * Server URLs. One URL: every client goes there. Several (cluster scenarios): client `i` goes to
   * `urls[i % urls.length]`, so the two ends of a pair land on different pods.
   */
  readonly urls: readonly string[];
  readonly count: number;
  /** Source address the sockets bind to (a 127.0.0.0/8 address; each has its own port range). */
  readonly localAddress: string;
  /** Prefix of user ids, peer ids and room names (unique per worker and connect). */
  readonly idPrefix: string;
  /** Sockets opening at once. */
  readonly concurrency: number;
  /** Period of the PeerJS client heartbeat, ms (PeerJS clients send one every 5 s). */
  readonly peerjsHeartbeatMs: number;
  /** How often a Switchboard client acknowledges what it received, ms (the SDK's default: 500). */
  readonly ackIntervalMs: number;
}

/** Group the open clients into pairs or rooms (Switchboard: join the rooms). */
export interface LayoutCommand {
  readonly cmd: "layout";
  readonly layout: Layout;
  readonly concurrency: number;
}

/** Send relayed messages open-loop at a fixed rate. */
export interface RelayCommand {
  readonly cmd: "relay";
  /** Messages per second this worker sends (its share of the total). */
  readonly ratePerSec: number;
  readonly durationMs: number;
  /** Epoch ms at which every worker starts, so their schedules line up. */
  readonly startAtEpochMs: number;
  /** How long to wait for stragglers after the last send before counting the rest as lost. */
  readonly drainMs: number;
}

/** Room fan-out: each room's sender broadcasts; every other member records the delivery. */
export interface FanoutCommand {
  readonly cmd: "fanout";
  /** Broadcasts per second this worker sends (spread over its rooms). */
  readonly ratePerSec: number;
  readonly durationMs: number;
  readonly startAtEpochMs: number;
  readonly drainMs: number;
}

/** Close every socket (the worker stays up for more commands). */
export interface CloseCommand {
  readonly cmd: "close";
}

export type WorkerCommand = ConnectCommand | LayoutCommand | RelayCommand | FanoutCommand | CloseCommand;

/** Result of a `connect`. */
export interface ConnectResult {
  readonly ev: "connected";
  readonly opened: number;
  readonly failed: number;
  /** First few failure reasons. */
  readonly failures: readonly string[];
  readonly elapsedMs: number;
}

/** Result of a `layout`. */
export interface LayoutResult {
  readonly ev: "laid-out";
  readonly groups: number;
  readonly failed: number;
  readonly failures: readonly string[];
  readonly elapsedMs: number;
}

/** Latency histograms are HdrHistogram V2 compressed base64, values in microseconds. */
export interface LoadResult {
  readonly ev: "relayed" | "fanned-out";
  /** Messages (relay) or broadcasts (fan-out) sent. */
  readonly sent: number;
  /** Deliveries expected: sent × receivers per message. */
  readonly expected: number;
  /** Deliveries received before the drain ended. */
  readonly received: number;
  /** Error frames the server sent back (rate limits, refusals), by code. */
  readonly errors: Readonly<Record<string, number>>;
  /** Sockets that closed during the run. */
  readonly closed: number;
  /** Per delivery: receive time − intended send time. */
  readonly latencyFromIntended: string;
  /** Per delivery: receive time − actual send time. */
  readonly latencyFromActual: string;
  /** Fan-out: per broadcast, the last member's receive time − intended send time. */
  readonly allDelivered?: string;
  /** Send window actually used (first intended send to last actual send), ms. */
  readonly sendWindowMs: number;
  /** Largest lag of an actual send behind its intended time, µs (the generator falling behind). */
  readonly maxSendLagUs: number;
  /** p99 of the worker's own event-loop delay during the run, µs. */
  readonly workerLoopDelayP99Us: number;
  /** Switchboard: separate `ack` messages sent during the run (piggybacked ones not counted). */
  readonly acksSent: number;
}

/** The worker's reply to `close`. */
export interface ClosedResult {
  readonly ev: "closed";
}

/** A command failed in the worker. */
export interface WorkerFailure {
  readonly ev: "failed";
  readonly message: string;
}

export type WorkerReply = ConnectResult | LayoutResult | LoadResult | ClosedResult | WorkerFailure;
