/**
 * What a pod says about itself to the operator: the JSON body of `GET` {@link POD_REPORT_PATH} on
 * the pod's HTTP port. The operator reads it to tell when the ring has converged (with
 * `ringConverged`), to scale by connections and to see a pod draining; people read it with curl.
 *
 * ```json
 * {
 *   "pod": "switchboard-0",
 *   "ready": true,
 *   "draining": false,
 *   "ring": { "version": 7, "state": "ACTIVE" },
 *   "connections": 1200,
 *   "sessions": 1180,
 *   "rooms": 300,
 *   "eventLoopLagP99Ms": 1.2
 * }
 * ```
 *
 * @module
 */
import { z } from "zod";
import { RingMemberState } from "./ring-document.ts";

/** The path of the pod's report on its HTTP port. */
export const POD_REPORT_PATH = "/status";

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * A pod's report about itself. Unknown fields are dropped, so a newer pod can add fields without
 * breaking an older operator.
 */
export const PodReport = z.object({
  /** The pod's name: its ring member name. */
  pod: z.string().min(1).max(253),
  /** Whether the pod accepts new sockets (what `/readyz` answers). */
  ready: z.boolean(),
  /** Whether the pod is draining (SIGTERM): not ready, its clients are told to reconnect elsewhere. */
  draining: z.boolean(),
  /** The ring as this pod applied it. */
  ring: z.object({
    /** The version of the ring document the pod applied; -1 before it applied any (and in single-node mode). */
    version: z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER),
    /** The pod's own state in that ring; null when it is not a member (or has no ring). */
    state: RingMemberState.nullable(),
  }),
  /** Open sockets, every face of the pod (WebSocket protocol and PeerJS) together. */
  connections: count,
  /** Sessions, attached or waiting to resume. */
  sessions: count,
  /** Rooms this pod holds (in cluster mode, the rooms it owns), as the `switchboard_rooms` gauge counts them. */
  rooms: count,
  /** The 99th percentile of the event loop's delay, in milliseconds, over the pod's recent past. */
  eventLoopLagP99Ms: z.number().min(0),
});
/** A pod's report about itself (see {@link PodReport}). */
export type PodReport = z.infer<typeof PodReport>;
