/**
 * The few Kubernetes wire shapes the I/O edge reads itself: object metadata, lists, Status
 * objects and watch events. Only the fields this code uses are typed; the rest pass through.
 *
 * @module
 */

/** An owner reference (`metadata.ownerReferences[]`). */
export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
  readonly blockOwnerDeletion?: boolean;
}

/** `metadata` of an object, as far as the I/O edge reads it. */
export interface ObjectMeta {
  readonly name?: string;
  readonly generateName?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly creationTimestamp?: string;
  readonly deletionTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ownerReferences?: readonly OwnerReference[];
  readonly finalizers?: readonly string[];
  readonly managedFields?: readonly unknown[];
}

/** Any Kubernetes object: `apiVersion`, `kind`, `metadata`, and whatever else it has. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: ObjectMeta;
  readonly [field: string]: unknown;
}

/** A list answer (`…List`): its `metadata.resourceVersion` is where a watch resumes. */
export interface KubeList<T extends KubeObject = KubeObject> {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: { readonly resourceVersion?: string; readonly continue?: string; readonly remainingItemCount?: number };
  readonly items: readonly T[];
}

/** The API's Status object: what error answers and watch ERROR events carry. */
export interface KubeStatus {
  readonly kind?: string;
  readonly apiVersion?: string;
  readonly status?: string;
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly details?: {
    readonly name?: string;
    readonly kind?: string;
    readonly causes?: readonly { readonly reason?: string; readonly message?: string; readonly field?: string }[];
  };
}

/** Type of a watch event. `BOOKMARK` carries only a resourceVersion; `ERROR` carries a Status. */
export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/** One event of a watch stream. */
export type WatchEvent<T extends KubeObject = KubeObject> =
  | { readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"; readonly object: T }
  | { readonly type: "ERROR"; readonly object: KubeStatus };

/** The watch event types, for validating what a stream sends. */
export const WATCH_EVENT_TYPES: ReadonlySet<string> = new Set<WatchEventType>(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

/** The store key of an object: `namespace/name`, or `name` for a cluster-scoped object. */
export function objectKey(obj: { readonly metadata: Pick<ObjectMeta, "name" | "namespace"> }): string {
  const ns = obj.metadata.namespace;
  return ns === undefined || ns === "" ? (obj.metadata.name ?? "") : `${ns}/${obj.metadata.name ?? ""}`;
}
