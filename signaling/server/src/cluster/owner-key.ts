/**
 * The keys rooms and calls are owned by (on the ring, in command subjects, in effects), and the
 * call ids that name their owner pod: one home for what was parsed by string prefix in several
 * files.
 *
 * @module
 */

/** The owner key of a room (by the ring) or a call (by the pod its id names, else the ring). */
export type OwnerKey = `room:${string}` | `call:${string}`;

/** What an owner key is about. */
export type ParsedOwnerKey = { readonly kind: "room"; readonly room: string } | { readonly kind: "call"; readonly callId: string };

/** The owner key of a room. */
export function roomKey(room: string): OwnerKey {
  return `room:${room}`;
}

/** The owner key of a call. */
export function callKey(callId: string): OwnerKey {
  return `call:${callId}`;
}

/** What `key` is about; undefined for a string that is not an owner key. */
export function parseOwnerKey(key: string): ParsedOwnerKey | undefined {
  if (key.startsWith("room:")) return { kind: "room", room: key.slice(5) };
  if (key.startsWith("call:")) return { kind: "call", callId: key.slice(5) };
  return undefined;
}

/**
 * A call id that names `podName` as the call's owner (`c_<a>_<b>_<pod>`): calls stay on the pod
 * that created them when the ring changes. The base id is kept as it is when the pod name does
 * not fit (then the ring decides the owner).
 */
export function callIdOwnedBy(base: string, podName: string): string {
  const id = `${base}_${podName}`;
  return id.length <= 64 && /^[a-z0-9-]+$/.test(podName) ? id : base;
}

/** The pod named in a call id made by {@link callIdOwnedBy}, if any. */
export function callIdOwner(callId: string): string | undefined {
  const parts = callId.split("_");
  return parts.length === 4 && parts[0] === "c" && parts[3] ? parts[3] : undefined;
}
