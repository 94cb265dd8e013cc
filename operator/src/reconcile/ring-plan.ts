/**
 * The ring and the pods, one step at a time: which members join, become ACTIVE, leave or go, how
 * many pods the StatefulSet keeps, and which pod is drained next. A pure function of the current
 * ring, the pods, the versions they report and the replicas wanted.
 *
 * A member's life (docs/operator.md, "Ring transitions"):
 *
 * ```
 *   pod Running with an IP ──(ring converged)──► JOINING ──(pod Ready, ring converged)──► ACTIVE
 *   ACTIVE/JOINING ──(scale-down victim, rollout victim, or pod deleted by someone)──► LEAVING
 *   LEAVING ──(ring converged: every pod moved its rooms)──► pod deleted (rollout) or replicas
 *            lowered (scale-down); the pod drains (paced reconnect hints) and exits
 *   any ──(pod gone, or replaced: another UID)──► removed from the ring
 * ```
 *
 * Rules that keep it safe:
 * - Nothing is added while the ring has not converged, so a name removed in version n (a pod
 *   replaced under the same name) is re-added only after every pod applied n: no pod ever sees a
 *   dead member turn into a live one of the same name.
 * - A pod is deleted, or the StatefulSet lowered past it, only when it is LEAVING in a ring every
 *   pod applied: its rooms have moved before its drain starts.
 * - A rollout replaces one pod at a time, highest ordinal first, and only while every other pod is
 *   Ready and ACTIVE and nothing else is in flight.
 * - No step is taken in the same pass as a ring change: pods act on a version only once they report it.
 *
 * @module
 */
import { ringConverged, type RingDocument, type RingMember } from "@switchboard/ring";
import type { PodView } from "./observed.ts";

type State = RingMember["state"];

/** Input of {@link planRing}. */
export interface RingPlanInput {
  /** The ring as the ConfigMap holds it (version 0 with no members when there is none yet). */
  readonly ring: RingDocument;
  readonly pods: readonly PodView[];
  /** Ring versions the pods report (fresh reports only), by pod name. */
  readonly applied: Readonly<Record<string, number>>;
  /** Pods wanted. */
  readonly desiredReplicas: number;
  /** The StatefulSet's replicas now (0 when it does not exist yet). */
  readonly currentReplicas: number;
  /** The revision pods should run; undefined while unknown (no rollout decisions then). */
  readonly updateRevision: string | undefined;
  /** Port of the pods' addresses in the ring. */
  readonly port: number;
  /** Time stamp for the `since` of changed members (ISO 8601). */
  readonly nowIso: string;
}

/** One member's change of state (`from` undefined: added; `to` undefined: removed). */
export interface RingTransition {
  readonly name: string;
  readonly from: State | undefined;
  readonly to: State | undefined;
}

/** What the ring and the pods should become. */
export interface RingPlan {
  /** The next ring: the current one when nothing changes, else the same with `version + 1`. */
  readonly ring: RingDocument;
  readonly changed: boolean;
  readonly transitions: readonly RingTransition[];
  /** Whether the current ring is applied by every member. */
  readonly converged: boolean;
  /** Replicas for the StatefulSet. */
  readonly statefulSetReplicas: number;
  /** Pods to delete now (drained rollout step), with the UID they must still have. */
  readonly deletePods: readonly { readonly name: string; readonly uid: string }[];
  /** Pods that still run an older revision. */
  readonly outdatedPods: readonly string[];
}

