/**
 * When a ring version has converged: the one definition, shared by the pods (handoff waits for it)
 * and the operator (condition `RingConverged`).
 *
 * @module
 */

/**
 * True when every member of `doc` reports exactly `doc.version` in `applied`.
 *
 * A member missing from `applied`, or reporting another version (older, or newer: then `doc` is
 * not the ring in force), keeps the ring from converging. Every member counts, whatever its
 * state: JOINING and LEAVING pods route commands too. A ring without members has converged.
 *
 * @param doc a ring document (or a `HashRing`, which has the same `version` and `members`)
 * @param applied the version each pod reports having applied, by pod name
 * @returns whether every member applied `doc.version`
 */
export function ringConverged(
  doc: { readonly version: number; readonly members: readonly { readonly name: string }[] },
  applied: Readonly<Record<string, number | undefined>>,
): boolean {
  return doc.members.every((m) => applied[m.name] === doc.version);
}

/**
 * True when every member of `doc` reports `doc.version` or a later one: every pod has passed this
 * version. The reading of a pod handing rooms off for `doc` (ring changes can follow each other
 * faster than handoffs, JOINING then ACTIVE, and those are handled in order), where
 * {@link ringConverged} is the operator's reading of the ring in force.
 *
 * @param doc a ring document (or a `HashRing`)
 * @param applied the version each pod reports having applied, by pod name
 */
export function ringPassed(
  doc: { readonly version: number; readonly members: readonly { readonly name: string }[] },
  applied: Readonly<Record<string, number | undefined>>,
): boolean {
  return doc.members.every((m) => (applied[m.name] ?? -1) >= doc.version);
}
