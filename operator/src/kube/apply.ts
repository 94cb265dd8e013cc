/**
 * Writes of the operator: server-side apply of whole objects, server-side apply of a custom
 * resource's status, and deletes guarded by the object's uid.
 *
 * Status is written with server-side apply on the `/status` subresource rather than a merge
 * patch: it is the same declarative mechanism as every other write (the reconciler sends the
 * whole status it computed; fields it no longer sends are removed without `null` tombstones),
 * ownership of status fields is tracked per field manager so that another writer's fields are
 * neither clobbered nor silently taken over (a merge patch is last-writer-wins), and it needs no
 * read-modify-write. The cost: each call must carry the full status the operator owns.
 *
 * @module
 */
import { OperatorError, isKubeStatus } from "../errors.ts";
import type { KubeHttp } from "./http.ts";
import { objectPath, type ObjectRef } from "./resources.ts";
import type { KubeObject, KubeStatus } from "./wire.ts";

/** Content type of a server-side apply patch (a JSON body is valid YAML). */
export const APPLY_PATCH_CONTENT_TYPE = "application/apply-patch+yaml";

/** An object to apply: apiVersion, kind and metadata.name are required (namespace for namespaced kinds). */
export interface ApplyObject extends KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
}

/** Options of {@link applyObject} and {@link applyStatus}. */
export interface ApplyOptions {
  /** The field manager that owns what this apply sends (e.g. `switchboard-operator`). */
  readonly fieldManager: string;
  /** Take ownership of fields another manager owns instead of failing with 409 Conflict. @default true */
  readonly force?: boolean;
  /** Validate and compute without persisting (`dryRun=All`). @default false */
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
  /** Request timeout in ms. @default the client's */
  readonly timeoutMs?: number;
}

/** Options of {@link deleteObject}. */
export interface DeleteOptions {
  /** Delete only if the object still has this uid (not a new object of the same name): 409 otherwise. */
  readonly uid?: string;
  /** Delete only at this resourceVersion: 409 otherwise. */
  readonly resourceVersion?: string;
  /** What happens to dependents. @default the kind's default (Background for most) */
  readonly propagationPolicy?: "Foreground" | "Background" | "Orphan";
  /** Grace period in seconds (pods); 0 deletes at once. @default the object's */
  readonly gracePeriodSeconds?: number;
  /** Resolve `undefined` instead of rejecting when the object is already gone (404). @default false */
  readonly ignoreNotFound?: boolean;
  readonly signal?: AbortSignal;
  /** Request timeout in ms. @default the client's */
  readonly timeoutMs?: number;
}

/** The {@link ObjectRef} of an object (its apiVersion, kind, namespace and name). */
export function refOf(obj: ApplyObject): ObjectRef {
  const name = obj.metadata.name;
  if (name === undefined || name === "") throw new OperatorError("OP_ERR_INVALID_OBJECT", `${obj.apiVersion}/${obj.kind}: metadata.name is required`);
  return { apiVersion: obj.apiVersion, kind: obj.kind, name, ...(obj.metadata.namespace === undefined ? {} : { namespace: obj.metadata.namespace }) };
}

function applyQuery(options: ApplyOptions) {
  return { fieldManager: options.fieldManager, force: options.force ?? true, dryRun: options.dryRun === true ? "All" : undefined };
}

/**
 * Server-side applies the whole object (`PATCH` with `application/apply-patch+yaml`,
 * `fieldManager`, `force=true` unless told otherwise): creates it when absent, otherwise makes
 * the fields this manager owns exactly what `obj` says. `obj` is an intent, not an object read
 * back: it must not carry `metadata.managedFields` (the server refuses it), and a
 * `metadata.resourceVersion` in it is a precondition. Resolves with the server's object.
 * Rejects with `OP_ERR_KUBE_STATUS` (409 Conflict without force, 422 Invalid, 403, …),
 * `OP_ERR_UNKNOWN_KIND`, `OP_ERR_INVALID_OBJECT`, or a transport error of {@link KubeHttp.request}.
 */
export async function applyObject<T extends KubeObject = KubeObject>(client: KubeHttp, obj: ApplyObject, options: ApplyOptions): Promise<T> {
  return client.request<T>("PATCH", objectPath(refOf(obj)), {
    query: applyQuery(options),
    body: obj,
    contentType: APPLY_PATCH_CONTENT_TYPE,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}

/**
 * Server-side applies `status` on the `/status` subresource of a custom resource (the
 * SignalingCluster): the fields of `status` this manager owns become exactly `status`, so pass
 * the whole status the operator computes. The object must exist (404 otherwise; an apply on a
 * subresource never creates). Resolves with the server's object; rejects like {@link applyObject}.
 */
export async function applyStatus<T extends KubeObject = KubeObject>(client: KubeHttp, ref: ObjectRef, status: Readonly<Record<string, unknown>>, options: ApplyOptions): Promise<T> {
  const body = {
    apiVersion: ref.apiVersion,
    kind: ref.kind,
    metadata: { name: ref.name, ...(ref.namespace === undefined ? {} : { namespace: ref.namespace }) },
    status,
  };
  return client.request<T>("PATCH", objectPath(ref, "status"), {
    query: applyQuery(options),
    body,
    contentType: APPLY_PATCH_CONTENT_TYPE,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}

/**
 * Deletes an object, with `preconditions.uid` (so a new object that took the name is never
 * deleted by mistake) and optional `propagationPolicy` and `gracePeriodSeconds`. Resolves with
 * the server's answer: the object (still there with a deletionTimestamp when finalizers or a
 * grace period hold it) or a Status; `undefined` for a 404 with `ignoreNotFound`. Rejects with
 * `OP_ERR_KUBE_STATUS` 409 when a precondition fails, 404 when the object is gone (unless
 * ignored), or a transport error.
 */
export async function deleteObject(client: KubeHttp, ref: ObjectRef, options: DeleteOptions = {}): Promise<KubeObject | KubeStatus | undefined> {
  const preconditions = {
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.resourceVersion === undefined ? {} : { resourceVersion: options.resourceVersion }),
  };
  const body = {
    apiVersion: "v1",
    kind: "DeleteOptions",
    ...(Object.keys(preconditions).length === 0 ? {} : { preconditions }),
    ...(options.propagationPolicy === undefined ? {} : { propagationPolicy: options.propagationPolicy }),
    ...(options.gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds: options.gracePeriodSeconds }),
  };
  try {
    return await client.request<KubeObject | KubeStatus>("DELETE", objectPath(ref), {
      body,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
  } catch (err) {
    if (options.ignoreNotFound === true && isKubeStatus(err, 404)) return undefined;
    throw err;
  }
}
