/**
 * The contract between the Switchboard pods and their operator: the ring document the operator
 * writes (ConfigMap key `ring.json`), the hash ring every pod builds from it (and its hash
 * functions, which are part of the wire contract), the report a pod serves at `GET /status`, and
 * the one definition of a converged ring. No `node:*` imports: the operator, the pods, tools and
 * tests all load it.
 */
export * from "./ring-document.ts";
export * from "./ring-hash.ts";
export * from "./ring.ts";
export * from "./pod-report.ts";
export * from "./ring-converged.ts";