/** Plans the next step of the ring and the pods (see the module comment for the rules). */
export function planRing(input: RingPlanInput): RingPlan {
  const { ring, pods, desiredReplicas } = input;
  const converged = ringConverged(ring, input.applied);
  const podsByName = new Map(pods.map((p) => [p.name, p]));
  const next = new Map<string, RingMember>(ring.members.map((m) => [m.name, m]));
  const transitions: RingTransition[] = [];
  const set = (name: string, member: RingMember | undefined) => {
    const before = next.get(name);
    if (member === undefined) next.delete(name);
    else next.set(name, member);
    transitions.push({ name, from: before?.state, to: member?.state });
  };
  const toState = (m: RingMember, state: State) => set(m.name, { ...m, state, since: input.nowIso });
  const live = (p: PodView | undefined): p is PodView => p !== undefined && p.terminatingSinceMs === undefined;
  const outdated = pods.filter((p) => live(p) && input.updateRevision !== undefined && p.revision !== input.updateRevision);

  // 1. Members whose pod is gone or replaced leave the ring; members whose pod is being deleted
  //    by someone else (an eviction, kubectl delete) stop owning rooms at once.
  for (const m of ring.members) {
    const pod = podsByName.get(m.name);
    if (pod === undefined || (m.uid !== undefined && m.uid !== pod.uid)) set(m.name, undefined);
    else if (pod.terminatingSinceMs !== undefined && m.state !== "LEAVING") toState(m, "LEAVING");
  }
  // 2. Scale-down: pods past the wanted count leave.
  for (const p of pods) {
    const m = next.get(p.name);
    if (live(p) && p.ordinal >= desiredReplicas && m !== undefined && m.state !== "LEAVING") toState(m, "LEAVING");
  }
  const removedOrLeft = transitions.length > 0;

  // 3. Adds and promotions, only on a ring every member applied.
  if (converged) {
    for (const p of [...pods].sort((a, b) => a.ordinal - b.ordinal)) {
      if (!live(p) || p.ip === undefined || p.ordinal >= desiredReplicas) continue;
      const m = next.get(p.name);
      const address = `${p.ip}:${input.port}`;
      if (m === undefined) {
        if (!transitions.some((t) => t.name === p.name)) set(p.name, { name: p.name, address, state: "JOINING", uid: p.uid, since: input.nowIso });
      } else if (m.state === "JOINING" && p.ready && m.address === address) {
        toState(m, "ACTIVE");
      } else if (m.address !== address && m.uid === p.uid) {
        set(p.name, { ...m, address });
      }
    }
  }

  // 4. Rollout: one pod at a time, on a quiet, converged ring with every other pod serving.
  const deletePods: { name: string; uid: string }[] = [];
  const quiet =
    transitions.length === 0 &&
    converged &&
    input.updateRevision !== undefined &&
    pods.every((p) => live(p) && p.ordinal < desiredReplicas) &&
    pods.length === desiredReplicas;
  if (quiet) {
    const leaving = ring.members.filter((m) => m.state === "LEAVING");
    const [victim] = [...outdated].sort((a, b) => b.ordinal - a.ordinal);
    if (leaving.length === 1 && leaving[0] !== undefined) {
      // The one LEAVING member of a converged ring has handed its rooms off: drain its pod.
      const pod = podsByName.get(leaving[0].name);
      if (pod !== undefined) deletePods.push({ name: pod.name, uid: pod.uid });
    } else if (leaving.length === 0 && victim !== undefined) {
      const others = pods.filter((p) => p !== victim);
      const serving = others.every((p) => p.ready && next.get(p.name)?.state === "ACTIVE");
      const m = next.get(victim.name);
      if (serving && m !== undefined) toState(m, "LEAVING");
    }
  }

  // 5. The StatefulSet: lowered only past pods that are LEAVING in a converged ring (or gone).
  const blocking = pods.some((p) => {
    if (p.ordinal < desiredReplicas || !live(p)) return false;
    const m = ring.members.find((x) => x.name === p.name);
    return !(converged && !removedOrLeft && (m === undefined || m.state === "LEAVING"));
  });
  const statefulSetReplicas = blocking ? Math.max(input.currentReplicas, desiredReplicas) : desiredReplicas;

  const changed = transitions.length > 0;
  const members = [...next.values()];
  return {
    ring: changed ? { ...ring, version: ring.version + 1, members } : ring,
    changed,
    transitions,
    converged,
    statefulSetReplicas,
    deletePods,
    outdatedPods: outdated.map((p) => p.name),
  };
}
