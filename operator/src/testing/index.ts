/**
 * `@switchboard/operator/testing`: the operator's Kubernetes I/O for the e2e tests that run it
 * against a real API server (the raw HTTP client and the list-watch reflector), with the wire types
 * and errors they check. Not the operator's public API (that is the package's main entry).
 *
 * @module
 */
export { isOperatorError, type OperatorError, type OperatorErrorCode } from "../errors.ts";
export { KubeHttp, type KubeHttpOptions } from "../kube/http.ts";
export { Reflector, type ReflectorEventType, type ReflectorOptions, type RestartReason } from "../kube/reflector.ts";
export type { KubeList, KubeObject } from "../kube/wire.ts";
